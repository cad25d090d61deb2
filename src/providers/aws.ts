/**
 * AWS. The AWS Load Balancer Controller's NLB health check is one per Service and defaults to TCP
 * on the traffic port; appProtocol is not read (aws-load-balancer-controller
 * pkg/service/model_build_target_group.go). It accepts a Service port name as the health check
 * port; the legacy in-tree provider accepts only integers or traffic-port.
 */
import { findPort } from '../core/target.js';
import { defaultProbeIsRight, readinessUrl, result, type Provider } from './provider.js';

const PREFIX = 'service.beta.kubernetes.io/aws-load-balancer-';

/** AWS_LBC_CLASS is the loadBalancerClass that hands a Service to the AWS Load Balancer Controller. */
export const AWS_LBC_CLASS = 'service.k8s.aws/nlb';

/** AWS_TYPE_ANNOTATION set to `external` also hands a Service to the AWS Load Balancer Controller. */
export const AWS_TYPE_ANNOTATION = `${PREFIX}type`;

/** aws is the AWS provider. */
export const aws: Provider = {
  name: 'aws',
  title: 'AWS',
  annotate({ target, intent, readiness }) {
    if (intent === 'tcp') return defaultProbeIsRight('AWS', 'NLB health checks default to TCP on the traffic port');
    if (target.externalTrafficPolicy === 'Local') {
      return defaultProbeIsRight('AWS', "externalTrafficPolicy Local is checked on kube-proxy's health check node port");
    }
    const owned = target.loadBalancerClass === AWS_LBC_CLASS || target.annotations[AWS_TYPE_ANNOTATION] === 'external';
    if (!owned) {
      return result({
        warnings: [
          `AWS: readiness check needs the AWS Load Balancer Controller (loadBalancerClass ${AWS_LBC_CLASS}); the check stays TCP`,
        ],
      });
    }
    if (findPort(target.ports, readiness.port) === undefined) {
      return result({ warnings: [`AWS: readiness port ${readiness.port} is not a port of the Service, so the check stays TCP`] });
    }
    return result({
      groups: [
        {
          annotations: {
            [`${PREFIX}healthcheck-protocol`]: 'http',
            [`${PREFIX}healthcheck-port`]: String(readiness.port),
            [`${PREFIX}healthcheck-path`]: readiness.path,
          },
          reason: `AWS checks the targets with GET ${readinessUrl(readiness)}`,
        },
      ],
    });
  },
};
