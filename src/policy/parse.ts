/**
 * parsePolicy validates a policy file's text into a Policy. Pure: the caller reads the file.
 * Every problem is collected and reported together, each with its path and line.
 */
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { isProbeSetting, PROBE_SETTINGS } from '../core/probe.js';
import { isObject, type JsonObject } from '../core/json.js';
import { isPortName, isQualifiedName } from '../core/names.js';
import { ErrorCode, WebhookError, yamlMessage } from '../errors.js';
import { PROVIDER_NAMES } from '../providers/index.js';
import { TEMPLATE_PLACEHOLDERS, fillTemplate } from '../providers/custom.js';
import { AWS_TARGET_TYPES } from '../providers/aws.js';
import {
  DEFAULT_POLICY,
  MAX_INFRASTRUCTURE_ANNOTATIONS,
  type CustomTemplates,
  type HandledKind,
  type Policy,
  type Rule,
} from './schema.js';

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

const ROOT_KEYS = ['provider', 'mode', 'probe', 'readiness', 'overwrite', 'kinds', 'gateway', 'azure', 'aws', 'custom', 'rules'];

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

function readinessValue(value: unknown, problems: Problems): Policy['readiness'] {
  const map = mapping(value, ['readiness'], ['port', 'path'], problems);
  const defaults = DEFAULT_POLICY.readiness;
  let port = defaults.port;
  const rawPort = map?.['port'];
  if (typeof rawPort === 'number' && Number.isInteger(rawPort) && rawPort >= 1 && rawPort <= 65535) port = rawPort;
  else if (typeof rawPort === 'string' && isPortName(rawPort)) port = rawPort;
  else if (rawPort !== undefined && rawPort !== null) {
    problems.add(['readiness', 'port'], `must be a port number (1-65535) or a Service port name, got ${JSON.stringify(rawPort)}`);
  }
  let path = defaults.path;
  const rawPath = map?.['path'];
  if (typeof rawPath === 'string' && /^\/\S*$/.test(rawPath)) path = rawPath;
  else if (rawPath !== undefined && rawPath !== null) {
    problems.add(['readiness', 'path'], `must be an HTTP path starting with "/" and without spaces, got ${JSON.stringify(rawPath)}`);
  }
  return { port, path };
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

function templateMap(value: unknown, path: Path, perPort: boolean, problems: Problems): Record<string, string> {
  const map = stringMapValue(value, path, problems);
  const allowed: readonly string[] = perPort ? TEMPLATE_PLACEHOLDERS : TEMPLATE_PLACEHOLDERS.filter((p) => p !== 'port');
  for (const [key, template] of Object.entries(map)) {
    for (const text of [key, template]) {
      for (const match of text.matchAll(/\{([^}]*)\}/g)) {
        const name = match[1] ?? '';
        if (!allowed.includes(name)) {
          problems.add([...path, key], `unknown placeholder {${name}}; allowed here: ${allowed.map((p) => `{${p}}`).join(', ')}`);
        }
      }
    }
    const sample = fillTemplate(key, { port: '80', readinessPort: 'status-port', readinessPath: '/healthz/ready' });
    if (!isQualifiedName(sample)) problems.add([...path, key], `is not a valid annotation key once filled in (${sample})`);
  }
  return map;
}

function customValue(value: unknown, provider: string | undefined, problems: Problems): Policy['custom'] {
  const map = mapping(value, ['custom'], ['tcp', 'readiness'], problems);
  const out: { tcp?: CustomTemplates; readiness?: CustomTemplates } = {};
  for (const intent of ['tcp', 'readiness'] as const) {
    const section = mapping(map?.[intent], ['custom', intent], ['perPort', 'perService'], problems);
    if (section === undefined) continue;
    out[intent] = {
      perPort: templateMap(section['perPort'], ['custom', intent, 'perPort'], true, problems),
      perService: templateMap(section['perService'], ['custom', intent, 'perService'], false, problems),
    };
  }
  const hasTemplates = Object.values(out).some((t) => Object.keys(t.perPort).length + Object.keys(t.perService).length > 0);
  if (provider === 'custom' && !hasTemplates) {
    problems.add(['custom'], 'provider "custom" needs at least one template under custom.tcp or custom.readiness');
  }
  if (provider !== undefined && provider !== 'custom' && hasTemplates) {
    problems.add(['custom'], `templates are only read with provider "custom", not "${provider}"`);
  }
  return out;
}

function rulesValue(value: unknown, problems: Problems): readonly Rule[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(['rules'], 'must be a list of { match, probe }');
    return [];
  }
  const rules: Rule[] = [];
  value.forEach((raw: unknown, i) => {
    const path = ['rules', i];
    const rule = mapping(raw, path, ['match', 'probe'], problems);
    if (rule === undefined) {
      if (raw === undefined || raw === null) problems.add(path, 'must be a mapping with match and probe');
      return;
    }
    const match = mapping(rule['match'], [...path, 'match'], ['namespaces', 'labels'], problems);
    let namespaces: string[] | undefined;
    if (match?.['namespaces'] !== undefined) {
      const list = match['namespaces'];
      if (!Array.isArray(list) || list.some((n) => typeof n !== 'string' || n.length === 0)) {
        problems.add([...path, 'match', 'namespaces'], 'must be a list of namespace names or globs');
      } else {
        namespaces = list as string[];
      }
    }
    const labels = match?.['labels'] === undefined ? undefined : stringMapValue(match['labels'], [...path, 'match', 'labels'], problems);
    if (!isProbeSetting(rule['probe'])) {
      problems.add([...path, 'probe'], `must be one of ${oneOf(PROBE_SETTINGS)}, got ${JSON.stringify(rule['probe'])}`);
      return;
    }
    rules.push({ match: { ...(namespaces && { namespaces }), ...(labels && { labels }) }, probe: rule['probe'] });
  });
  return rules;
}

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
 * parsePolicy validates policy YAML and returns the Policy with defaults filled in. It throws one
 * WebhookError (LBP_POLICY_INVALID) whose details list every problem as `source:line: path: message`.
 */
export function parsePolicy(text: string, source = 'policy'): Policy {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const fail = (details: string[]): never => {
    throw new WebhookError(ErrorCode.POLICY_INVALID, `${source}: invalid policy (${details.length} ${details.length === 1 ? 'problem' : 'problems'})`, { details });
  };
  if (doc.errors.length > 0) {
    fail(doc.errors.map((e) => `${source}:${counter.linePos(e.pos[0]).line}: ${yamlMessage(e.message)}`));
  }
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

  const azureSection = mapping(root?.['azure'], ['azure'], ['hideStatusPort'], problems);
  const awsSection = mapping(root?.['aws'], ['aws'], ['defaultTargetType'], problems);
  const policy: Policy = {
    provider: provider ?? '',
    mode: enumValue(root?.['mode'], ['mode'], ['enforce', 'warn'], DEFAULT_POLICY.mode, problems),
    probe: enumValue(root?.['probe'], ['probe'], PROBE_SETTINGS, DEFAULT_POLICY.probe, problems),
    readiness: readinessValue(root?.['readiness'], problems),
    overwrite: booleanValue(root?.['overwrite'], ['overwrite'], DEFAULT_POLICY.overwrite, problems),
    kinds: kindsValue(root?.['kinds'], problems),
    gateway: gatewayValue(root?.['gateway'], problems),
    azure: { hideStatusPort: booleanValue(azureSection?.['hideStatusPort'], ['azure', 'hideStatusPort'], false, problems) },
    aws: {
      defaultTargetType: enumValue(awsSection?.['defaultTargetType'], ['aws', 'defaultTargetType'], AWS_TARGET_TYPES, DEFAULT_POLICY.aws.defaultTargetType, problems),
    },
    custom: customValue(root?.['custom'], provider, problems),
    rules: rulesValue(root?.['rules'], problems),
  };
  if (problems.list.length > 0) {
    const located = problems.list.map((p) => ({ ...p, line: lineOf(doc, counter, p.path) ?? 0 }));
    located.sort((a, b) => a.line - b.line);
    fail(located.map((p) => `${source}${p.line === 0 ? '' : `:${p.line}`}: ${formatPath(p.path)}: ${p.message}`));
  }
  return policy;
}
