/**
 * HAProxy's kubernetes-ingress: its chart always puts appProtocol http and https on the controller
 * Service, and its health endpoint (port 1042, /healthz) is not a port of that Service, so no load
 * balancer can reach it through the Service: readiness is TCP on the traffic ports.
 */
import { hasLabels, type Profile } from './profile.js';

/** HAPROXY_INGRESS_LABELS are the labels the haproxytech/kubernetes-ingress chart puts on the controller Service. */
export const HAPROXY_INGRESS_LABELS: Readonly<Record<string, string>> = { 'app.kubernetes.io/name': 'kubernetes-ingress' };

/** haproxyIngress is the HAProxy kubernetes-ingress profile. */
export const haproxyIngress: Profile = {
  name: 'haproxy-ingress',
  recognizes: (target) => target.kind === 'Service' && hasLabels(target, HAPROXY_INGRESS_LABELS),
  plan: () => ({ tcp: 'the health endpoint of haproxy-ingress (port 1042) is not a port of the Service' }),
};
