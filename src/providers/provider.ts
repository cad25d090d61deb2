/**
 * The provider contract: one cloud per module, each turning a probe intent into that cloud's
 * annotations for one load-balancer target. A provider owns its policy section (`azure:`, `aws:`,
 * `custom:`): it declares the key and reads it through the SettingsReader the policy parser gives
 * it, so problems carry the same path and line as every other policy error. It never sees the
 * policy itself, only its own settings.
 */
import type { JsonObject } from '../core/json.js';
import type { ProbeIntent, Readiness } from '../core/probe.js';
import type { LoadBalancerTarget, ServicePort } from '../core/target.js';

/** AnnotateInput is everything a provider may look at besides its settings; it never sees the raw object. */
export interface AnnotateInput {
  readonly target: LoadBalancerTarget;
  readonly intent: ProbeIntent;
  /** readiness is the target's readiness endpoint, resolved (or why there is none), whatever the intent. */
  readonly readiness: Readiness;
  /** profile is the name of the workload profile that recognized the target, if one did. */
  readonly profile: string | undefined;
}

/** ProviderInput is an AnnotateInput with the provider's own settings. */
export interface ProviderInput<S> extends AnnotateInput {
  readonly settings: S;
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

/** SettingsPath is the path of a value in the policy file, e.g. ['aws', 'defaultTargetType']. */
export type SettingsPath = readonly (string | number)[];

/**
 * SettingsReader is what the policy parser lends a provider to read its section. Each check
 * reports a problem at its path (the parser adds the file and line) and returns the fallback, so
 * every problem in the file is reported together.
 */
export interface SettingsReader {
  /** provider is the policy's `provider` value (undefined when it is missing or wrong), for settings only one provider reads. */
  readonly provider: string | undefined;
  /** problem records a problem at path. */
  problem(path: SettingsPath, message: string): void;
  /** mapping returns value as a mapping with only the allowed keys (any keys when absent), undefined when absent or not a mapping. */
  mapping(value: unknown, path: SettingsPath, allowed?: readonly string[]): JsonObject | undefined;
  /** boolean returns value when it is true or false, else the fallback. */
  boolean(value: unknown, path: SettingsPath, fallback: boolean): boolean;
  /** oneOf returns value when it is one of allowed, else the fallback. */
  oneOf<T extends string>(value: unknown, path: SettingsPath, allowed: readonly T[], fallback: T): T;
  /** stringMap returns the entries of a mapping whose values are strings, reporting the others. */
  stringMap(value: unknown, path: SettingsPath): Record<string, string>;
}

/** SettingsSection declares a provider's policy section: its top-level key and how to read it. */
export interface SettingsSection<S> {
  /** key is the section's top-level key in the policy file. */
  readonly key: string;
  /** read validates the section's value (undefined when the file has none) and returns the settings, defaults filled in. */
  read(value: unknown, reader: SettingsReader): S;
}

/** Provider turns a probe intent into one cloud's annotations. Implementations are pure. */
export interface Provider<S = undefined> {
  /** name is the policy's `provider` value. */
  readonly name: string;
  /** title is the cloud's display name, used in messages. */
  readonly title: string;
  /** settings declares the provider's own policy section, when it has one. */
  readonly settings?: SettingsSection<S>;
  /**
   * anyServiceType tells whether, with these settings, the provider also acts on Services that are
   * not of type LoadBalancer (or have no http port), when a profile recognizes them (AWS ALB backends).
   */
  anyServiceType?(settings: S): boolean;
  /** annotate returns the annotations for the input; it never reads or changes anything else. */
  annotate(input: ProviderInput<S>): ProviderResult;
}

/** BoundProvider is a provider with its settings read and bound to it: what a compiled policy carries. */
export interface BoundProvider {
  readonly name: string;
  readonly title: string;
  /** anyServiceType is the provider's anyServiceType answer for the bound settings. */
  readonly anyServiceType: boolean;
  annotate(input: AnnotateInput): ProviderResult;
}

/** PluggedProvider is a provider as the registry holds it: its settings type hidden behind bind. */
export interface PluggedProvider {
  readonly name: string;
  readonly title: string;
  /** settingsKey is the provider's policy section key, if it has one. */
  readonly settingsKey: string | undefined;
  /** readSettings validates the provider's section (reporting through the reader) and returns its settings. */
  readSettings(value: unknown, reader: SettingsReader): unknown;
  /** bind returns the provider bound to settings that readSettings returned. */
  bind(settings: unknown): BoundProvider;
}

/**
 * Bound is a provider bound to its settings. A class, so two policies compiled from the same file
 * compare equal field by field (the provider module and the settings), methods aside.
 */
class Bound<S> implements BoundProvider {
  readonly name: string;
  readonly title: string;
  readonly anyServiceType: boolean;
  constructor(
    private readonly provider: Provider<S>,
    private readonly settings: S,
  ) {
    this.name = provider.name;
    this.title = provider.title;
    this.anyServiceType = provider.anyServiceType?.(settings) ?? false;
  }
  annotate(input: AnnotateInput): ProviderResult {
    return this.provider.annotate({ ...input, settings: this.settings });
  }
}

/** plug wraps a provider for the registry, hiding the type of its settings. */
export function plug<S>(provider: Provider<S>): PluggedProvider {
  return {
    name: provider.name,
    title: provider.title,
    settingsKey: provider.settings?.key,
    readSettings: (value, reader) => provider.settings?.read(value, reader),
    // settings is what readSettings returned for this same provider: S, or undefined when it has no section.
    bind: (settings) => new Bound(provider, settings as S),
  };
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
export function readinessUrl(readiness: { readonly port: string | number; readonly path: string }): string {
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
 * kubeProxyElsewhere answers the kube-proxy intent on a cloud other than Azure, where it means
 * nothing: a note when the cloud's default probe already is kube-proxy's, else a warning.
 */
export function kubeProxyElsewhere(title: string, defaultIsKubeProxy: boolean): ProviderResult {
  return defaultIsKubeProxy
    ? defaultProbeIsRight(title, "the default check already is kube-proxy's /healthz")
    : result({ warnings: [`${title}: probe kube-proxy is for Azure (AKS probes kube-proxy's /healthz on node port 10256); the default probe stays`] });
}

/**
 * readinessUnsupported answers a readiness intent a cloud cannot express at admission time:
 * nothing to change, one warning saying why and what the default probe does instead.
 */
export function readinessUnsupported(title: string, why: string): ProviderResult {
  return result({ warnings: [`${title} cannot probe the readiness endpoint: ${why}; its default probe stays`] });
}
