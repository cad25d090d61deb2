/**
 * parsePolicy validates a policy file's text and compiles it into a Policy. Pure: the caller reads
 * the file. Every problem is collected and reported together, each with its path and line. Each
 * provider reads its own section (`azure:`, `aws:`, `custom:`) through a SettingsReader; the
 * parser only knows the keys that are the policy's own.
 */
import { LineCounter, parseAllDocuments, isNode, type Document } from 'yaml';
import { isProbeSetting, PROBE_SETTINGS, type ReadinessEndpoint } from '../core/probe.js';
import { isObject, type JsonObject } from '../core/json.js';
import { globToRegExp, isPortName } from '../core/names.js';
import { binaryProblem, duplicateKeys, lineAt } from '../core/yaml.js';
import { ErrorCode, WebhookError, yamlMessage } from '../errors.js';
import { PROFILE_NAMES, PROFILES } from '../profiles/index.js';
import type { Profile } from '../profiles/profile.js';
import { PROVIDER_NAMES, PROVIDERS } from '../providers/index.js';
import type { SettingsReader } from '../providers/provider.js';
import { DEFAULT_POLICY, MAX_INFRASTRUCTURE_ANNOTATIONS, type CompiledRule, type HandledKind, type Policy, type Rule } from './schema.js';

type Path = readonly (string | number)[];

interface Problem {
  readonly path: Path;
  readonly message: string;
}

class Problems {
  readonly list: Problem[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
}

/** SECTION_KEYS are the providers' own sections, in registry order. */
const SECTION_KEYS: readonly string[] = Object.values(PROVIDERS).flatMap((p) => (p.settingsKey === undefined ? [] : [p.settingsKey]));

const ROOT_KEYS = ['provider', 'mode', 'probe', 'readiness', 'overwrite', 'kinds', 'gateway', 'profiles', ...SECTION_KEYS, 'rules'];

function oneOf(values: readonly string[]): string {
  return values.map((v) => `"${v}"`).join(', ');
}

/** mapping checks that value is a mapping with only the allowed keys; it reports and returns undefined otherwise. */
function mapping(value: unknown, path: Path, allowed: readonly string[] | undefined, problems: Problems): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    problems.add(path, 'must be a mapping');
    return undefined;
  }
  if (allowed !== undefined) {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) problems.add([...path, key], `unknown key; allowed: ${allowed.join(', ')}`);
    }
  }
  return value;
}

function enumValue<T extends string>(value: unknown, path: Path, allowed: readonly T[], fallback: T, problems: Problems): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  problems.add(path, `must be one of ${oneOf(allowed)}, got ${JSON.stringify(value)}`);
  return fallback;
}

function booleanValue(value: unknown, path: Path, fallback: boolean, problems: Problems): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  problems.add(path, `must be true or false, got ${JSON.stringify(value)}`);
  return fallback;
}

function stringMapValue(value: unknown, path: Path, problems: Problems): Record<string, string> {
  const map = mapping(value, path, undefined, problems);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    if (typeof v === 'string') out[k] = v;
    else problems.add([...path, k], `must be a string (quote it), got ${JSON.stringify(v)}`);
  }
  return out;
}

/** readinessValue reads a readiness endpoint at path, each missing part taken from defaults. */
function readinessValue(value: unknown, path: Path, defaults: ReadinessEndpoint, problems: Problems): ReadinessEndpoint {
  const map = mapping(value, path, ['port', 'path'], problems);
  let port = defaults.port;
  const rawPort = map?.['port'];
  if (typeof rawPort === 'number' && Number.isInteger(rawPort) && rawPort >= 1 && rawPort <= 65535) port = rawPort;
  else if (typeof rawPort === 'string' && isPortName(rawPort)) port = rawPort;
  else if (rawPort !== undefined && rawPort !== null) {
    problems.add([...path, 'port'], `must be a port number (1-65535) or a Service port name, got ${JSON.stringify(rawPort)}`);
  }
  let httpPath = defaults.path;
  const rawPath = map?.['path'];
  if (typeof rawPath === 'string' && /^\/\S*$/.test(rawPath)) httpPath = rawPath;
  else if (rawPath !== undefined && rawPath !== null) {
    problems.add([...path, 'path'], `must be an HTTP path starting with "/" and without spaces, got ${JSON.stringify(rawPath)}`);
  }
  return { port, path: httpPath };
}

/** profilesValue reads `profiles`: a list of profile names, each once; every profile when absent. */
function profilesValue(value: unknown, problems: Problems): readonly Profile[] {
  const all = Object.values(PROFILES);
  if (value === undefined || value === null) return all;
  if (!Array.isArray(value)) {
    problems.add(['profiles'], `must be a list of ${oneOf(PROFILE_NAMES)} (an empty list recognizes none)`);
    return all;
  }
  const names: string[] = [];
  value.forEach((name: unknown, i) => {
    if (typeof name !== 'string' || !PROFILE_NAMES.includes(name)) {
      problems.add(['profiles', i], `unknown profile ${JSON.stringify(name)}; one of ${oneOf(PROFILE_NAMES)}`);
    } else if (names.includes(name)) {
      problems.add(['profiles', i], `${name} is listed twice`);
    } else {
      names.push(name);
    }
  });
  return all.filter((p) => names.includes(p.name));
}

function kindsValue(value: unknown, problems: Problems): readonly HandledKind[] {
  if (value === undefined || value === null) return DEFAULT_POLICY.kinds;
  const allowed: readonly HandledKind[] = ['Service', 'Gateway'];
  if (!Array.isArray(value) || value.length === 0) {
    problems.add(['kinds'], `must be a non-empty list of ${oneOf(allowed)}`);
    return DEFAULT_POLICY.kinds;
  }
  const kinds: HandledKind[] = [];
  value.forEach((kind: unknown, i) => {
    if (typeof kind !== 'string' || !(allowed as readonly string[]).includes(kind)) {
      problems.add(['kinds', i], `must be one of ${oneOf(allowed)}, got ${JSON.stringify(kind)}`);
    } else if (kinds.includes(kind as HandledKind)) {
      problems.add(['kinds', i], `${kind} is listed twice`);
    } else {
      kinds.push(kind as HandledKind);
    }
  });
  return kinds;
}

function gatewayValue(value: unknown, problems: Problems): Policy['gateway'] {
  const map = mapping(value, ['gateway'], ['annotationsTarget', 'maxInfrastructureAnnotations'], problems);
  const defaults = DEFAULT_POLICY.gateway;
  const annotationsTarget = enumValue(map?.['annotationsTarget'], ['gateway', 'annotationsTarget'], ['auto', 'infrastructure', 'metadata'], defaults.annotationsTarget, problems);
  let max = defaults.maxInfrastructureAnnotations;
  const rawMax = map?.['maxInfrastructureAnnotations'];
  if (typeof rawMax === 'number' && Number.isInteger(rawMax) && rawMax >= 1 && rawMax <= MAX_INFRASTRUCTURE_ANNOTATIONS) max = rawMax;
  else if (rawMax !== undefined && rawMax !== null) {
    problems.add(
      ['gateway', 'maxInfrastructureAnnotations'],
      `must be a whole number from 1 to ${MAX_INFRASTRUCTURE_ANNOTATIONS} (8 up to Gateway API v1.5, 16 from v1.6), got ${JSON.stringify(rawMax)}`,
    );
  }
  return { annotationsTarget, maxInfrastructureAnnotations: max };
}

/**
 * Matcher is a rule with its match compiled: namespace globs to regular expressions once, at load.
 * A class, so two policies compiled from the same file compare equal field by field.
 */
class Matcher implements CompiledRule {
  readonly match: Rule['match'];
  readonly probe?: Rule['probe'];
  readonly readiness?: Rule['readiness'];
  readonly #globs: readonly RegExp[] | undefined;
  readonly #labels: readonly (readonly [string, string])[];
  constructor(rule: Rule) {
    this.match = rule.match;
    if (rule.probe !== undefined) this.probe = rule.probe;
    if (rule.readiness !== undefined) this.readiness = rule.readiness;
    this.#globs = rule.match.namespaces?.map(globToRegExp);
    this.#labels = Object.entries(rule.match.labels ?? {});
  }
  matches(namespace: string | undefined, labels: Readonly<Record<string, string>>): boolean {
    const globs = this.#globs;
    if (globs !== undefined && (namespace === undefined || !globs.some((g) => g.test(namespace)))) return false;
    return this.#labels.every(([k, v]) => labels[k] === v);
  }
}

function rulesValue(value: unknown, readiness: ReadinessEndpoint, problems: Problems): readonly CompiledRule[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(['rules'], 'must be a list of { match, probe, readiness }');
    return [];
  }
  const rules: CompiledRule[] = [];
  value.forEach((raw: unknown, i) => {
    const path = ['rules', i];
    const rule = mapping(raw, path, ['match', 'probe', 'readiness'], problems);
    if (rule === undefined) {
      if (raw === undefined || raw === null) problems.add(path, 'must be a mapping with match, and probe or readiness');
      return;
    }
    if (rule['match'] === undefined || rule['match'] === null) problems.add([...path, 'match'], 'is required (`match: {}` matches every object)');
    const match = mapping(rule['match'], [...path, 'match'], ['namespaces', 'labels'], problems);
    let namespaces: string[] | undefined;
    if (match?.['namespaces'] !== undefined && match['namespaces'] !== null) {
      const list = match['namespaces'];
      if (!Array.isArray(list) || list.some((n) => typeof n !== 'string' || n.length === 0)) {
        problems.add([...path, 'match', 'namespaces'], 'must be a list of namespace names or globs');
      } else {
        namespaces = list as string[];
      }
    }
    const labels = match?.['labels'] === undefined ? undefined : stringMapValue(match['labels'], [...path, 'match', 'labels'], problems);
    const rawProbe = rule['probe'];
    const hasReadiness = rule['readiness'] !== undefined && rule['readiness'] !== null;
    if (rawProbe === undefined || rawProbe === null) {
      // A rule may set only the readiness endpoint; its objects keep the policy's probe.
      if (!hasReadiness) {
        problems.add(path, 'needs probe, readiness or both');
        return;
      }
    } else if (!isProbeSetting(rawProbe)) {
      problems.add([...path, 'probe'], `must be one of ${oneOf(PROBE_SETTINGS)}, got ${JSON.stringify(rawProbe)}`);
      return;
    }
    const ruleReadiness = hasReadiness ? readinessValue(rule['readiness'], [...path, 'readiness'], readiness, problems) : undefined;
    rules.push(
      new Matcher({
        match: { ...(namespaces && { namespaces }), ...(labels && { labels }) },
        ...(isProbeSetting(rawProbe) && { probe: rawProbe }),
        ...(ruleReadiness && { readiness: ruleReadiness }),
      }),
    );
  });
  return rules;
}

/** settingsReader lends the parser's checks to the providers, recording their problems with the others. */
function settingsReader(problems: Problems, provider: string | undefined): SettingsReader {
  return {
    provider,
    problem: (path, message) => problems.add(path, message),
    mapping: (value, path, allowed) => mapping(value, path, allowed, problems),
    boolean: (value, path, fallback) => booleanValue(value, path, fallback, problems),
    oneOf: (value, path, allowed, fallback) => enumValue(value, path, allowed, fallback, problems),
    stringMap: (value, path) => stringMapValue(value, path, problems),
  };
}

/** NO_PROVIDER stands in while a policy without a valid provider is being checked; such a policy is never returned. */
const NO_PROVIDER: Policy['boundProvider'] = {
  name: '',
  title: '',
  anyServiceType: false,
  annotate: () => ({ groups: [], warnings: [], notes: [] }),
};

/** lineOf finds the 1-based line of the node at path, or of its nearest ancestor that exists. */
function lineOf(doc: Document, counter: LineCounter, path: Path): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

function formatPath(path: Path): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * MAX_POLICY_BYTES bounds a policy: 64 KiB, ten times a long policy, so a wrong file (a log, a
 * dump) or a hostile ConfigMap is refused before it is parsed, at start and at every reload alike.
 */
export const MAX_POLICY_BYTES = 64 * 1024;

/** utf8Bytes is the UTF-8 length of text, counted without encoding it. */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * parsePolicy is the one way from policy text to a compiled Policy, at start and at every reload:
 * it refuses text over MAX_POLICY_BYTES before parsing it, parses one YAML document, finds
 * duplicate keys in linear time, validates every key and compiles the result (provider bound to
 * its settings, profiles, rule matchers), with defaults filled in. It throws one WebhookError
 * (LBP_POLICY_INVALID) whose details list every problem as `source:line: path: message`.
 */
export function parsePolicy(text: string, source = 'policy'): Policy {
  const fail = (details: string[]): never => {
    throw new WebhookError(ErrorCode.POLICY_INVALID, `${source}: invalid policy (${details.length} ${details.length === 1 ? 'problem' : 'problems'})`, { details });
  };
  // A UTF-16 code unit is at least one byte of UTF-8: a longer text is over the bound without counting.
  if (text.length > MAX_POLICY_BYTES || utf8Bytes(text) > MAX_POLICY_BYTES) {
    fail([`${source}: larger than ${MAX_POLICY_BYTES} bytes, the most a policy may be; not a policy file`]);
  }
  const binary = binaryProblem(text);
  if (binary !== undefined) {
    // Lines are counted while parsing; a binary file is refused before that, so count them here.
    let line = 1;
    for (let i = text.indexOf('\n'); i !== -1 && i < binary.offset; i = text.indexOf('\n', i + 1)) line++;
    fail([`${source}:${line}: ${binary.message}`]);
  }
  const counter = new LineCounter();
  const at = (offset: number): string => `${source}:${lineAt(counter, text, offset)}`;
  const docs = parseAllDocuments(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: false });
  const all = Array.isArray(docs) ? docs : [];
  const filled = all.filter((d) => d.contents !== null || d.errors.length > 0);
  if (filled.length > 1) {
    fail([`${at(filled[1]?.range[0] ?? 0)}: a policy is one YAML document; this file has ${filled.length} (remove the --- that starts the next one)`]);
  }
  const doc = filled[0] ?? all[0];
  if (doc === undefined) return fail([`${source}: (root): the policy is empty; at least \`provider\` is required`]);
  let duplicates;
  try {
    duplicates = duplicateKeys(doc, counter);
  } catch (err: unknown) {
    if (err instanceof RangeError) return fail([`${source}: nested too deeply`]);
    throw err;
  }
  const errors = [...doc.errors.map((e) => ({ offset: e.pos[0], message: yamlMessage(e.message) })), ...duplicates].sort((a, b) => a.offset - b.offset);
  if (errors.length > 0) fail([...new Set(errors.map((e) => `${at(e.offset)}: ${e.message}`))]);
  const problems = new Problems();
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }); // the yaml library's guard against alias bombs: a ReferenceError past 100 expansions
  } catch (err: unknown) {
    return fail([`${source}: ${err instanceof RangeError ? 'nested too deeply' : (err as Error).message.replace(/^Excessive alias count.*/, 'too many aliases (more than 100 expansions)')}`]);
  }
  const root = mapping(raw, [], ROOT_KEYS, problems);
  if (root === undefined && !problems.list.length) problems.add([], 'the policy is empty; at least `provider` is required');

  const rawProvider = root?.['provider'];
  let provider: string | undefined;
  if (root === undefined) provider = undefined;
  else if (rawProvider === undefined || rawProvider === null) problems.add(['provider'], `is required; one of ${oneOf(PROVIDER_NAMES)}`);
  else if (typeof rawProvider !== 'string' || !PROVIDER_NAMES.includes(rawProvider)) {
    problems.add(['provider'], `unknown provider ${JSON.stringify(rawProvider)}; one of ${oneOf(PROVIDER_NAMES)}`);
  } else provider = rawProvider;

  const reader = settingsReader(problems, provider);
  const settings: Record<string, unknown> = {};
  for (const plugged of Object.values(PROVIDERS)) {
    if (plugged.settingsKey !== undefined) settings[plugged.settingsKey] = plugged.readSettings(root?.[plugged.settingsKey], reader);
  }
  const plugged = PROVIDERS[provider ?? ''];
  const readiness = readinessValue(root?.['readiness'], ['readiness'], DEFAULT_POLICY.readiness, problems);
  const policy: Policy = {
    provider: provider ?? '',
    boundProvider: plugged === undefined ? NO_PROVIDER : plugged.bind(plugged.settingsKey === undefined ? undefined : settings[plugged.settingsKey]),
    settings,
    mode: enumValue(root?.['mode'], ['mode'], ['enforce', 'warn'], DEFAULT_POLICY.mode, problems),
    probe: enumValue(root?.['probe'], ['probe'], PROBE_SETTINGS, DEFAULT_POLICY.probe, problems),
    readiness,
    overwrite: booleanValue(root?.['overwrite'], ['overwrite'], DEFAULT_POLICY.overwrite, problems),
    kinds: kindsValue(root?.['kinds'], problems),
    gateway: gatewayValue(root?.['gateway'], problems),
    profiles: profilesValue(root?.['profiles'], problems),
    rules: rulesValue(root?.['rules'], readiness, problems),
  };
  if (problems.list.length > 0) {
    const located = problems.list.map((p) => ({ ...p, line: lineOf(doc, counter, p.path) ?? 0 }));
    located.sort((a, b) => a.line - b.line);
    fail(located.map((p) => `${source}${p.line === 0 ? '' : `:${p.line}`}: ${formatPath(p.path)}: ${p.message}`));
  }
  return policy;
}
