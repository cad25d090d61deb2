/**
 * Azure (cloud-provider-azure). A port with appProtocol http/https is probed with GET / on its
 * nodePort; the per-port annotations below take priority over appProtocol
 * (pkg/provider/azure_loadbalancer_healthprobe.go, buildHealthProbeRulesForPort).
 */
import { KUBE_PROXY_HEALTH } from '../core/probe.js';
import { findPort } from '../core/target.js';
import { describePort, readinessUrl, result, type AnnotationGroup, type Provider } from './provider.js';

const PREFIX = 'service.beta.kubernetes.io/';

/** AzureSettings is the policy's `azure` section. */
export interface AzureSettings {
  /** hideStatusPort adds no_lb_rule for the readiness port when it is not a traffic port, keeping it off the load balancer. */
  readonly hideStatusPort: boolean;
}

/** azureProbeKey returns the per-port Azure annotation key, e.g. service.beta.kubernetes.io/port_80_health-probe_protocol. */
export function azureProbeKey(port: number, setting: string): string {
  return `${PREFIX}port_${port}_${setting}`;
}

/** azure is the Azure provider. */
export const azure: Provider<AzureSettings> = {
  name: 'azure',
  title: 'Azure',
  settings: {
    key: 'azure',
    read(value, reader) {
      const map = reader.mapping(value, ['azure'], ['hideStatusPort']);
      return { hideStatusPort: reader.boolean(map?.['hideStatusPort'], ['azure', 'hideStatusPort'], false) };
    },
  },
  annotate({ target, intent, readiness, settings }) {
    // With externalTrafficPolicy: Local Azure probes HTTP /healthz on healthCheckNodePort, which
    // kube-proxy answers; per-port protocol and path are ignored there.
    if (target.externalTrafficPolicy === 'Local') {
      return result({ notes: ["Azure: externalTrafficPolicy Local is probed on kube-proxy's health check node port; nothing to change"] });
    }
    const warnings: string[] = [];
    const check = 'check' in readiness ? readiness.check : undefined;
    if (intent === 'readiness' && 'missing' in readiness) warnings.push(`Azure: ${readiness.missing}, so the probe stays TCP`);
    const groups: AnnotationGroup[] = target.affected.map((port) =>
      intent === 'kube-proxy'
        ? {
            // A health-probe_port number that is not a Service port is probed as a raw node port (cloud-provider-azure 1.28+).
            annotations: {
              [azureProbeKey(port.port, 'health-probe_protocol')]: 'http',
              [azureProbeKey(port.port, 'health-probe_port')]: String(KUBE_PROXY_HEALTH.port),
              [azureProbeKey(port.port, 'health-probe_request-path')]: KUBE_PROXY_HEALTH.path,
            },
            reason: `Azure probes ${describePort(port)} with GET :${KUBE_PROXY_HEALTH.port}${KUBE_PROXY_HEALTH.path} (kube-proxy) instead of GET /`,
          }
        : intent === 'tcp' || check === undefined
        ? {
            annotations: { [azureProbeKey(port.port, 'health-probe_protocol')]: 'tcp' },
            reason: `Azure probes ${describePort(port)} over TCP instead of GET / (appProtocol ${port.appProtocol})`,
          }
        : {
            annotations: {
              [azureProbeKey(port.port, 'health-probe_protocol')]: 'http',
              [azureProbeKey(port.port, 'health-probe_port')]: String(check.ref),
              [azureProbeKey(port.port, 'health-probe_request-path')]: check.path,
            },
            reason: `Azure probes ${describePort(port)} with GET ${readinessUrl({ port: check.ref, path: check.path })} instead of GET /`,
          },
    );
    const hidden = check?.port ?? findPort(target.ports, 'status-port');
    if (settings.hideStatusPort && hidden !== undefined && !target.affected.includes(hidden)) {
      groups.push({
        annotations: { [azureProbeKey(hidden.port, 'no_lb_rule')]: 'true' },
        reason: `Azure keeps status ${describePort(hidden)} off the load balancer (azure.hideStatusPort)`,
      });
    }
    return result({ groups, warnings });
  },
};
