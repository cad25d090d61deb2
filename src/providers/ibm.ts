/**
 * IBM Cloud VPC. Default: TCP (externalTrafficPolicy Cluster) or HTTP (Local). Its health-check port
 * key takes a node port, unknown at admission.
 */
import { tcpDefaultProvider } from './unsupported-readiness.js';

/** ibm is the IBM Cloud provider. */
export const ibm = tcpDefaultProvider(
  'ibm',
  'IBM Cloud',
  'the default check is TCP (HTTP for externalTrafficPolicy Local)',
  'ibm-load-balancer-cloud-provider-vpc-health-check-port takes a node port, which is allocated after admission',
);
