/**
 * Istio gateways: the Service Istio generates for a Gateway of an Istio class, and the classic
 * ingress gateway Service of the istio/gateway chart. Their readiness endpoint is the gateway's
 * status port, GET :15021/healthz/ready (istio/istio manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml),
 * which the policy's `readiness` names (status-port and /healthz/ready by default).
 */
import type { ServicePort } from '../core/target.js';
import { findPort } from '../core/target.js';
import { hasLabels, type Profile } from './profile.js';

/**
 * ISTIO_STATUS_PORT is the status port Istio puts first on every Service it generates for a
 * Gateway (istio/istio pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go, extractServicePorts).
 */
export const ISTIO_STATUS_PORT: ServicePort = { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' };

/** ISTIO_GATEWAY_CLASSES are the GatewayClass names whose generated Service carries Istio's status port. */
export const ISTIO_GATEWAY_CLASSES: readonly string[] = ['istio'];

/**
 * An Istio gateway Service carries MANAGED_LABEL (any value) when Istio generated it for a
 * Gateway, or one of CLASSIC_LABELS when the istio/gateway chart or an istioctl profile made it.
 */
const CLASSIC_LABELS: readonly Readonly<Record<string, string>>[] = [{ istio: 'ingressgateway' }, { app: 'istio-ingressgateway' }];
const MANAGED_LABEL = 'gateway.istio.io/managed';

/** istio is the Istio gateway profile. */
export const istio: Profile = {
  name: 'istio',
  gatewayPorts: (className) => (ISTIO_GATEWAY_CLASSES.includes(className) ? [ISTIO_STATUS_PORT] : []),
  recognizes(target, readiness) {
    if (target.kind === 'Gateway') return target.gatewayClassName !== undefined && ISTIO_GATEWAY_CLASSES.includes(target.gatewayClassName);
    const labelled = target.labels[MANAGED_LABEL] !== undefined || CLASSIC_LABELS.some((labels) => hasLabels(target, labels));
    return labelled && findPort(target.ports, readiness.port) !== undefined;
  },
  plan: (_target, readiness) => ({ endpoint: readiness }),
};
