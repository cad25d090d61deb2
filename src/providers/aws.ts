/**
 * AWS. The AWS Load Balancer Controller's NLB health check is one per Service and defaults to TCP
 * on the traffic port; appProtocol is not read (aws-load-balancer-controller
 * pkg/service/model_build_target_group.go). Its health check port is `traffic-port`, a number used
 * as it is, or a Service port name, resolved to that port's nodePort (instance targets) or numeric
 * targetPort (ip targets). The legacy in-tree provider accepts only integers or traffic-port.
 */
import type { LoadBalancerTarget, ServicePort } from '../core/target.js';
import { findPort } from '../core/target.js';
import { defaultProbeIsRight, result, type Provider, type ProviderResult } from './provider.js';

const PREFIX = 'service.beta.kubernetes.io/aws-load-balancer-';

/**
 * AwsTargetType is how the AWS Load Balancer Controller registers NLB targets: `instance` (node ports)
 * or `ip` (pod IPs). Without a Service annotation it is the controller's --default-target-type flag,
 * which the webhook cannot see; the policy states it as aws.defaultTargetType.
 */
export type AwsTargetType = 'instance' | 'ip';

/** AWS_TARGET_TYPES lists the valid aws.defaultTargetType values, the default (the controller's own) first. */
export const AWS_TARGET_TYPES: readonly AwsTargetType[] = ['instance', 'ip'];

/** AWS_LBC_CLASS is the loadBalancerClass that hands a Service to the AWS Load Balancer Controller. */
export const AWS_LBC_CLASS = 'service.k8s.aws/nlb';

/** AWS_TYPE_ANNOTATION set to `nlb-ip`, or to `external` with a target type, also hands a Service to the controller. */
export const AWS_TYPE_ANNOTATION = `${PREFIX}type`;

/** AWS_TARGET_TYPE_ANNOTATION chooses the NLB target type of one Service: `ip`, or anything else for instance. */
export const AWS_TARGET_TYPE_ANNOTATION = `${PREFIX}nlb-target-type`;

/**
 * awsControllerOwns tells whether the AWS Load Balancer Controller reconciles the target, as its
 * IsServiceSupported does (pkg/service/service_utils.go): a loadBalancerClass decides alone; without
 * one, aws-load-balancer-type `nlb-ip`, or `external` with a target type of `ip` or `instance`.
 */
export function awsControllerOwns(target: LoadBalancerTarget): boolean {
  if (target.loadBalancerClass !== undefined) return target.loadBalancerClass === AWS_LBC_CLASS;
  const type = target.annotations[AWS_TYPE_ANNOTATION];
  if (type === 'nlb-ip') return true;
  const targetType = target.annotations[AWS_TARGET_TYPE_ANNOTATION];
  return type === 'external' && (targetType === 'ip' || targetType === 'instance');
}

/**
 * awsTargetType returns the target type the controller uses, as its buildTargetType does
 * (pkg/service/model_build_target_group.go): `ip` for aws-load-balancer-type `nlb-ip` or a target
 * type annotation of exactly `ip`; any other annotation value means instance; without the
 * annotation, the controller's --default-target-type, which the policy states as aws.defaultTargetType.
 */
export function awsTargetType(target: LoadBalancerTarget, defaultTargetType: AwsTargetType): AwsTargetType {
  if (target.annotations[AWS_TYPE_ANNOTATION] === 'nlb-ip') return 'ip';
  const annotated = target.annotations[AWS_TARGET_TYPE_ANNOTATION];
  if (annotated === undefined) return defaultTargetType;
  return annotated === 'ip' ? 'ip' : 'instance';
}

/**
 * healthCheckPort returns what to write as aws-load-balancer-healthcheck-port for the readiness
 * port, or a warning when nothing the controller reads would reach it: a number is always used as
 * it is (a raw node port for instance targets), and with ip targets the controller refuses a port
 * name whose targetPort is itself a name.
 */
function healthCheckPort(port: ServicePort, targetType: AwsTargetType): { value: string } | { warning: string } {
  const described = `Service port ${port.port}${port.name === undefined ? '' : ` (${port.name})`}`;
  if (targetType === 'ip' && typeof port.targetPort === 'string') {
    return {
      warning:
        `AWS: with ip targets the Load Balancer Controller refuses the whole Service when the health check port is a port whose targetPort is a name ` +
        `(${described} has targetPort ${port.targetPort}); give it a numeric targetPort, or set ${PREFIX}healthcheck-port to the container port number yourself; the check stays TCP`,
    };
  }
  if (port.name !== undefined) return { value: port.name };
  if (targetType === 'ip') return { value: String(port.targetPort ?? port.port) };
  return {
    warning:
      `AWS: ${described} has no name, and for instance targets the Load Balancer Controller reads a health check port number as a raw node port, ` +
      `not that port's nodePort; name the port (for example status-port); the check stays TCP`,
  };
}

/** aws is the AWS provider. */
export const aws: Provider = {
  name: 'aws',
  title: 'AWS',
  annotate({ target, intent, readiness, policy }): ProviderResult {
    if (intent === 'tcp') return defaultProbeIsRight('AWS', 'NLB health checks default to TCP on the traffic port');
    if (!awsControllerOwns(target)) {
      return result({
        warnings: [
          `AWS: readiness check needs the AWS Load Balancer Controller (loadBalancerClass ${AWS_LBC_CLASS}, ` +
            `or ${AWS_TYPE_ANNOTATION}: external with ${AWS_TARGET_TYPE_ANNOTATION}); the check stays TCP`,
        ],
      });
    }
    const targetType = awsTargetType(target, policy.aws.defaultTargetType);
    // The controller builds the instance + Local check itself: HTTP /healthz on healthCheckNodePort, which kube-proxy answers.
    if (targetType === 'instance' && target.externalTrafficPolicy === 'Local') {
      return defaultProbeIsRight('AWS', "externalTrafficPolicy Local with instance targets is checked on kube-proxy's health check node port");
    }
    const port = findPort(target.ports, readiness.port);
    if (port === undefined) {
      return result({ warnings: [`AWS: readiness port ${readiness.port} is not a port of the Service, so the check stays TCP`] });
    }
    const written = healthCheckPort(port, targetType);
    if ('warning' in written) return result({ warnings: [written.warning] });
    return result({
      groups: [
        {
          annotations: {
            [`${PREFIX}healthcheck-protocol`]: 'http',
            [`${PREFIX}healthcheck-port`]: written.value,
            [`${PREFIX}healthcheck-path`]: readiness.path,
          },
          reason: `AWS checks the ${targetType} targets with GET :${written.value}${readiness.path}`,
        },
      ],
    });
  },
};
