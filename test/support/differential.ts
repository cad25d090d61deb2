/**
 * The differential harness: the same objects stored by server-side dry run on a real API server,
 * once through the compiled MutatingAdmissionPolicy alone and once through the webhook alone, and
 * compared with each other and with what the decision (render) writes. Each side is selected by a
 * label on the object (the webhook registration's objectSelector, the policy binding's
 * matchResources), so both see the same object in the same namespace.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { isDeepStrictEqual } from 'node:util';
import { parse, stringify } from 'yaml';
import type { JsonObject } from '../../src/core/json.js';
import { processManifests } from '../../src/manifests/process.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { compileAdmissionPolicy } from '../../src/admission-policy/compile.js';
import { NAMESPACES } from './admission-corpus.js';
import { apiAccessFrom, apiCall, type ApiResponse } from './apiserver.js';
import { kubectlRunner, type Kubectl } from './controlplane.js';
import { ensureNamespace, renderOverlay, startWebhook, type RunningWebhook } from './webhook.js';

/** SIDE_LABEL selects the side an object goes through: `webhook`, or `policy-<run>` for the run's compiled policy. */
export const SIDE_LABEL = 'lbp-diff/side';
const SENTINEL_LABEL = 'lbp-diff/sentinel';
const ALB_COMPONENT = new URL('../../manifests/components/aws-alb/kustomization.yaml', import.meta.url);
const SENTINEL_ANNOTATION = 'lbp-diff/sentinel';

/** Stored is what the API server answered a dry-run create: the object it would store, or its refusal. */
export type Stored = { readonly object: JsonObject } | { readonly refused: string };

/** Difference is one object on which the sides disagree, with what each gave. */
export interface Difference {
  readonly name: string;
  readonly object: JsonObject;
  readonly policy: Stored;
  readonly webhook: Stored;
  /** render is the annotations the decision writes (metadata, spec.infrastructure). */
  readonly render: unknown;
  readonly why: string;
}

/** ApiClient sends requests to the API server with the kubeconfig's token, over kept-alive connections. */
export interface ApiClient {
  /** send resolves every answer; a network error or a timeout as status 0 with the message as its body. */
  send(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** dryRunCreate asks the API server what it would store for an object, or why it refuses it. */
  dryRunCreate(object: JsonObject): Promise<Stored>;
  close(): void;
}

/** apiClient builds an ApiClient from a kubeconfig the control plane wrote. */
export function apiClient(kubeconfigPath: string): ApiClient {
  const access = apiAccessFrom(kubeconfigPath);
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const send = (method: string, path: string, body?: unknown): Promise<ApiResponse> => apiCall(access, agent, method, path, body);
  return {
    send,
    async dryRunCreate(object) {
      const metadata = object['metadata'] as JsonObject;
      const namespace = String(metadata['namespace']);
      const apiVersion = String(object['apiVersion']);
      const path =
        object['kind'] === 'Service'
          ? `/api/v1/namespaces/${namespace}/services`
          : `/apis/${apiVersion}/namespaces/${namespace}/${String(object['kind']).toLowerCase()}s`;
      const answer = await send('POST', `${path}?dryRun=All&fieldManager=lbp-diff`, object);
      if (answer.status === 201 || answer.status === 200) return { object: answer.body as JsonObject };
      return { refused: `${answer.status} ${typeof answer.body === 'object' ? String(answer.body.message) : String(answer.body)}` };
    },
    close: () => agent.destroy(),
  };
}

let sentinels = 0;

/**
 * installCompiledPolicy creates a compiled MutatingAdmissionPolicy bound to the objects with a
 * label (instead of its namespaces), with the failure policy given, then a sentinel policy and
 * binding, and waits until the sentinel is in effect: the API server's policy source reads its
 * informers' caches, so the policy created before the sentinel is in effect too. It returns the
 * API paths of what it created, for deleting.
 */
export async function installCompiledPolicy(
  api: ApiClient,
  compiled: readonly Record<string, unknown>[],
  options: { readonly label: Record<string, string>; readonly failurePolicy: 'Fail' | 'Ignore' },
): Promise<string[]> {
  const objects = structuredClone(compiled) as any[];
  const group = String(objects[0]?.apiVersion);
  for (const object of objects) {
    if (object.kind === 'MutatingAdmissionPolicy') object.spec.failurePolicy = options.failurePolicy;
    if (object.kind === 'MutatingAdmissionPolicyBinding') object.spec.matchResources = { objectSelector: { matchLabels: options.label } };
  }
  const id = `${process.pid}-${sentinels++}`;
  const sentinel = `lbp-sentinel-${id}`;
  objects.push(
    {
      apiVersion: group,
      kind: 'MutatingAdmissionPolicy',
      metadata: { name: sentinel },
      spec: {
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        matchConstraints: { resourceRules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] }] },
        mutations: [{ patchType: 'JSONPatch', jsonPatch: { expression: `[JSONPatch{op: 'add', path: '/metadata/annotations', value: {'${SENTINEL_ANNOTATION}': '${id}'}}]` } }],
      },
    },
    {
      apiVersion: group,
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name: sentinel },
      spec: { policyName: sentinel, matchResources: { objectSelector: { matchLabels: { [SENTINEL_LABEL]: id } } } },
    },
  );
  const created: string[] = [];
  for (const object of objects) {
    const [apiGroup, version] = String(object.apiVersion).split('/');
    const path = `/apis/${apiGroup}/${version}/${String(object.kind).toLowerCase().replace(/y$/, 'ie')}s`;
    const answer = await api.send('POST', path, object);
    if (answer.status !== 201) throw new Error(`creating ${object.kind} ${object.metadata.name}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 2000)}`);
    created.push(`${path}/${object.metadata.name}`);
  }
  const canary = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'canary', namespace: 'default', labels: { [SENTINEL_LABEL]: id } }, spec: { ports: [{ port: 80 }] } };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const stored = await api.dryRunCreate(canary);
    if ('object' in stored && (stored.object['metadata'] as any).annotations?.[SENTINEL_ANNOTATION] === id) return created;
    if (Date.now() > deadline) throw new Error(`the sentinel policy ${sentinel} was not in effect after 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** normalized drops what differs between two stores of the same object (uid, times, allocated addresses and ports, the side label). */
export function normalized(stored: Stored): unknown {
  if ('refused' in stored) return stored;
  const object = structuredClone(stored.object) as any;
  for (const key of ['uid', 'creationTimestamp', 'resourceVersion', 'managedFields', 'generation']) delete object.metadata?.[key];
  if (object.metadata?.labels) {
    delete object.metadata.labels[SIDE_LABEL];
    if (Object.keys(object.metadata.labels).length === 0) delete object.metadata.labels;
  }
  if (object.kind === 'Service') {
    delete object.spec?.clusterIP;
    delete object.spec?.clusterIPs;
    delete object.spec?.healthCheckNodePort;
    for (const port of object.spec?.ports ?? []) delete port.nodePort;
  }
  return object;
}

/** writtenAnnotations are the two annotation maps the decision writes to. */
function writtenAnnotations(object: any): unknown {
  return { metadata: object?.metadata?.annotations ?? {}, infrastructure: object?.spec?.infrastructure?.annotations ?? null };
}

/** Differential runs policies through both sides on one control plane. */
export interface Differential {
  /** compare installs the policy on both sides and compares every object; it returns the differences. */
  compare(policyText: string, objects: readonly { name: string; object: JsonObject }[], options?: { failurePolicy?: 'Fail' | 'Ignore' }): Promise<Difference[]>;
  /** counts: policies compared (runs), objects (cases), objects the mutation changed, objects the API server refused on both sides (and why, the first few). */
  readonly counts: { runs: number; cases: number; changed: number; refused: number; refusals: string[] };
  stop(): Promise<void>;
}

/** DifferentialOptions name the control plane and the MutatingAdmissionPolicy version it serves. */
export interface DifferentialOptions {
  readonly kubeconfig: string;
  readonly binDir: string;
  readonly apiVersion: 'v1' | 'v1beta1';
}

let instance = 0;

/**
 * startDifferential starts a webhook (reloading its policy every 100 ms) registered for objects
 * labelled SIDE_LABEL=webhook, and creates the corpus's namespaces.
 */
export async function startDifferential(options: DifferentialOptions): Promise<Differential> {
  const kubectl: Kubectl = kubectlRunner(options.binDir, options.kubeconfig);
  const api = apiClient(options.kubeconfig);
  const prefix = `lbp-diff-${process.pid}-${instance++}`;
  for (const ns of NAMESPACES) await ensureNamespace(kubectl, ns);
  const webhook: RunningWebhook = await startWebhook('provider: azure\n', { LOG_LEVEL: 'info' }, ['--reload-interval', '100ms']);
  // Two registrations of the one webhook, as the manifests make them: the base's matchConditions,
  // and the aws-alb component's for policies with aws.alb (the chart picks the same by itself).
  const albCondition = (parse(readFileSync(ALB_COMPONENT, 'utf8'))).patches[0].patch as string;
  const registrations = [
    { name: `${prefix}-webhook`, side: 'webhook', condition: undefined },
    { name: `${prefix}-webhook-alb`, side: 'webhook-alb', condition: (parse(albCondition))[0].value },
  ];
  for (const registration of registrations) {
    const config = renderOverlay(options.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: registration.name, failurePolicy: 'Fail' }).find(
      (d) => d['kind'] === 'MutatingWebhookConfiguration',
    ) as any;
    for (const hook of config.webhooks) {
      delete hook.namespaceSelector;
      hook.objectSelector = { matchLabels: { [SIDE_LABEL]: registration.side } };
      if (registration.condition !== undefined) hook.matchConditions = [registration.condition];
    }
    const registered = await kubectl(['apply', '-f', '-'], JSON.stringify(config));
    if (registered.code !== 0) throw new Error(`registering the webhook: ${registered.stderr}`);
  }

  const counts = { runs: 0, cases: 0, changed: 0, refused: 0, refusals: [] as string[] };
  let run = 0;
  let current = '';

  const labelled = (object: JsonObject, side: string, name: string): JsonObject => {
    const metadata = (object['metadata'] ?? {}) as JsonObject;
    return { ...structuredClone(object), metadata: { ...metadata, name, labels: { ...((metadata['labels'] ?? {}) as JsonObject), [SIDE_LABEL]: side } } };
  };

  /** useWebhookPolicy writes the policy and waits until the webhook has reloaded it. */
  const useWebhookPolicy = async (text: string): Promise<void> => {
    if (text === current) return;
    // Counting the reload lines in the text: parsing every line of a log that grows by a line per review would cost more than the reload.
    const reloads = () => readFileSync(webhook.logFile, 'utf8').split('"msg":"policy reloaded"').length - 1;
    const before = reloads();
    writeFileSync(webhook.policyFile, text);
    const deadline = Date.now() + 30_000;
    while (reloads() <= before) {
      if (Date.now() > deadline) throw new Error(`the webhook did not reload its policy within 30 s (${webhook.policyFile})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    current = text;
  };

  /** installPolicy creates the compiled policy bound to SIDE_LABEL=policy-<id> and waits until it is in effect. */
  const installPolicy = async (text: string, id: number, failurePolicy: 'Fail' | 'Ignore'): Promise<string[]> => {
    const compiled = compileAdmissionPolicy(parsePolicy(text), { apiVersion: options.apiVersion, name: `${prefix}-${id}`, selection: 'opt-in' });
    if ('refusals' in compiled) throw new Error(`the compiler refused the policy: ${JSON.stringify(compiled.refusals)}`);
    return installCompiledPolicy(api, compiled.objects, { label: { [SIDE_LABEL]: `policy-${id}` }, failurePolicy });
  };

  return {
    counts,
    async compare(policyText, cases, compareOptions = {}) {
      const id = run++;
      counts.runs++;
      const marked = `${policyText.trimEnd()}\n# differential run ${id}\n`;
      const [, installed] = await Promise.all([useWebhookPolicy(marked), installPolicy(marked, id, compareOptions.failurePolicy ?? 'Fail')]);
      const policy = parsePolicy(marked);
      const webhookSide = policy.boundProvider.anyServiceType ? 'webhook-alb' : 'webhook';
      const differences: Difference[] = [];
      try {
        // Every object both ways at once: dry runs store nothing, so they cannot disturb each other.
        const stored = await Promise.all(
          cases.map(({ object }, i) =>
            Promise.all([api.dryRunCreate(labelled(object, `policy-${id}`, `o${i}`)), api.dryRunCreate(labelled(object, webhookSide, `o${i}`))]),
          ),
        );
        for (const [i, { name, object }] of cases.entries()) {
          counts.cases++;
          const [viaPolicy, viaWebhook] = stored[i] as [Stored, Stored];
          const rendered = processManifests([{ name: 'object.yaml', text: stringify(object) }], policy, { maxDocumentBytes: 8 * 1024 * 1024 });
          const render = writtenAnnotations(parse(rendered.output));
          const differ = (why: string) => differences.push({ name, object, policy: viaPolicy, webhook: viaWebhook, render, why });
          if ('refused' in viaPolicy) {
            counts.refused++;
            const reason = `${name}: ${viaPolicy.refused.slice(0, 300)}`;
            if (counts.refusals.length < 5 && !counts.refusals.includes(reason)) counts.refusals.push(reason);
          }
          else if (!isDeepStrictEqual(writtenAnnotations(viaPolicy.object), writtenAnnotations(object))) counts.changed++;
          if (!isDeepStrictEqual(normalized(viaPolicy), normalized(viaWebhook))) differ('the policy and the webhook stored different objects');
          else if ('object' in viaPolicy && !isDeepStrictEqual(writtenAnnotations(viaPolicy.object), render)) differ('the stored annotations differ from render');
        }
      } finally {
        await Promise.all(installed.map((path) => api.send('DELETE', path)));
      }
      return differences;
    },
    async stop() {
      await kubectl(['delete', 'mutatingwebhookconfiguration', `${prefix}-webhook`, `${prefix}-webhook-alb`, '--ignore-not-found']);
      api.close();
      await webhook.stop();
    },
  };
}

/** describeDifference renders a difference for a test failure: the case, both results and render's annotations. */
export function describeDifference(d: Difference): string {
  const show = (s: Stored) => ('refused' in s ? `refused: ${s.refused}` : JSON.stringify(writtenAnnotations(s.object)));
  return [`${d.name}: ${d.why}`, `  object: ${JSON.stringify(d.object).slice(0, 2000)}`, `  policy:  ${show(d.policy)}`, `  webhook: ${show(d.webhook)}`, `  render:  ${JSON.stringify(d.render)}`].join('\n');
}
