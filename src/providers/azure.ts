/**
 * Azure (cloud-provider-azure). A port with appProtocol http/https is probed with GET / on its
 * nodePort; the per-port annotations below take priority over appProtocol
 * (pkg/provider/azure_loadbalancer_healthprobe.go, buildHealthProbeRulesForPort).
 */
import { findPort } from '../core/target.js';
import { describePort, readinessUrl, result, type AnnotationGroup, type Provider } from './provider.js';

const PREFIX = 'service.beta.kubernetes.io/';

/** azureProbeKey returns the per-port Azure annotation key, e.g. service.beta.kubernetes.io/port_80_health-probe_protocol. */
export function azureProbeKey(port: number, setting: string): string {
  return `${PREFIX}port_${port}_${setting}`;
}

/** azure is the Azure provider. */
export const azure: Provider = {
  name: 'azure',
  title: 'Azure',
  annotate({ target, intent, readiness, policy }) {
    // With externalTrafficPolicy: Local Azure probes HTTP /healthz on healthCheckNodePort, which
    // kube-proxy answers; per-port protocol and path are ignored there.
    if (target.externalTrafficPolicy === 'Local') {
      return result({ notes: ["Azure: externalTrafficPolicy Local is probed on kube-proxy's health check node port; nothing to change"] });
    }
    const warnings: string[] = [];
    const statusPort = findPort(target.ports, readiness.port);
    let effective = intent;
    if (intent === 'readiness' && statusPort === undefined) {
      warnings.push(`Azure: readiness port ${readiness.port} is not a port of the Service, so the probe stays TCP`);
      effective = 'tcp';
    }
    const groups: AnnotationGroup[] = target.affected.map((port) =>
      effective === 'tcp'
        ? {
            annotations: { [azureProbeKey(port.port, 'health-probe_protocol')]: 'tcp' },
            reason: `Azure probes ${describePort(port)} over TCP instead of GET / (appProtocol ${port.appProtocol})`,
          }
        : {
            annotations: {
              [azureProbeKey(port.port, 'health-probe_protocol')]: 'http',
              [azureProbeKey(port.port, 'health-probe_port')]: String(readiness.port),
              [azureProbeKey(port.port, 'health-probe_request-path')]: readiness.path,
            },
            reason: `Azure probes ${describePort(port)} with GET ${readinessUrl(readiness)} instead of GET /`,
          },
    );
    const hidden = statusPort ?? findPort(target.ports, 'status-port');
    if (policy.azure.hideStatusPort && hidden !== undefined && !target.affected.includes(hidden)) {
      groups.push({
        annotations: { [azureProbeKey(hidden.port, 'no_lb_rule')]: 'true' },
        reason: `Azure keeps status ${describePort(hidden)} off the load balancer (azure.hideStatusPort)`,
      });
    }
    return result({ groups, warnings });
  },
};
