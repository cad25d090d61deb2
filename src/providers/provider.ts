/**
 * The provider contract: one cloud per module, each turning a probe intent into that cloud's
 * annotations for one load-balancer target.
 */
import type { ProbeIntent, ReadinessEndpoint } from '../core/probe.js';
import type { LoadBalancerTarget, ServicePort } from '../core/target.js';
import type { Policy } from '../policy/schema.js';

/** ProviderInput is everything a provider may look at; it never sees the raw object. */
export interface ProviderInput {
  readonly target: LoadBalancerTarget;
  readonly intent: ProbeIntent;
  readonly readiness: ReadinessEndpoint;
  readonly policy: Policy;
}

/**
 * AnnotationGroup is a set of annotations that only make sense together (one port's probe
 * protocol, port and path). A group is applied whole or not at all, so a user's own probe
 * setting for a port is never mixed with ours.
 */
export interface AnnotationGroup {
  readonly annotations: Readonly<Record<string, string>>;
  /** reason says in one short sentence what the group changes and why. */
  readonly reason: string;
}

/** ProviderResult is a provider's answer: annotation groups, warnings for the user, and notes for the log. */
export interface ProviderResult {
  readonly groups: readonly AnnotationGroup[];
  /** warnings are shown to the user (kubectl, CLI): something could not be done as asked. */
  readonly warnings: readonly string[];
  /** notes explain a deliberate no-op (for logs and `check`), e.g. the cloud's default probe is already right. */
  readonly notes: readonly string[];
}

/** Provider turns a probe intent into one cloud's annotations. Implementations are pure. */
export interface Provider {
  /** name is the policy's `provider` value. */
  readonly name: string;
  /** title is the cloud's display name, used in messages. */
  readonly title: string;
  /** annotate returns the annotations for the input; it never reads or changes anything else. */
  annotate(input: ProviderInput): ProviderResult;
}

/** result builds a ProviderResult, defaulting the parts not given to empty. */
export function result(parts: Partial<ProviderResult>): ProviderResult {
  return { groups: parts.groups ?? [], warnings: parts.warnings ?? [], notes: parts.notes ?? [] };
}

/** describePort names a port for messages: `port 80 (http)`. */
export function describePort(port: ServicePort): string {
  return `port ${port.port}${port.name === undefined ? '' : ` (${port.name})`}`;
}

/** readinessUrl renders a readiness endpoint for messages: `:status-port/healthz/ready`. */
export function readinessUrl(readiness: ReadinessEndpoint): string {
  return `:${readiness.port}${readiness.path}`;
}

/**
 * defaultProbeIsRight answers a provider whose cloud already probes something other than the
 * gateway's `GET /` for the given intent: nothing to change, one note saying why.
 */
export function defaultProbeIsRight(title: string, why: string): ProviderResult {
  return result({ notes: [`${title}: ${why}; nothing to change`] });
}

/**
 * readinessUnsupported answers a readiness intent a cloud cannot express at admission time:
 * nothing to change, one warning saying why and what the default probe does instead.
 */
export function readinessUnsupported(title: string, why: string): ProviderResult {
  return result({ warnings: [`${title} cannot probe the readiness endpoint: ${why}; its default probe stays`] });
}
