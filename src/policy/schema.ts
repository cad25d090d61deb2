/**
 * The policy: what the webhook does, as read from the policy file. Pure types and defaults; the
 * parser in parse.ts validates a file into this shape.
 */
import type { ProbeSetting, ReadinessEndpoint } from '../core/probe.js';
import type { AwsTargetType } from '../providers/aws.js';

/** Mode is `enforce` (patch) or `warn` (no patch; only warnings and logs of what would change). */
export type Mode = 'enforce' | 'warn';

/** HandledKind is an object kind the webhook can handle. */
export type HandledKind = 'Service' | 'Gateway';

/** AnnotationsTarget says where a Gateway's annotations go: auto, spec.infrastructure.annotations or metadata.annotations. */
export type AnnotationsTarget = 'auto' | 'infrastructure' | 'metadata';

/** CustomTemplates are the custom provider's annotation templates for one probe intent. */
export interface CustomTemplates {
  /** perPort is applied once per affected port, with {port} filled in. */
  readonly perPort: Readonly<Record<string, string>>;
  /** perService is applied once per Service. */
  readonly perService: Readonly<Record<string, string>>;
}

/** Rule sets the probe for the objects it matches; the first matching rule wins. */
export interface Rule {
  readonly match: {
    /** namespaces are names or globs (`*`, `?`); absent matches every namespace. */
    readonly namespaces?: readonly string[];
    /** labels must all be present on the object with these values; absent matches every object. */
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly probe: ProbeSetting;
}

/** Policy is a validated policy file with every default filled in. */
export interface Policy {
  readonly provider: string;
  readonly mode: Mode;
  readonly probe: ProbeSetting;
  readonly readiness: ReadinessEndpoint;
  readonly overwrite: boolean;
  readonly kinds: readonly HandledKind[];
  readonly gateway: {
    readonly annotationsTarget: AnnotationsTarget;
    readonly maxInfrastructureAnnotations: number;
  };
  readonly azure: { readonly hideStatusPort: boolean };
  /** aws.defaultTargetType is the target type of Services without the aws-load-balancer-nlb-target-type annotation. */
  readonly aws: { readonly defaultTargetType: AwsTargetType };
  readonly custom: { readonly tcp?: CustomTemplates; readonly readiness?: CustomTemplates };
  readonly rules: readonly Rule[];
}

/**
 * DEFAULT_POLICY holds the default of every key but `provider`, which has none.
 * readiness is Istio's gateway readiness endpoint (kube-gateway.yaml: GET :15021/healthz/ready);
 * maxInfrastructureAnnotations is the Gateway API cap on spec.infrastructure.annotations up to v1.5
 * (apis/v1/gateway_types.go; 16 from v1.6).
 */
export const DEFAULT_POLICY: Omit<Policy, 'provider'> = {
  mode: 'enforce',
  probe: 'tcp',
  readiness: { port: 'status-port', path: '/healthz/ready' },
  overwrite: false,
  kinds: ['Service', 'Gateway'],
  gateway: { annotationsTarget: 'auto', maxInfrastructureAnnotations: 8 },
  azure: { hideStatusPort: false },
  // The controller's --default-target-type defaults to instance (aws-load-balancer-controller pkg/config/controller_config.go).
  aws: { defaultTargetType: 'instance' },
  custom: {},
  rules: [],
};

/** MAX_INFRASTRUCTURE_ANNOTATIONS is the highest cap the Gateway API allows (v1.6 and later). */
export const MAX_INFRASTRUCTURE_ANNOTATIONS = 16;
