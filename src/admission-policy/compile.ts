/**
 * compileAdmissionPolicy turns a policy into the objects that let the API server make the
 * webhook's changes itself: a MutatingAdmissionPolicy (the CEL program of program.ts after the
 * policy's values) and its binding. Pure: a Policy in, objects and their YAML out.
 */
import { Document, isMap, isSeq } from 'yaml';
import type { Policy } from '../policy/schema.js';
import { MUTATIONS, PROGRAM, PROGRAM_PROFILES, PROVIDER_GROUPS, type Variable } from './program.js';
import { settingsVariables, type Refusal } from './settings.js';

/** ApiVersion is the admissionregistration.k8s.io version of the MutatingAdmissionPolicy: v1 (GA, 1.36+) or v1beta1 (1.34 and 1.35 with the feature enabled). */
export type ApiVersion = 'v1' | 'v1beta1';

/** Selection says which namespaces the policy acts in, as the webhook's overlays do. */
export type Selection = 'opt-in' | 'cluster-wide';

/** CompileOptions are what the objects are named and where they act. */
export interface CompileOptions {
  readonly apiVersion: ApiVersion;
  readonly name: string;
  readonly selection: Selection;
}

/** DEFAULT_COMPILE_OPTIONS: v1, named like the webhook's objects, opt-in. */
export const DEFAULT_COMPILE_OPTIONS: CompileOptions = { apiVersion: 'v1', name: 'lb-probe-webhook', selection: 'opt-in' };

/** ENABLED_LABEL selects the namespaces, as it does for the webhook. */
export const ENABLED_LABEL = 'lb-probe-webhook/enabled';

/**
 * MATCH_CONDITION and ALB_MATCH_CONDITION are the webhook registration's matchConditions
 * (manifests/base, manifests/components/aws-alb): the policy runs for exactly the objects the
 * webhook is called for. test/unit/admission-policy.test.ts checks that they are the same text.
 */
export const MATCH_CONDITION = {
  name: 'load-balanced-http',
  expression:
    "request.resource.resource == 'services' ? (has(object.spec.type) && object.spec.type == 'LoadBalancer' && has(object.spec.ports) &&\n" +
    "   object.spec.ports.exists(p, has(p.appProtocol) && (p.appProtocol.lowerAscii() == 'http' || p.appProtocol.lowerAscii() == 'https') &&\n" +
    "     (!has(p.protocol) || p.protocol == 'TCP')))\n" +
    ": (has(object.spec.listeners) && object.spec.listeners.exists(l, l.protocol == 'HTTP' || l.protocol == 'HTTPS'))",
} as const;

export const ALB_MATCH_CONDITION = {
  name: 'load-balanced-http-or-alb-backend',
  expression:
    "request.resource.resource == 'services' ? ((has(object.spec.type) && object.spec.type == 'LoadBalancer' && has(object.spec.ports) &&\n" +
    "    object.spec.ports.exists(p, has(p.appProtocol) && (p.appProtocol.lowerAscii() == 'http' || p.appProtocol.lowerAscii() == 'https') &&\n" +
    "      (!has(p.protocol) || p.protocol == 'TCP'))) ||\n" +
    "   (has(object.metadata.labels) && has(object.spec.ports) &&\n" +
    "    (('gateway.istio.io/managed' in object.metadata.labels) ||\n" +
    "     ('istio' in object.metadata.labels && object.metadata.labels['istio'] == 'ingressgateway') ||\n" +
    "     ('app' in object.metadata.labels && object.metadata.labels['app'] == 'istio-ingressgateway') ||\n" +
    "     ('app.kubernetes.io/name' in object.metadata.labels && object.metadata.labels['app.kubernetes.io/name'] == 'ingress-nginx' &&\n" +
    "      'app.kubernetes.io/component' in object.metadata.labels && object.metadata.labels['app.kubernetes.io/component'] == 'controller' &&\n" +
    "      object.spec.ports.exists(p, (!has(p.protocol) || p.protocol == 'TCP') &&\n" +
    "        ((has(p.name) && p.name == 'http') || (has(p.appProtocol) && p.appProtocol.lowerAscii() == 'http')))))))\n" +
    ": (has(object.spec.listeners) && object.spec.listeners.exists(l, l.protocol == 'HTTP' || l.protocol == 'HTTPS'))",
} as const;

/** Compiled is the result: the objects, in order, and their YAML with a comment on each variable. */
export type Compiled = { readonly objects: readonly Record<string, unknown>[]; readonly yaml: string } | { readonly refusals: readonly Refusal[] };

/** namespaceSelector selects namespaces as the webhook's overlays do (without the webhook's own namespace, which a policy does not have). */
function namespaceSelector(selection: Selection): Record<string, unknown> {
  return selection === 'opt-in'
    ? { matchLabels: { [ENABLED_LABEL]: 'true' } }
    : {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-node-lease'] },
          { key: ENABLED_LABEL, operator: 'NotIn', values: ['false'] },
        ],
      };
}

function resourceRules(policy: Policy): Record<string, unknown>[] {
  const rules: Record<string, unknown>[] = [];
  const operations = ['CREATE', 'UPDATE'];
  if (policy.kinds.includes('Service')) rules.push({ operations, apiGroups: [''], apiVersions: ['v1'], resources: ['services'], scope: 'Namespaced' });
  if (policy.kinds.includes('Gateway')) {
    rules.push({ operations, apiGroups: ['gateway.networking.k8s.io'], apiVersions: ['v1', 'v1beta1'], resources: ['gateways'], scope: 'Namespaced' });
  }
  return rules;
}

/** matchConditionFor is the webhook's condition for the policy: wider with aws.alb, which acts on Services of any type. */
export function matchConditionFor(policy: Policy): { name: string; expression: string } {
  return policy.boundProvider.anyServiceType ? { ...ALB_MATCH_CONDITION } : { ...MATCH_CONDITION };
}

function variablesOf(list: readonly Variable[]): { name: string; expression: string }[] {
  return list.map(({ name, expression }) => ({ name, expression }));
}

/** compileAdmissionPolicy returns the MutatingAdmissionPolicy and its binding for the policy, or why it cannot. */
export function compileAdmissionPolicy(policy: Policy, options: CompileOptions = DEFAULT_COMPILE_OPTIONS): Compiled {
  const settings = settingsVariables(policy);
  if ('refusals' in settings) return { refusals: settings.refusals };
  const variables = [...settings.variables, ...PROGRAM];
  const group = `admissionregistration.k8s.io/${options.apiVersion}`;
  const mutating = {
    apiVersion: group,
    kind: 'MutatingAdmissionPolicy',
    metadata: { name: options.name },
    spec: {
      // Ignore, as the webhook registration: an evaluation error admits the object unchanged.
      failurePolicy: 'Ignore',
      reinvocationPolicy: 'IfNeeded',
      matchConstraints: { matchPolicy: 'Equivalent', resourceRules: resourceRules(policy) },
      matchConditions: [matchConditionFor(policy)],
      variables: variablesOf(variables),
      mutations: MUTATIONS.map((m) => ({ patchType: 'JSONPatch', jsonPatch: { expression: m.expression } })),
    },
  };
  const binding = {
    apiVersion: group,
    kind: 'MutatingAdmissionPolicyBinding',
    metadata: { name: options.name },
    spec: { policyName: options.name, matchResources: { namespaceSelector: namespaceSelector(options.selection) } },
  };
  const objects = [mutating, binding];
  return { objects, yaml: toYaml(objects, variables) };
}

/** toYaml writes the objects as one YAML stream, each variable and mutation with its comment. */
function toYaml(objects: readonly Record<string, unknown>[], variables: readonly Variable[]): string {
  return objects
    .map((object) => {
      const doc = new Document(object, { aliasDuplicateObjects: false });
      const spec = doc.get('spec', true);
      if (isMap(spec)) {
        comment((spec).get('variables', true), variables.map((v) => v.comment));
        comment((spec).get('mutations', true), MUTATIONS.map((m) => m.comment));
      }
      return doc.toString({ lineWidth: 0 });
    })
    .join('---\n');
}

function comment(node: unknown, comments: readonly string[]): void {
  if (!isSeq(node)) return;
  (node).items.forEach((item, i) => {
    const text = comments[i];
    if (text && typeof item === 'object' && item !== null) (item as { commentBefore?: string }).commentBefore = ` ${text}`;
  });
}

/** CHART_PROGRAM_FILE is where the Helm chart keeps the program, relative to the chart. */
export const CHART_PROGRAM_FILE = 'files/admission-policy.yaml';

/**
 * chartProgram is the part of the objects that is the same for every policy, as the Helm chart
 * carries it (CHART_PROGRAM_FILE): the providers and profiles it knows, the two matchConditions,
 * the program's variables and the mutations. The chart renders the policy's values in front of the variables, as settings.ts does;
 * test/e2e/chart-admission-policy.test.ts checks that helm template and export agree.
 */
export function chartProgram(): string {
  const doc = new Document(
    {
      providers: Object.keys(PROVIDER_GROUPS),
      profiles: PROGRAM_PROFILES,
      matchConditions: { webhook: MATCH_CONDITION, albBackends: ALB_MATCH_CONDITION },
      variables: variablesOf(PROGRAM),
      mutations: MUTATIONS.map((m) => ({ patchType: 'JSONPatch', jsonPatch: { expression: m.expression } })),
    },
    { aliasDuplicateObjects: false },
  );
  doc.commentBefore =
    ' Generated from src/admission-policy (chartProgram); do not edit. Regenerate with\n' +
    '   node_modules/.bin/tsx test/helm/write-admission-policy-program.ts\n' +
    ' templates/admissionpolicy.yaml puts the policy\'s values in front of these variables.';
  comment(doc.get('variables', true), PROGRAM.map((v) => v.comment));
  comment(doc.get('mutations', true), MUTATIONS.map((m) => m.comment));
  return doc.toString({ lineWidth: 0 });
}
