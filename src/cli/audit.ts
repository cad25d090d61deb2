/**
 * The audit command: the Services and Gateways already in a cluster that the policy would change,
 * and with --fix the change itself, by server-side apply with its own field manager, after a
 * server-side dry run. A webhook only sees new writes; this is how a cluster adopts it.
 */
import { ApiException, KubeConfig, KubernetesObjectApi, Observable, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { auditObject, formatTable, type AuditFinding } from '../audit/plan.js';
import { namespaceSelectorOf } from '../audit/scope.js';
import { objectAt, stringAt, type JsonObject } from '../core/json.js';
import { GATEWAY_GROUP } from '../core/target.js';
import { describeError, ErrorCode, WebhookError } from '../errors.js';
import { loadPolicyFile } from '../policy/load.js';
import type { HandledKind } from '../policy/schema.js';
import { durationFlag, integerFlag, parseFlags, requireString, usageError } from './args.js';
import type { Io } from './io.js';

/** FIELD_MANAGER owns the annotations that audit --fix applies. */
export const FIELD_MANAGER = 'lb-probe-webhook';

const API_VERSIONS: Record<HandledKind, string> = { Service: 'v1', Gateway: `${GATEWAY_GROUP}/v1` };
const PAGE = 500;

/**
 * DEFAULT_REQUEST_TIMEOUT_MS bounds each API request, body included: 30 s, far beyond what a page
 * of 500 objects takes, and short enough that an API server that never answers ends the run.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * DEFAULT_MAX_PAGES bounds the pages of 500 listed per kind: 100 pages, 50,000 objects, five times
 * the 10,000 Services per cluster of the Kubernetes scalability thresholds
 * (https://github.com/kubernetes/community/blob/master/sig-scalability/configs-and-limits/thresholds.md).
 */
export const DEFAULT_MAX_PAGES = 100;

function timedOut(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) if (e.name === 'TimeoutError') return true;
  return false;
}

/** AuditApi is the object API with a deadline on every request, set by an AbortSignal the HTTP client honours to the last byte of the body. */
class AuditApi extends KubernetesObjectApi {
  timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;

  static make(kc: KubeConfig, timeoutMs: number): AuditApi {
    const api = kc.makeApiClient(AuditApi);
    api.setDefaultNamespace(kc);
    api.timeoutMs = timeoutMs;
    api.configuration.middleware.push({
      pre: (context) => {
        context.setSignal(AbortSignal.timeout(api.timeoutMs));
        return new Observable(Promise.resolve(context));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    });
    return api;
  }
}

function apiError(what: string, err: unknown, timeoutMs: number): WebhookError {
  if (timedOut(err)) return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: no answer within ${timeoutMs / 1000}s (--request-timeout)`, { cause: err });
  const detail = err instanceof ApiException ? `${err.code}: ${typeof err.body === 'string' ? err.body : JSON.stringify(err.body)}` : describeError(err);
  return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: ${detail.split('\n')[0] ?? detail}`, { cause: err });
}

async function listAll(api: KubernetesObjectApi, kind: HandledKind | 'Namespace', namespace: string | undefined, maxPages: number, labelSelector?: string): Promise<JsonObject[]> {
  const apiVersion = kind === 'Namespace' ? 'v1' : API_VERSIONS[kind];
  const items: JsonObject[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  for (let pages = 1; ; pages++) {
    const page = await api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector || undefined, PAGE, token);
    // List items carry no apiVersion and kind; the decision needs both. JSON round trip: plain objects, dates as strings.
    for (const item of page.items) items.push({ ...(JSON.parse(JSON.stringify(item)) as JsonObject), apiVersion, kind });
    token = page.metadata?._continue || undefined;
    if (token === undefined) return items;
    if (seen.has(token)) {
      throw new WebhookError(ErrorCode.KUBERNETES_API, `listing ${kind}s: the API server returned the same continue token twice (after ${pages} pages); stopped`);
    }
    if (pages >= maxPages) {
      throw new WebhookError(ErrorCode.KUBERNETES_API, `listing ${kind}s: more than ${maxPages} pages of ${PAGE} (--max-pages); stopped`);
    }
    seen.add(token);
  }
}

/** WHOLE_MAPS are the annotation maps audit writes into, as server-side apply names them in a conflict. */
const WHOLE_MAPS = new Set(['.metadata.annotations', '.spec.infrastructure.annotations']);

/**
 * conflictsOnlyOnWholeMap tells whether a server-side apply was refused (409) only because another
 * manager owns an annotation map as a whole, not any key in it. A manager that applies an empty
 * map owns the map itself, and the first key anyone else applies conflicts with that: istiod does
 * this for every Gateway with no annotations to copy (its kube-gateway template renders
 * `annotations: {}`), so audit met it on exactly the Services it exists to fix. Forcing then
 * replaces no value another manager set: none of the keys applied conflicted.
 */
function conflictsOnlyOnWholeMap(err: unknown): boolean {
  if (!(err instanceof ApiException) || err.code !== 409) return false;
  let status: unknown = err.body;
  if (typeof status === 'string') {
    try {
      status = JSON.parse(status) as unknown;
    } catch {
      return false;
    }
  }
  const causes = (status as { details?: { causes?: unknown } } | undefined)?.details?.causes;
  return Array.isArray(causes) && causes.length > 0 && causes.every((c) => WHOLE_MAPS.has((c as { field?: unknown }).field as string));
}

/** runAudit lists what the policy would change; exit 0 when nothing, 1 when something (fixed with --fix: 0), 2 on error. */
export async function runAudit(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    argv,
    {
      policy: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      output: { type: 'string', short: 'o' },
      fix: { type: 'boolean' },
      kubeconfig: { type: 'string' },
      'request-timeout': { type: 'string' },
      'max-pages': { type: 'string' },
      'as-webhook': { type: 'string' },
    },
    false,
  );
  const timeoutMs = durationFlag(values['request-timeout'], 'request-timeout', 100, 600_000, DEFAULT_REQUEST_TIMEOUT_MS);
  const maxPages = integerFlag(values['max-pages'], 'max-pages', 1, 100_000, DEFAULT_MAX_PAGES);
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usageError(`-o must be table or json, got ${JSON.stringify(output)}`);
  const policy = await loadPolicyFile(requireString(values.policy, 'policy'));
  const kc = new KubeConfig();
  try {
    if (values.kubeconfig !== undefined) kc.loadFromFile(values.kubeconfig);
    else kc.loadFromDefault();
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.KUBERNETES_API, `${values.kubeconfig === undefined ? '' : `--kubeconfig ${values.kubeconfig}: `}cannot load the kubeconfig: ${describeError(err).split('\n')[0]}`, { cause: err });
  }
  if (kc.getCurrentCluster() === null) throw new WebhookError(ErrorCode.KUBERNETES_API, 'no cluster: set KUBECONFIG, pass --kubeconfig, or run in a pod');
  const api = AuditApi.make(kc, timeoutMs);

  // --as-webhook NAME: decide as the webhook registered by that configuration would, in the
  // namespaces it selects and in the policy's own mode (warn changes nothing): the heal job's view.
  const asWebhook = values['as-webhook'];
  let scope: Set<string> | undefined;
  if (asWebhook !== undefined) {
    let configuration: JsonObject;
    try {
      const read = await api.read({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: asWebhook } });
      configuration = JSON.parse(JSON.stringify(read)) as JsonObject;
    } catch (err: unknown) {
      throw apiError(`--as-webhook: reading MutatingWebhookConfiguration ${asWebhook}`, err, timeoutMs);
    }
    const selector = namespaceSelectorOf(configuration, asWebhook);
    try {
      scope = new Set((await listAll(api, 'Namespace', undefined, maxPages, selector)).map((n) => stringAt(objectAt(n, 'metadata'), 'name') ?? ''));
    } catch (err: unknown) {
      if (err instanceof WebhookError) throw err;
      throw apiError(`listing the namespaces of MutatingWebhookConfiguration ${asWebhook} (${selector || 'all'})`, err, timeoutMs);
    }
  }

  const findings: AuditFinding[] = [];
  let scanned = 0;
  for (const kind of policy.kinds) {
    let objects: JsonObject[];
    try {
      objects = await listAll(api, kind, values.namespace, maxPages);
    } catch (err: unknown) {
      if (kind === 'Gateway' && err instanceof ApiException && err.code === 404) {
        io.stderr.write('audit: the Gateway API is not installed; Gateways skipped\n');
        continue;
      }
      if (err instanceof WebhookError) throw err;
      throw apiError(`listing ${kind}s`, err, timeoutMs);
    }
    if (scope !== undefined) objects = objects.filter((o) => scope.has(stringAt(objectAt(o, 'metadata'), 'namespace') ?? ''));
    scanned += objects.length;
    for (const object of objects) {
      const finding = auditObject(object, policy, { policyMode: asWebhook !== undefined });
      if (finding !== undefined) findings.push(finding);
    }
  }

  const failures: string[] = [];
  const fixed = new Set<AuditFinding>();
  if (values.fix === true) {
    for (const finding of findings) {
      const ref = `${finding.kind} ${finding.namespace}/${finding.name}`;
      const body = finding.apply as unknown as KubernetesObject;
      const apply = (dryRun: boolean, force: boolean) => api.patch(body, undefined, dryRun ? 'All' : undefined, FIELD_MANAGER, force, PatchStrategy.ServerSideApply);
      let force = policy.overwrite;
      try {
        try {
          await apply(true, force);
        } catch (err: unknown) {
          if (force || !conflictsOnlyOnWholeMap(err)) throw err;
          force = true;
          await apply(true, force);
        }
      } catch (err: unknown) {
        failures.push(`${ref}: server-side dry run refused the change, nothing applied: ${describeError(apiError('apply', err, timeoutMs))}`);
        continue;
      }
      try {
        await apply(false, force);
        fixed.add(finding);
      } catch (err: unknown) {
        failures.push(`${ref}: ${describeError(apiError('apply', err, timeoutMs))}`);
      }
    }
  }

  if (output === 'json') {
    io.stdout.write(
      JSON.stringify(
        {
          scanned,
          findings: findings.map((f) => ({ kind: f.kind, namespace: f.namespace, name: f.name, changes: f.changes, warnings: f.warnings, fixed: fixed.has(f) })),
          failures,
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    if (findings.length > 0) io.stdout.write(formatTable(findings));
    const objects = `${scanned} ${scanned === 1 ? 'object' : 'objects'}`;
    if (findings.length === 0) io.stdout.write(`nothing to change in ${objects}\n`);
    else if (values.fix === true) io.stdout.write(`fixed ${fixed.size} of ${findings.length} to change (${objects} scanned)\n`);
    else io.stdout.write(`would change ${findings.length} of ${objects}\n`);
  }
  for (const failure of failures) io.stderr.write(`audit: ${failure}\n`);
  for (const f of findings) for (const w of f.warnings) io.stderr.write(`audit: ${f.kind} ${f.namespace}/${f.name}: ${w}\n`);
  if (failures.length > 0) return 2;
  if (values.fix === true) return 0;
  return findings.length > 0 ? 1 : 0;
}
