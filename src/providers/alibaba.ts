/**
 * Alibaba Cloud (cloud-provider-alibaba-cloud). Default: TCP. Its health-check-connect-port is a raw
 * port, unknown at admission (node ports are allocated after mutating admission).
 */
import { tcpDefaultProvider } from './unsupported-readiness.js';

/** alibaba is the Alibaba Cloud provider. */
export const alibaba = tcpDefaultProvider(
  'alibaba',
  'Alibaba',
  'the default check is TCP',
  'alibaba-cloud-loadbalancer-health-check-connect-port takes a node port, which is allocated after admission',
);
