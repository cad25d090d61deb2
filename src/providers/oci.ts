/**
 * Oracle OCI (oci-cloud-controller-manager). Default: HTTP /healthz on kube-proxy 10256 or
 * healthCheckNodePort. Only retries, interval and timeout can be annotated.
 */
import { tcpDefaultProvider } from './unsupported-readiness.js';

/** oci is the Oracle OCI provider. */
export const oci = tcpDefaultProvider(
  'oci',
  'OCI',
  "the default check is kube-proxy's /healthz",
  'only retries, interval and timeout can be annotated',
  true,
);
