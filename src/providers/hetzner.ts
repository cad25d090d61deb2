/**
 * Hetzner (hcloud-cloud-controller-manager). Default: TCP to the nodePort. Its health-check-port
 * takes a raw node port, and node ports are allocated after mutating admission, so a readiness
 * probe cannot be filled in at CREATE.
 */
import { tcpDefaultProvider } from './unsupported-readiness.js';

/** hetzner is the Hetzner provider. */
export const hetzner = tcpDefaultProvider(
  'hetzner',
  'Hetzner',
  'the default check is TCP to the node port',
  'load-balancer.hetzner.cloud/health-check-port takes a node port, which is allocated after admission',
);
