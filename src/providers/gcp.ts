/**
 * GCP. GKE L4 load balancers always probe kube-proxy's /healthz (10256, or healthCheckNodePort for
 * externalTrafficPolicy Local) and ignore appProtocol and annotations
 * (kubernetes/ingress-gce pkg/l4/healthchecks/healthchecksl4.go). Nothing to change for a
 * LoadBalancer Service; L7 Ingress needs a BackendConfig, another object, which admission cannot create.
 */
import { defaultProbeIsRight, type Provider } from './provider.js';

/** gcp is the GCP provider: it never changes anything and says why. */
export const gcp: Provider = {
  name: 'gcp',
  title: 'GCP',
  annotate() {
    return defaultProbeIsRight('GCP', "L4 load balancers probe kube-proxy's /healthz and ignore appProtocol");
  },
};
