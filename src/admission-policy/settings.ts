/**
 * The policy's values as the CEL program reads them: one variable per setting, defaults filled in
 * (the compiled Policy already has them), rule globs as anchored regular expressions. The
 * settings CEL cannot carry out exactly are refused here, each with one line naming it.
 */
import { globToRegExpSource } from '../core/names.js';
import type { Policy } from '../policy/schema.js';
import type { AwsSettings } from '../providers/aws.js';
import type { AzureSettings } from '../providers/azure.js';
import { CUSTOM_INTENTS, type CustomSettings, type CustomTemplates } from '../providers/custom.js';
import { celLiteral, celString, compareCodePoints, type CelValue } from './cel.js';
import { PROGRAM_PROFILES, PROVIDER_GROUPS, type Variable } from './program.js';

/**
 * MAX_CUSTOM_PER_PORT_TEMPLATES bounds the custom per-port templates of one intent. Each affected
 * port (up to 4,096) gets one annotation per template, and one CEL variable may spend 1,000,000
 * (k8s.io/apiserver pkg/apis/cel/config.go PerCallLimit); measured on kube-apiserver, 4,096 ports of
 * this many templates stay within it (test/e2e/admission-policy.test.ts stores such an object).
 */
export const MAX_CUSTOM_PER_PORT_TEMPLATES = 3;

/** Refusal is a setting CEL cannot carry out exactly: its path in the policy and why. */
export interface Refusal {
  readonly setting: string;
  readonly reason: string;
}

/** literalEdges returns a template key's text before its first placeholder and after its last (the whole key when it has none). */
function literalEdges(key: string): { prefix: string; suffix: string } {
  const first = key.indexOf('{');
  const last = key.lastIndexOf('}');
  return first === -1 ? { prefix: key, suffix: key } : { prefix: key.slice(0, first), suffix: key.slice(last + 1) };
}

/**
 * mayCollide tells whether two template keys could be filled into the same annotation key: only
 * when neither their literal beginnings nor their literal ends tell them apart (one is a prefix of
 * the other, and one is a suffix of the other). Conservative: it may refuse keys that never meet.
 */
export function mayCollide(a: string, b: string): boolean {
  const x = literalEdges(a);
  const y = literalEdges(b);
  const prefixes = x.prefix.startsWith(y.prefix) || y.prefix.startsWith(x.prefix);
  const suffixes = x.suffix.endsWith(y.suffix) || y.suffix.endsWith(x.suffix);
  return prefixes && suffixes;
}

/** customRefusals lists the custom templates the program cannot apply exactly. */
function customRefusals(custom: CustomSettings): Refusal[] {
  const refusals: Refusal[] = [];
  for (const intent of CUSTOM_INTENTS) {
    const templates = custom[intent];
    if (templates === undefined) continue;
    const perPort = Object.keys(templates.perPort);
    if (perPort.length > MAX_CUSTOM_PER_PORT_TEMPLATES) {
      refusals.push({
        setting: `custom.${intent}.perPort`,
        reason: `${perPort.length} templates, more than the ${MAX_CUSTOM_PER_PORT_TEMPLATES} whose annotations for 4,096 ports fit in a CEL expression's cost budget`,
      });
    }
    const keys = [...perPort.map((k) => ({ k, where: 'perPort' })), ...Object.keys(templates.perService).map((k) => ({ k, where: 'perService' }))];
    for (let i = 0; i < keys.length; i++) {
      for (let j = i + 1; j < keys.length; j++) {
        const a = keys[i];
        const b = keys[j];
        if (a === undefined || b === undefined || !mayCollide(a.k, b.k)) continue;
        refusals.push({
          setting: `custom.${intent}`,
          reason: `${a.where} key ${JSON.stringify(a.k)} and ${b.where} key ${JSON.stringify(b.k)} may be filled into the same annotation, whose value the webhook takes from the last one written; give them a distinct beginning or end`,
        });
      }
    }
  }
  return refusals;
}

/** templateEntries writes templates as [key, value] pairs, each split at {port}, sorted by key (the chart's order). */
function templateEntries(map: Readonly<Record<string, string>>): string[][][] {
  return Object.entries(map)
    .sort(([a], [b]) => compareCodePoints(a, b))
    .map(([k, v]) => [k.split('{port}'), v.split('{port}')]);
}

function customValue(custom: CustomSettings): CelValue {
  const empty: CustomTemplates = { perPort: {}, perService: {} };
  return Object.fromEntries(
    CUSTOM_INTENTS.map((intent) => {
      const templates = custom[intent] ?? empty;
      return [intent, { perPort: templateEntries(templates.perPort), perService: templateEntries(templates.perService) }];
    }),
  );
}

/** rulesLiteral writes the rules as a list of maps whose values are dyn (CEL literals must be homogeneous). */
function rulesLiteral(policy: Policy): string {
  const rules = policy.rules.map((rule) => {
    const fields: Record<string, CelValue> = {
      labels: { ...(rule.match.labels ?? {}) },
      namespaces: rule.match.namespaces === undefined ? null : rule.match.namespaces.map(globToRegExpSource),
      probe: rule.probe ?? null,
      readiness: rule.readiness === undefined ? null : { path: rule.readiness.path, port: String(rule.readiness.port) },
    };
    return `{${Object.entries(fields)
      .map(([k, v]) => `${celString(k)}:dyn(${celLiteral(v)})`)
      .join(',')}}`;
  });
  return `[${rules.join(',')}]`;
}

/**
 * settingsVariables returns the policy's values as CEL variables, or the refusals when the policy
 * asks for something the program cannot do exactly.
 */
export function settingsVariables(policy: Policy): { variables: Variable[] } | { refusals: Refusal[] } {
  const azure = policy.settings['azure'] as AzureSettings;
  const aws = policy.settings['aws'] as AwsSettings;
  const custom = policy.settings['custom'] as CustomSettings;
  const refusals = policy.provider === 'custom' ? customRefusals(custom) : [];
  if (!(policy.provider in PROVIDER_GROUPS)) {
    refusals.push({ setting: 'provider', reason: `the admission policy program has no rules for provider ${JSON.stringify(policy.provider)} yet (src/admission-policy/program.ts)` });
  }
  for (const profile of policy.profiles) {
    if (!PROGRAM_PROFILES.includes(profile.name)) {
      refusals.push({ setting: 'profiles', reason: `the admission policy program does not recognize profile ${JSON.stringify(profile.name)} yet (src/admission-policy/program.ts)` });
    }
  }
  const literal = (setting: string, value: CelValue): string => {
    try {
      return celLiteral(value);
    } catch (err: unknown) {
      refusals.push({ setting, reason: (err as Error).message });
      return 'null';
    }
  };
  const variables: Variable[] = [
    { name: 'provider', comment: 'The policy, defaults filled in.', expression: literal('provider', policy.provider) },
    { name: 'mode', comment: '', expression: literal('mode', policy.mode) },
    { name: 'defaultProbe', comment: 'The policy\'s probe.', expression: literal('probe', policy.probe) },
    { name: 'readiness', comment: '', expression: literal('readiness', { path: policy.readiness.path, port: String(policy.readiness.port) }) },
    { name: 'overwrite', comment: '', expression: literal('overwrite', policy.overwrite) },
    { name: 'annotationsTarget', comment: 'gateway.annotationsTarget and gateway.maxInfrastructureAnnotations.', expression: literal('gateway.annotationsTarget', policy.gateway.annotationsTarget) },
    { name: 'maxInfrastructureAnnotations', comment: '', expression: literal('gateway.maxInfrastructureAnnotations', policy.gateway.maxInfrastructureAnnotations) },
    { name: 'profiles', comment: 'The profiles in use, in the order they are tried.', expression: literal('profiles', policy.profiles.map((p) => p.name)) },
    { name: 'azureHideStatusPort', comment: 'azure.hideStatusPort, aws.defaultTargetType and aws.alb.', expression: literal('azure.hideStatusPort', azure.hideStatusPort) },
    { name: 'awsDefaultTargetType', comment: '', expression: literal('aws.defaultTargetType', aws.defaultTargetType) },
    { name: 'awsAlb', comment: '', expression: literal('aws.alb', aws.alb) },
    { name: 'custom', comment: 'The custom templates per intent, as [key, value] pairs, each split at {port}.', expression: literal('custom', customValue(custom)) },
    { name: 'rules', comment: 'The rules: namespace globs as anchored regular expressions, null where the rule does not say.', expression: '' },
  ];
  try {
    variables[variables.length - 1] = { ...(variables.at(-1) as Variable), expression: rulesLiteral(policy) };
  } catch (err: unknown) {
    refusals.push({ setting: 'rules', reason: (err as Error).message });
  }
  return refusals.length > 0 ? { refusals } : { variables };
}
