/**
 * AWS. The AWS Load Balancer Controller's NLB health check is one per Service and defaults to TCP
 * on the traffic port; appProtocol is not read (aws-load-balancer-controller
 * pkg/service/model_build_target_group.go). Its health check port is `traffic-port`, a number used
 * as it is, or a Service port name, resolved to that port's nodePort (instance targets) or numeric
 * targetPort (ip targets). The legacy in-tree provider accepts only integers or traffic-port.
 */
import type { ProbeIntent, Readiness } from '../core/probe.js';
import type { LoadBalancerTarget, ServicePort } from '../core/target.js';
import { defaultProbeIsRight, describePort, kubeProxyElsewhere, result, type AnnotationGroup, type Provider, type ProviderResult } from './provider.js';

const PREFIX = 'service.beta.kubernetes.io/aws-load-balancer-';

/** ALB_PREFIX starts the AWS Load Balancer Controller's Ingress (ALB) annotations; on a backend Service they win over the Ingress's. */
export const ALB_PREFIX = 'alb.ingress.kubernetes.io/';

/**
 * AwsTargetType is how the AWS Load Balancer Controller registers targets: `instance` (node ports)
 * or `ip` (pod IPs). For NLBs without an annotation it is the controller's --default-target-type,
 * which the webhook cannot see.
 */
export type AwsTargetType = 'instance' | 'ip';

/** AwsSettings is the policy's `aws` section. */
export interface AwsSettings {
  /** defaultTargetType is the target type of Services without the aws-load-balancer-nlb-target-type annotation. */
  readonly defaultTargetType: AwsTargetType;
  /** alb: also write the ALB target group health check on every Service a profile recognizes, whatever its type. */
  readonly alb: boolean;
}

/** AWS_DEFAULT_SETTINGS: the controller's --default-target-type defaults to instance (aws-load-balancer-controller pkg/config/controller_config.go). */
export const AWS_DEFAULT_SETTINGS: AwsSettings = { defaultTargetType: 'instance', alb: false };

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
        `AWS: give ${described} a numeric targetPort, or set ${PREFIX}healthcheck-port to the container port number yourself: ` +
        `with ip targets the Load Balancer Controller refuses the whole Service when the health check port's targetPort is a name (${port.targetPort}); the check stays TCP`,
    };
  }
  if (port.name !== undefined) return { value: port.name };
  if (targetType === 'ip') return { value: String(port.targetPort ?? port.port) };
  return {
    warning:
      `AWS: name ${described} (for example status-port): for instance targets the Load Balancer Controller reads a health check port number ` +
      `as a raw node port, not that port's nodePort; the check stays TCP`,
  };
}

/**
 * nlb answers for the NLB of a LoadBalancer Service: one health check per Service, TCP on the
 * traffic port unless annotated.
 */
function nlb(target: LoadBalancerTarget, intent: ProbeIntent, readiness: Readiness, settings: AwsSettings): ProviderResult {
  if (intent === 'tcp') return defaultProbeIsRight('AWS', 'NLB health checks default to TCP on the traffic port');
  if (intent === 'kube-proxy') return kubeProxyElsewhere('AWS', false);
  if (!awsControllerOwns(target)) {
    return result({
      warnings: [
        `AWS: for a readiness check, set loadBalancerClass ${AWS_LBC_CLASS}, or ${AWS_TYPE_ANNOTATION}: external with ${AWS_TARGET_TYPE_ANNOTATION}, ` +
          'so that the AWS Load Balancer Controller reconciles the Service; the check stays TCP',
      ],
    });
  }
  const targetType = awsTargetType(target, settings.defaultTargetType);
  // The controller builds the instance + Local check itself: HTTP /healthz on healthCheckNodePort, which kube-proxy answers.
  if (targetType === 'instance' && target.externalTrafficPolicy === 'Local') {
    return defaultProbeIsRight('AWS', "externalTrafficPolicy Local with instance targets is checked on kube-proxy's health check node port");
  }
  if ('missing' in readiness) return result({ warnings: [`AWS: ${readiness.missing}, so the check stays TCP`] });
  const written = healthCheckPort(readiness.check.port, targetType);
  if ('warning' in written) return result({ warnings: [written.warning] });
  return result({
    groups: [
      {
        annotations: {
          [`${PREFIX}healthcheck-protocol`]: 'http',
          [`${PREFIX}healthcheck-port`]: written.value,
          [`${PREFIX}healthcheck-path`]: readiness.check.path,
        },
        reason: `AWS checks the ${targetType} targets with GET :${written.value}${readiness.check.path}`,
      },
    ],
  });
}

/** ALB_TARGET_TYPE_ANNOTATION chooses the ALB target type (`instance`, the default, or `ip`); a backend Service's value wins over the Ingress's. */
export const ALB_TARGET_TYPE_ANNOTATION = `${ALB_PREFIX}target-type`;

/**
 * alb answers for an ALB target group whose backend is the Service (pkg/ingress/model_build_target_group.go):
 * the check defaults to HTTP GET / on the traffic port, and the Service's alb.ingress.kubernetes.io
 * health check keys win over the Ingress's. Its port is `traffic-port`, a number used as it is, or
 * a Service port name resolved like the NLB's; only HTTP and HTTPS exist, so a workload without an
 * HTTP health endpoint gets nothing and a warning.
 */
function alb(target: LoadBalancerTarget, readiness: Readiness, profile: string): ProviderResult {
  if ('missing' in readiness) {
    return result({ warnings: [`AWS ALB: ${readiness.missing}, and ALB checks only HTTP or HTTPS, so its check stays GET / on the traffic port`] });
  }
  const { check } = readiness;
  let port: string;
  if (check.onTrafficPorts === true) port = 'traffic-port';
  else {
    const described = describePort(check.port);
    // The target type is usually on the Ingress, which the webhook does not see, so a name is
    // written only where both target types resolve it: ip refuses a name whose targetPort is a name.
    const instance = target.annotations[ALB_TARGET_TYPE_ANNOTATION] === 'instance';
    if (check.port.name === undefined) {
      return result({ warnings: [`AWS ALB: name ${described}: a health check port number is read as a raw port; its check stays GET / on the traffic port`] });
    }
    if (!instance && typeof check.port.targetPort === 'string') {
      return result({
        warnings: [
          `AWS ALB: give ${described} a numeric targetPort or set ${ALB_TARGET_TYPE_ANNOTATION}: instance on the Service: with ip targets the controller ` +
            `refuses a health check port whose targetPort is a name (${check.port.targetPort}); its check stays GET / on the traffic port`,
        ],
      });
    }
    port = check.port.name;
  }
  const group: AnnotationGroup = {
    annotations: {
      [`${ALB_PREFIX}healthcheck-protocol`]: 'HTTP',
      [`${ALB_PREFIX}healthcheck-port`]: port,
      [`${ALB_PREFIX}healthcheck-path`]: check.path,
    },
    reason: `AWS ALB checks the ${profile} backend with GET :${port}${check.path} instead of GET / on the traffic port`,
  };
  return result({ groups: [group] });
}

/** aws is the AWS provider. */
export const aws: Provider<AwsSettings> = {
  name: 'aws',
  title: 'AWS',
  settings: {
    key: 'aws',
    read(value, reader) {
      const map = reader.mapping(value, ['aws'], ['defaultTargetType', 'alb']);
      return {
        defaultTargetType: reader.oneOf(map?.['defaultTargetType'], ['aws', 'defaultTargetType'], ['instance', 'ip'], AWS_DEFAULT_SETTINGS.defaultTargetType),
        alb: reader.boolean(map?.['alb'], ['aws', 'alb'], AWS_DEFAULT_SETTINGS.alb),
      };
    },
  },
  anyServiceType: (settings) => settings.alb,
  annotate({ target, intent, readiness, profile, settings }): ProviderResult {
    const parts: ProviderResult[] = [];
    if (target.type === 'LoadBalancer' && target.affected.length > 0) parts.push(nlb(target, intent, readiness, settings));
    if (settings.alb && profile !== undefined && target.kind === 'Service') parts.push(alb(target, readiness, profile));
    return result({
      groups: parts.flatMap((p) => p.groups),
      warnings: parts.flatMap((p) => p.warnings),
      notes: parts.flatMap((p) => p.notes),
    });
  },
};
