/**
 * decide: the webhook's one decision, pure. Given an object, the admission operation and the
 * compiled policy, it returns the mutated object and its JSON patch (clone, change, diff), one
 * reason per change, and warnings. The same function serves the HTTP server and the offline CLI.
 * Everything it needs comes in the policy as values: the provider bound to its settings, the
 * profiles and the compiled rules; it imports the model and the policy's types only.
 */
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { isObject, objectAt, stringAt, stringMap, type JsonObject } from '../core/json.js';
import { isProbeSetting, PROBE_ANNOTATION, PROBE_SETTINGS, type ProbeSetting, type Readiness, type ReadinessEndpoint } from '../core/probe.js';
import {
  findPort,
  GATEWAY_GROUP,
  gatewayTarget,
  infrastructureAnnotations,
  invalidPorts,
  NOT_PROPAGATED_PREFIX,
  serviceTarget,
  type LoadBalancerTarget,
} from '../core/target.js';
import type { CompiledRule, HandledKind, Policy } from '../policy/schema.js';
import type { Profile } from '../profiles/profile.js';
import type { ProviderResult } from '../providers/provider.js';

/** Outcome is what a decision did: patched, warned (would patch, warn mode), unchanged (already right), skipped (not ours). */
export type Outcome = 'patched' | 'warned' | 'unchanged' | 'skipped';

/** AnnotationLocation is the map an annotation is written to. */
export type AnnotationLocation = 'metadata.annotations' | 'spec.infrastructure.annotations';

/** AnnotationChange is one annotation added or replaced, with the reason for it. */
export interface AnnotationChange {
  readonly location: AnnotationLocation;
  readonly key: string;
  readonly value: string;
  /** previous is the value replaced (only with overwrite: true); absent for an added key. */
  readonly previous?: string;
  readonly reason: string;
}

/** Decision is the result of decide. */
export interface Decision {
  readonly outcome: Outcome;
  /** object is the mutated object, present only when outcome is `patched`; it shares unchanged subtrees with the input, so treat both as read-only. */
  readonly object?: JsonObject;
  /** patch is the JSON patch from the admitted object to `object`; empty unless `patched`. */
  readonly patch: readonly Operation[];
  /** changes lists every annotation added or replaced (or, in warn mode, that would be). */
  readonly changes: readonly AnnotationChange[];
  /** reasons say, one per group of annotations applied (or that would be in warn mode), what changed and why. */
  readonly reasons: readonly string[];
  /** warnings are for the user: what could not be done as asked, and values replaced. */
  readonly warnings: readonly string[];
  /** notes explain a no-op for logs and `check`: why the object was skipped or left as it is. */
  readonly notes: readonly string[];
  /** probe is the probe setting that applied, when the object was one the webhook handles. */
  readonly probe?: ProbeSetting;
  /** profile is the name of the workload profile that recognized the object, if one did. */
  readonly profile?: string;
  /**
   * invalid says why the API server would refuse the object as it is (a port that is not a number
   * from 1 to 65535): the decision leaves it alone, with a warning; render and check report it as
   * an error in the manifest.
   */
  readonly invalid?: string;
}

/** DecisionInput is what decide looks at. */
export interface DecisionInput {
  readonly object: unknown;
  /** operation is the admission operation: CREATE, UPDATE, DELETE or CONNECT. */
  readonly operation: string;
  readonly policy: Policy;
  /** namespace is the request's namespace; it wins over metadata.namespace, which a CREATE may leave empty. */
  readonly namespace?: string | undefined;
}

/** WARNING_PREFIX starts every warning, so kubectl users see where it comes from. */
export const WARNING_PREFIX = 'lb-probe-webhook: ';

/**
 * ANNOTATIONS_SIZE_LIMIT is the most an object's annotations may hold, keys and values together:
 * the API server refuses a larger map (k8s.io/apimachinery/pkg/api/validation/objectmeta.go,
 * TotalAnnotationSizeLimitB, 256 KiB). A patch that crossed it would turn an object the API server
 * accepts into one it refuses, so the decision leaves such an object as it is.
 */
export const ANNOTATIONS_SIZE_LIMIT = 256 * 1024;

/**
 * MAX_AFFECTED_PORTS bounds the ports one decision annotates. A per-port annotation takes at least
 * 58 bytes (Azure's shortest: `service.beta.kubernetes.io/port_1_health-probe_protocol: tcp`), so
 * past about 4,500 affected ports the annotations alone exceed ANNOTATIONS_SIZE_LIMIT and the
 * object could not be stored with them. Checking the count before the provider answers keeps the
 * work and memory of one decision bounded (a few megabytes) whatever a review holds: an object of
 * tens of thousands of ports would otherwise cost tens of megabytes and hundreds of milliseconds.
 */
export const MAX_AFFECTED_PORTS = 4096;

/** LAST_APPLIED_ANNOTATION is kubectl's bookkeeping annotation; it is never copied into spec.infrastructure.annotations. */
const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** profileSuffix names the profile that applied at the end of a reason or warning: ` (profile istio)`. */
function profileSuffix(profile: Profile | undefined): string {
  return profile === undefined ? '' : ` (profile ${profile.name})`;
}

function skipped(note: string, extra: Partial<Decision> = {}): Decision {
  return { outcome: 'skipped', patch: [], changes: [], reasons: [], warnings: [], notes: [note], ...extra };
}

/** handledKind returns the kind decide handles for an object (core/v1 Service, Gateway API v1/v1beta1 Gateway), or undefined. */
export function handledKind(object: unknown): HandledKind | undefined {
  const kind = stringAt(object, 'kind');
  const apiVersion = stringAt(object, 'apiVersion');
  if (kind === 'Service' && apiVersion === 'v1') return 'Service';
  if (kind === 'Gateway' && (apiVersion === `${GATEWAY_GROUP}/v1` || apiVersion === `${GATEWAY_GROUP}/v1beta1`)) return 'Gateway';
  return undefined;
}

/**
 * probeFor picks the probe setting and the matching rule: the object's lb-probe-webhook/probe
 * annotation, else the first matching rule's probe, else the policy's probe.
 */
function probeFor(object: JsonObject, policy: Policy, namespace: string | undefined, warnings: string[]): { probe: ProbeSetting; rule: CompiledRule | undefined } {
  const metadata = objectAt(object, 'metadata');
  const rule = policy.rules.find((r) => r.matches(namespace, stringMap(metadata?.['labels'])));
  const override = stringMap(metadata?.['annotations'])[PROBE_ANNOTATION];
  if (override !== undefined) {
    if (isProbeSetting(override)) return { probe: override, rule };
    warnings.push(`${WARNING_PREFIX}ignored ${PROBE_ANNOTATION}=${JSON.stringify(override)}; use ${PROBE_SETTINGS.slice(0, -1).join(', ')} or ${PROBE_SETTINGS.at(-1)}`);
  }
  return { probe: rule?.probe ?? policy.probe, rule };
}

/** recognize returns the first of the policy's profiles that recognizes the target. */
function recognize(target: LoadBalancerTarget, policy: Policy): Profile | undefined {
  return policy.profiles.find((p) => p.recognizes(target, policy.readiness));
}

/** resolve finds an endpoint's port on the target: the check, or why there is none. */
function resolve(target: LoadBalancerTarget, endpoint: ReadinessEndpoint, onTrafficPorts = false): Readiness {
  const port = findPort(target.ports, endpoint.port);
  if (port === undefined) return { missing: `readiness port ${endpoint.port} is not a port of the Service`, endpoint };
  return { check: { ref: endpoint.port, port, path: endpoint.path, ...(onTrafficPorts && { onTrafficPorts }) } };
}

/**
 * readinessFor says where the target's readiness endpoint is: the matching rule's endpoint, else
 * the profile's plan, else the policy's endpoint. `tcp` carries a profile's reason for having none.
 */
function readinessFor(target: LoadBalancerTarget, policy: Policy, rule: CompiledRule | undefined, profile: Profile | undefined): { readiness: Readiness; tcp?: string } {
  if (rule?.readiness !== undefined) return { readiness: resolve(target, rule.readiness) };
  if (profile === undefined) return { readiness: resolve(target, policy.readiness) };
  const plan = profile.plan(target, policy.readiness);
  if ('tcp' in plan) return { readiness: { missing: plan.tcp, endpoint: policy.readiness }, tcp: plan.tcp };
  return { readiness: resolve(target, plan.endpoint, plan.onTrafficPorts) };
}

interface Placement {
  readonly location: AnnotationLocation;
  /** map returns the annotation map to write into, creating it on the clone when needed. */
  readonly map: (clone: JsonObject, owned: WeakSet<object>) => Record<string, unknown>;
  readonly existing: Record<string, string>;
  readonly warnings: readonly string[];
}

/**
 * ensureMap returns parent[key] as a map the clone owns, creating it when absent. The clone is
 * copy-on-write: it shares every subtree with the admitted object until written, and a subtree
 * is copied (shallowly) the first time it is written through.
 */
function ensureMap(parent: Record<string, unknown>, key: string, owned: WeakSet<object>): Record<string, unknown> {
  const current = parent[key];
  if (isObject(current) && owned.has(current)) return current;
  const copy: Record<string, unknown> = isObject(current) ? { ...current } : {};
  owned.add(copy);
  parent[key] = copy;
  return copy;
}

function metadataPlacement(object: JsonObject, warnings: readonly string[] = []): Placement {
  return {
    location: 'metadata.annotations',
    map: (clone, owned) => ensureMap(ensureMap(clone, 'metadata', owned), 'annotations', owned),
    existing: stringMap(objectAt(object, 'metadata')?.['annotations']),
    warnings,
  };
}

/**
 * placementFor chooses where a Gateway's annotations go. Istio copies spec.infrastructure.annotations
 * when that map exists and metadata.annotations only while it is absent, so a new infrastructure map
 * starts with the metadata annotations that propagate today: none of them stops propagating.
 */
function placementFor(kind: HandledKind, object: JsonObject, policy: Policy): Placement {
  if (kind === 'Service') return metadataPlacement(object);
  const infra = infrastructureAnnotations(object);
  const target = policy.gateway.annotationsTarget;
  if (target === 'metadata' || (target === 'auto' && infra === undefined)) {
    const warnings =
      infra === undefined
        ? []
        : [`${WARNING_PREFIX}spec.infrastructure.annotations is set, so annotations in metadata do not reach the generated Service (policy gateway.annotationsTarget: metadata)`];
    return metadataPlacement(object, warnings);
  }
  const carried =
    infra === undefined
      ? Object.fromEntries(
          Object.entries(stringMap(objectAt(object, 'metadata')?.['annotations'])).filter(
            ([k]) => !k.startsWith(NOT_PROPAGATED_PREFIX) && k !== LAST_APPLIED_ANNOTATION,
          ),
        )
      : {};
  return {
    location: 'spec.infrastructure.annotations',
    map: (clone, owned) => {
      const created = infra === undefined;
      const map = ensureMap(ensureMap(ensureMap(clone, 'spec', owned), 'infrastructure', owned), 'annotations', owned);
      if (created) Object.assign(map, carried);
      return map;
    },
    existing: infra === undefined ? carried : stringMap(infra),
    warnings: [],
  };
}

/** applyGroups writes the provider's groups into the map, whole groups only, and records each change. */
function applyGroups(
  result: ProviderResult,
  placement: Placement,
  map: Record<string, unknown>,
  policy: Policy,
  suffix: string,
  changes: AnnotationChange[],
  warnings: string[],
  notes: string[],
): string[] {
  const reasons: string[] = [];
  for (const group of result.groups) {
    const reason = group.reason + suffix;
    const entries = Object.entries(group.annotations);
    const conflicts = entries.filter(([k, v]) => placement.existing[k] !== undefined && placement.existing[k] !== v);
    if (conflicts.length > 0 && !policy.overwrite) {
      notes.push(`kept ${conflicts.map(([k]) => `${k}=${JSON.stringify(placement.existing[k])}`).join(', ')} set on the object (overwrite: false)`);
      continue;
    }
    let changed = false;
    for (const [key, value] of entries) {
      const previous = placement.existing[key];
      if (previous === value) continue;
      map[key] = value;
      changed = true;
      changes.push({ location: placement.location, key, value, ...(previous !== undefined && { previous }), reason });
      if (previous !== undefined) warnings.push(`${WARNING_PREFIX}replaced ${key}=${JSON.stringify(previous)} with ${JSON.stringify(value)} (overwrite: true)`);
    }
    if (changed) reasons.push(reason);
  }
  return reasons;
}

/**
 * decide computes the webhook's answer for one object. It never throws on odd input: an object of
 * the wrong shape is skipped with a note. Applying it to its own output changes nothing.
 */
export function decide(input: DecisionInput): Decision {
  const { object, operation, policy } = input;
  if (operation !== 'CREATE' && operation !== 'UPDATE') return skipped(`operation ${operation} is never mutated`);
  if (!isObject(object)) return skipped('no object in the request');
  const kind = handledKind(object);
  if (kind === undefined) return skipped(`${stringAt(object, 'apiVersion') ?? '?'} ${stringAt(object, 'kind') ?? '?'} is not a Service or Gateway`);
  if (!policy.kinds.includes(kind)) return skipped(`the policy does not handle ${kind}s`);

  const target: LoadBalancerTarget | undefined =
    kind === 'Service' ? serviceTarget(object) : gatewayTarget(object, (className) => policy.profiles.flatMap((p) => p.gatewayPorts?.(className) ?? []));
  if (target === undefined) return skipped('the Gateway does not ask for a LoadBalancer Service');
  const profile = recognize(target, policy);
  // Services of other types, or without an http port, are the provider's only when it says so (AWS ALB backends) and a profile knows them.
  const widened = policy.boundProvider.anyServiceType && profile !== undefined;
  if (target.type !== 'LoadBalancer' && !widened) return skipped('not a LoadBalancer Service');
  const invalid = invalidPorts(object, kind);
  if (invalid.length > 0) {
    const why = `${invalid.join('; ')} (the API server refuses this ${kind})`;
    return { outcome: 'unchanged', patch: [], changes: [], reasons: [], warnings: [`${WARNING_PREFIX}left unchanged: ${why}`], notes: [], invalid: why, ...(profile && { profile: profile.name }) };
  }
  if (target.affected.length === 0 && !widened) return skipped(kind === 'Service' ? 'no TCP port with appProtocol http or https' : 'no HTTP or HTTPS listener');

  const warnings: string[] = [];
  const notes: string[] = [];
  const named = profile === undefined ? {} : { profile: profile.name };
  const namespace = input.namespace || stringAt(objectAt(object, 'metadata'), 'namespace');
  const { probe, rule } = probeFor(object, policy, namespace, warnings);
  if (probe === 'none') return skipped('probe is none', { warnings, probe, ...named });
  /**
   * leftAlone answers an object the webhook could annotate but must not, with a warning saying
   * what to do and then why: the advice first, since the API server may cut a warning past 256
   * characters.
   */
  const leftAlone = (advice: string, why: string): Decision => {
    warnings.push(`${WARNING_PREFIX}left unchanged; ${advice}: ${why}`);
    return { outcome: 'unchanged', patch: [], changes: [], reasons: [], warnings, notes, probe, ...named };
  };

  if (target.affected.length > MAX_AFFECTED_PORTS) {
    return leftAlone(
      `annotate it by hand or set ${PROBE_ANNOTATION}: none`,
      `${target.affected.length} ports with appProtocol http or https, over the ${MAX_AFFECTED_PORTS} one object can be annotated for ` +
        `(their annotations would exceed the API server's ${ANNOTATIONS_SIZE_LIMIT / 1024} KiB limit)`,
    );
  }

  const { readiness, tcp } = readinessFor(target, policy, rule, profile);
  let intent = probe;
  if (intent === 'readiness' && tcp !== undefined) {
    intent = 'tcp';
    notes.push(`${tcp}, so readiness is TCP${profileSuffix(profile)}`);
  }
  const result = policy.boundProvider.annotate({ target, intent, readiness, profile: profile?.name });
  warnings.push(...result.warnings.map((w) => WARNING_PREFIX + w + profileSuffix(profile)));
  notes.push(...result.notes);

  const placement = placementFor(kind, object, policy);
  warnings.push(...placement.warnings);
  // Copy-on-write: the clone shares all it does not change with the admitted object, which stays untouched.
  const clone: JsonObject = { ...object };
  const owned = new WeakSet<object>([clone]);
  const map = placement.map(clone, owned);
  const changes: AnnotationChange[] = [];
  const reasons = applyGroups(result, placement, map, policy, profileSuffix(profile), changes, warnings, notes);

  if (changes.length === 0) return { outcome: 'unchanged', patch: [], changes, reasons: [], warnings, notes, probe, ...named };

  const bytes = annotationBytes(map);
  if (bytes > ANNOTATIONS_SIZE_LIMIT) {
    return leftAlone(
      'remove some annotations (a large kubectl.kubernetes.io/last-applied-configuration: use kubectl apply --server-side) or annotate it by hand',
      `${placement.location} would hold ${bytes} bytes, over the API server's limit of ${ANNOTATIONS_SIZE_LIMIT}`,
    );
  }

  if (placement.location === 'spec.infrastructure.annotations') {
    const size = Object.keys(map).length;
    const max = policy.gateway.maxInfrastructureAnnotations;
    if (size > max) {
      return leftAlone(
        'remove some, raise gateway.maxInfrastructureAnnotations (Gateway API v1.6+ allows 16), or annotate the generated Service',
        `spec.infrastructure.annotations would hold ${size} entries, over the cap of ${max}`,
      );
    }
  }

  if (policy.mode === 'warn') return { outcome: 'warned', patch: [], changes, reasons, warnings, notes, probe, ...named };
  return { outcome: 'patched', object: clone, patch: diffWritten(object, clone, owned), changes, reasons, warnings, notes, probe, ...named };
}

/** annotationBytes is the size the API server counts for an annotation map: every key and value, in bytes of UTF-8. */
function annotationBytes(map: Record<string, unknown>): number {
  let bytes = 0;
  for (const key in map) {
    const value = map[key];
    bytes += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  return bytes;
}

/**
 * diffWritten is fast-json-patch's compare of the admitted object and its copy-on-write clone,
 * run only where the change wrote: it follows the copies the clone owns down from the top (the
 * other members are the very same objects, so a large status or managedFields is never walked)
 * and compares each written map with its original there. A map the change created, where the
 * object had none, is added as it is: compare would deep-clone it (a JSON round trip), and the
 * clone's own new map is never changed again.
 */
function diffWritten(object: JsonObject, clone: JsonObject, owned: WeakSet<object>, path = ''): Operation[] {
  const patch: Operation[] = [];
  for (const key of Object.keys(clone)) {
    const before = object[key];
    const after = clone[key];
    if (after === before) continue;
    const at = `${path}/${fastJsonPatch.escapePathComponent(key)}`;
    if (before === undefined && !(key in object)) patch.push({ op: 'add', path: at, value: after });
    else if (isObject(before) && isObject(after) && owned.has(after) && Object.values(after).some((v) => isObject(v) && owned.has(v))) patch.push(...diffWritten(before, after, owned, at));
    else patch.push(...fastJsonPatch.compare({ [key]: before }, { [key]: after }).map((op) => ({ ...op, path: `${path}${op.path}` })));
  }
  return patch;
}

/**
 * userMessages lists what a user is told about a decision (kubectl warnings, CLI stderr): each
 * change with its reason (as `would change` in warn mode), then the warnings.
 */
export function userMessages(decision: Decision): string[] {
  const lead = decision.outcome === 'warned' ? `${WARNING_PREFIX}would change (mode warn): ` : WARNING_PREFIX;
  return [...decision.reasons.map((r) => lead + r), ...decision.warnings];
}
