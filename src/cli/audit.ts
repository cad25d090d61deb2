/**
 * The audit command: the Services and Gateways already in a cluster that the policy would change,
 * and with --fix the change itself, by server-side apply with its own field manager, after a
 * server-side dry run. A webhook only sees new writes; this is how a cluster adopts it.
 */
import { ApiException, KubeConfig, KubernetesObjectApi, Observable, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { auditObject, formatTable, type AuditFinding } from '../audit/plan.js';
import { lastWritten, namespaceSelectorOf, objectSelectorOf } from '../audit/scope.js';
import { WARNING_PREFIX } from '../decision/decide.js';
import { objectAt, stringAt, stringMap, type JsonObject } from '../core/json.js';
import { GATEWAY_GROUP } from '../core/target.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kubeEnvironment } from '../config.js';
import { describeError, ErrorCode, WebhookError } from '../errors.js';
import { loadPolicyFile } from '../policy/load.js';
import type { HandledKind } from '../policy/schema.js';
import { durationFlag, integerFlag, type ParsedArgs } from './args.js';
import type { Io } from './io.js';

/** FIELD_MANAGER owns the annotations that audit --fix applies. */
export const FIELD_MANAGER = 'lb-probe-webhook';

const API_VERSIONS: Record<HandledKind, string> = { Service: 'v1', Gateway: `${GATEWAY_GROUP}/v1` };
const PAGE = 500;

/**
 * The defaults of --request-timeout and --max-pages are declared in commands.ts: 30 s per request,
 * body included, far beyond what a page of 500 objects takes and short enough that an API server
 * that never answers ends the run; and 100 pages, 50,000 objects, five times the 10,000 Services
 * per cluster of the Kubernetes scalability thresholds
 * (https://github.com/kubernetes/community/blob/master/sig-scalability/configs-and-limits/thresholds.md).
 */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

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

/** CONNECTION_CAUSES word the system errors of a connection to the API server. */
const CONNECTION_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused to',
  ECONNRESET: 'connection reset by',
  EHOSTUNREACH: 'no route to',
  ENETUNREACH: 'no route to',
  ETIMEDOUT: 'connection timed out to',
  ENOTFOUND: 'cannot resolve the host of',
  EAI_AGAIN: 'cannot resolve the host of',
};

/** errorCode finds the first system or TLS error code along an error's causes. */
function errorCode(err: unknown): { code: string; message: string } | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.length > 0) return { code, message: e.message };
  }
  return undefined;
}

/** statusMessage reads the message of a Kubernetes Status in an ApiException's body. */
function statusMessage(body: unknown): string | undefined {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body) as unknown;
    } catch {
      return body.split('\n')[0];
    }
  }
  const message = (status as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

/** apiError words a failed API request as `what: cause`, naming the server (connection refused to https://…, no answer within 30s, the Status message). */
function apiError(what: string, err: unknown, timeoutMs: number, server: string): WebhookError {
  if (timedOut(err)) return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: no answer from ${server} within ${timeoutMs / 1000}s (--request-timeout)`, { cause: err });
  if (err instanceof ApiException) {
    const message = statusMessage(err.body);
    const why = err.code === 401 ? 'the credentials were refused (401 Unauthorized)' : `${err.code}${message === undefined ? '' : ` ${message}`}`;
    return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: ${server}: ${why}`, { cause: err });
  }
  const system = errorCode(err);
  const cause = system === undefined ? undefined : CONNECTION_CAUSES[system.code];
  if (cause !== undefined) return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: ${cause} ${server} (${system?.code})`, { cause: err });
  if (system !== undefined && /CERT|SIGNATURE|SELF_SIGNED|TLS|SSL/.test(system.code)) {
    return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: ${server}: TLS: ${system.message.split('\n')[0]} (${system.code})`, { cause: err });
  }
  const detail = describeError(err);
  return new WebhookError(ErrorCode.KUBERNETES_API, `${what}: ${server}: ${detail.split('\n')[0] ?? detail}`, { cause: err });
}

/**
 * loadKubeconfig loads --kubeconfig, or what the environment points to (KUBECONFIG, then
 * ~/.kube/config, then the pod's service account), with --context when given. When there is none
 * at all it says so, instead of the client library's fallback to http://localhost:8080.
 */
function loadKubeconfig(path: string | undefined, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  const env = kubeEnvironment();
  const where = path !== undefined ? `--kubeconfig ${path}` : env.kubeconfig !== undefined ? `KUBECONFIG ${env.kubeconfig}` : 'the kubeconfig';
  if (path === undefined && env.kubeconfig === undefined && !env.inCluster && (env.home === undefined || !existsSync(join(env.home, '.kube', 'config')))) {
    throw new WebhookError(ErrorCode.KUBERNETES_API, 'no kubeconfig found; set KUBECONFIG or --kubeconfig');
  }
  try {
    if (path !== undefined) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.KUBERNETES_API, `${where}: cannot load the kubeconfig: ${describeError(err).split('\n')[0]}`, { cause: err });
  }
  if (context !== undefined) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(context)) {
      throw new WebhookError(ErrorCode.KUBERNETES_API, `${where}: no context ${JSON.stringify(context)} (--context); it has ${names.length === 0 ? 'none' : names.join(', ')}`);
    }
    kc.setCurrentContext(context);
  }
  if (kc.getCurrentCluster() === null) throw new WebhookError(ErrorCode.KUBERNETES_API, `${where}: no cluster for context ${JSON.stringify(kc.getCurrentContext())}`);
  return kc;
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
export async function runAudit(args: ParsedArgs, io: Io): Promise<number> {
  const timeoutMs = durationFlag(args.string('request-timeout'), 'request-timeout', 100, 600_000, DEFAULT_REQUEST_TIMEOUT_MS);
  const maxPages = integerFlag(args.string('max-pages'), 'max-pages', 1, 100_000, 0);
  const output = args.string('output');
  const fix = args.boolean('fix');
  const namespace = args.string('namespace');
  const policy = await loadPolicyFile(args.required('policy'), io.stdin);
  const kc = loadKubeconfig(args.string('kubeconfig'), args.string('context'));
  const server = kc.getCurrentCluster()?.server ?? 'the API server';
  const api = AuditApi.make(kc, timeoutMs);

  // --as-webhook NAME: decide as the webhook registered by that configuration would: only objects it
  // was sent (written since the registration exists, in the namespaces and with the labels it
  // selects) and in the policy's own mode (warn changes nothing). The heal job's view.
  const asWebhook = args.string('as-webhook');
  let scope: { namespaces: Set<string>; objects: (labels: Readonly<Record<string, string>>) => boolean; since: number } | undefined;
  if (asWebhook !== undefined) {
    let configuration: JsonObject;
    try {
      const read = await api.read({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: asWebhook } });
      configuration = JSON.parse(JSON.stringify(read)) as JsonObject;
    } catch (err: unknown) {
      throw apiError(`--as-webhook: reading MutatingWebhookConfiguration ${asWebhook}`, err, timeoutMs, server);
    }
    const selector = namespaceSelectorOf(configuration, asWebhook);
    const objects = objectSelectorOf(configuration, asWebhook);
    const since = Date.parse(stringAt(objectAt(configuration, 'metadata'), 'creationTimestamp') ?? '');
    try {
      const namespaces = new Set((await listAll(api, 'Namespace', undefined, maxPages, selector)).map((n) => stringAt(objectAt(n, 'metadata'), 'name') ?? ''));
      scope = { namespaces, objects, since: Number.isNaN(since) ? 0 : since };
    } catch (err: unknown) {
      if (err instanceof WebhookError) throw err;
      throw apiError(`listing the namespaces of MutatingWebhookConfiguration ${asWebhook} (${selector || 'all'})`, err, timeoutMs, server);
    }
  }

  const findings: AuditFinding[] = [];
  let scanned = 0;
  let predating = 0;
  for (const kind of policy.kinds) {
    let objects: JsonObject[];
    try {
      objects = await listAll(api, kind, namespace, maxPages);
    } catch (err: unknown) {
      if (kind === 'Gateway' && err instanceof ApiException && err.code === 404) {
        io.stderr.write(`lb-probe-webhook audit: ${server} has no Gateway API; Gateways skipped\n`);
        continue;
      }
      if (err instanceof WebhookError) throw err;
      throw apiError(`listing ${kind}s`, err, timeoutMs, server);
    }
    if (scope !== undefined) {
      const { namespaces, objects: selected, since } = scope;
      objects = objects.filter((o) => namespaces.has(stringAt(objectAt(o, 'metadata'), 'namespace') ?? '') && selected(stringMap(objectAt(o, 'metadata')?.['labels'])));
      const sent = objects.filter((o) => (lastWritten(o) ?? 0) >= since);
      predating += objects.length - sent.length;
      objects = sent;
    }
    scanned += objects.length;
    for (const object of objects) {
      const finding = auditObject(object, policy, { policyMode: asWebhook !== undefined });
      if (finding !== undefined) findings.push(finding);
    }
  }

  const failures: string[] = [];
  const fixed = new Set<AuditFinding>();
  if (fix) {
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
        failures.push(`${ref}: server-side dry run refused the change, nothing applied: ${describeError(apiError('apply', err, timeoutMs, server))}`);
        continue;
      }
      try {
        await apply(false, force);
        fixed.add(finding);
      } catch (err: unknown) {
        failures.push(`${ref}: ${describeError(apiError('apply', err, timeoutMs, server))}`);
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
    else if (fix) io.stdout.write(`fixed ${fixed.size} of ${findings.length} to change (${objects} scanned)\n`);
    else io.stdout.write(`would change ${findings.length} of ${objects}\n`);
  }
  if (predating > 0) {
    const them = predating === 1 ? '1 object' : `${predating} objects`;
    io.stderr.write(
      `lb-probe-webhook audit: ${them} selected by MutatingWebhookConfiguration ${asWebhook} ${predating === 1 ? 'was' : 'were'} last written before it existed, so the webhook never saw ${predating === 1 ? 'it' : 'them'}: left alone (adopt them with audit --fix, without --as-webhook)\n`,
    );
  }
  for (const failure of failures) io.stderr.write(`lb-probe-webhook audit: ${failure}\n`);
  for (const f of findings) for (const w of f.warnings) io.stderr.write(`lb-probe-webhook audit: ${f.kind} ${f.namespace}/${f.name}: ${w.replace(WARNING_PREFIX, '')}\n`);
  if (failures.length > 0) return 2;
  if (fix) return 0;
  return findings.length > 0 ? 1 : 0;
}
