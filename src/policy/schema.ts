/**
 * The policy: what the webhook does, as read from the policy file. parse.ts validates a file and
 * compiles it into this shape, which already carries what the decision needs as values: the
 * provider bound to its own settings, the profiles in use and each rule's matcher. The decision
 * therefore imports no registry.
 */
import type { ProbeSetting, ReadinessEndpoint } from '../core/probe.js';
import type { Profile } from '../profiles/profile.js';
import type { BoundProvider } from '../providers/provider.js';

/** Mode is `enforce` (patch) or `warn` (no patch; only warnings and logs of what would change). */
export type Mode = 'enforce' | 'warn';

/** HandledKind is an object kind the webhook can handle. */
export type HandledKind = 'Service' | 'Gateway';

/** AnnotationsTarget says where a Gateway's annotations go: auto, spec.infrastructure.annotations or metadata.annotations. */
export type AnnotationsTarget = 'auto' | 'infrastructure' | 'metadata';

/** Rule sets the probe, or the readiness endpoint, or both, for the objects it matches; the first matching rule wins. */
export interface Rule {
  readonly match: {
    /** namespaces are names or globs (`*`, `?`); absent matches every namespace. */
    readonly namespaces?: readonly string[];
    /** labels must all be present on the object with these values; absent matches every object. */
    readonly labels?: Readonly<Record<string, string>>;
  };
  /** probe is the probe for the matched objects; absent keeps the policy's. */
  readonly probe?: ProbeSetting;
  /** readiness replaces the readiness endpoint (the profile's or the policy's) for the matched objects. */
  readonly readiness?: ReadinessEndpoint;
}

/** CompiledRule is a Rule with its match compiled (globs to regular expressions, once, at load). */
export interface CompiledRule extends Rule {
  /** matches tells whether an object in namespace with these labels is one the rule is for. */
  matches(namespace: string | undefined, labels: Readonly<Record<string, string>>): boolean;
}

/** Policy is a validated, compiled policy file with every default filled in. */
export interface Policy {
  /** provider is the policy's `provider` value. */
  readonly provider: string;
  /** boundProvider is that provider, bound to its own settings section. */
  readonly boundProvider: BoundProvider;
  /** settings holds each provider's settings section as read (defaults filled in), by section key. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly mode: Mode;
  readonly probe: ProbeSetting;
  readonly readiness: ReadinessEndpoint;
  readonly overwrite: boolean;
  readonly kinds: readonly HandledKind[];
  readonly gateway: {
    readonly annotationsTarget: AnnotationsTarget;
    readonly maxInfrastructureAnnotations: number;
  };
  /** profiles are the workload profiles in use, in the order they are tried. */
  readonly profiles: readonly Profile[];
  readonly rules: readonly CompiledRule[];
}

/** PolicyDefaults are the defaults of the keys that have one and are not a provider's. */
export type PolicyDefaults = Pick<Policy, 'mode' | 'probe' | 'readiness' | 'overwrite' | 'kinds' | 'gateway'>;

/**
 * DEFAULT_POLICY holds the default of every key the policy itself owns (`provider` has none;
 * `profiles` defaults to every profile; provider sections default in their providers).
 * readiness is Istio's gateway readiness endpoint (kube-gateway.yaml: GET :15021/healthz/ready);
 * maxInfrastructureAnnotations is the Gateway API cap on spec.infrastructure.annotations up to v1.5
 * (apis/v1/gateway_types.go; 16 from v1.6).
 */
export const DEFAULT_POLICY: PolicyDefaults = {
  mode: 'enforce',
  probe: 'tcp',
  readiness: { port: 'status-port', path: '/healthz/ready' },
  overwrite: false,
  kinds: ['Service', 'Gateway'],
  gateway: { annotationsTarget: 'auto', maxInfrastructureAnnotations: 8 },
};

/** MAX_INFRASTRUCTURE_ANNOTATIONS is the highest cap the Gateway API allows (v1.6 and later). */
export const MAX_INFRASTRUCTURE_ANNOTATIONS = 16;
