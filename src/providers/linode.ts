/**
 * Linode (linode-cloud-controller-manager). Default check: `connection` (TCP). Its HTTP check has a
 * path but no port key, so it would hit the traffic port's GET and the gateway's 404.
 */
import { tcpDefaultProvider } from './unsupported-readiness.js';

/** linode is the Linode provider. */
export const linode = tcpDefaultProvider(
  'linode',
  'Linode',
  'the default check is a TCP connection',
  'linode-loadbalancer-check-path has no port key, so an HTTP check would hit the traffic port',
);
