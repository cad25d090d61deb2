/**
 * The webhook side of the end-to-end harness: the built CLI's `serve` as a real process with real
 * certificates from `certs`, and the project's own MutatingWebhookConfiguration, rendered from a
 * kustomize overlay with clientConfig rewritten to point at it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { CLI, cliEnv } from './cli.js';
import { freePort, removeTempDir, startProcess, stopChild, tempDir, waitFor, type Kubectl } from './controlplane.js';
import { postJson } from './https.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** WEBHOOK_NAME is the webhook entry's name in the project's MutatingWebhookConfiguration. */
export const WEBHOOK_NAME = 'probes.lb-probe-webhook.io';

/** LogLine is one pino JSON line of the webhook. */
export type LogLine = Record<string, unknown> & { msg?: string; name?: string };

/** RunningWebhook is a `serve` process and what it logged. */
export interface RunningWebhook {
  readonly url: string;
  readonly caBundle: string;
  readonly certsDir: string;
  /** policyFile is the policy the process serves; it reloads a new one within its reload interval. */
  readonly policyFile: string;
  /** logFile is where the process writes its JSON log lines. */
  readonly logFile: string;
  /** logs reads every JSON line the process has written so far. */
  logs(): LogLine[];
  /** reviews returns the review log lines so far, for one object name when given. */
  reviews(name?: string): LogLine[];
  /**
   * settledReviews returns reviews(name) once every review the webhook answered before the call
   * is in its log: it sends the webhook a marker review of its own and waits for the marker's
   * line, which the webhook writes after all of those (one ordered log). A review that never came
   * is then shown not to have come, without a fixed wait.
   */
  settledReviews(name?: string): Promise<LogLine[]>;
  stop(): Promise<number | null>;
}

function runCli(args: readonly string[]): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const out = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: cliEnv() });
  if (out.status !== 0) throw new Error(`lb-probe-webhook ${args.join(' ')}: ${out.stderr}`);
}

/** startWebhook writes the policy, makes certificates with `certs` and starts `serve` on loopback (LOG_LEVEL debug unless env says otherwise), with serve's extra flags. */
export async function startWebhook(policy: string, env: NodeJS.ProcessEnv = {}, flags: readonly string[] = []): Promise<RunningWebhook> {
  const dir = tempDir('lbp-webhook-');
  const certsDir = join(dir, 'certs');
  runCli(['certs', '--out', certsDir, '--dns', 'localhost', '--ip', '127.0.0.1']);
  writeFileSync(join(dir, 'policy.yaml'), policy);
  const port = await freePort();
  const healthPort = await freePort();
  const logFile = join(dir, 'webhook.log');
  const child = startProcess(
    process.execPath,
    [CLI, 'serve', '--policy', join(dir, 'policy.yaml'), '--tls-cert', join(certsDir, 'tls.crt'), '--tls-key', join(certsDir, 'tls.key'),
      '--port', String(port), '--health-port', String(healthPort), '--address', '127.0.0.1', '--shutdown-delay', '0s', ...flags],
    logFile,
    cliEnv({ LOG_LEVEL: 'debug', ...env }),
  );
  const logs = (): LogLine[] =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as LogLine)
      : [];
  const reviews = (name?: string): LogLine[] => logs().filter((l) => l.msg === 'review' && (name === undefined || l.name === name));
  await waitFor(`webhook (log: ${logFile})`, 30_000, () => {
    if (child.exitCode !== null) throw new Error(`webhook exited with ${child.exitCode}: ${readFileSync(logFile, 'utf8')}`);
    return Promise.resolve(logs().some((l) => l.msg === 'serving'));
  });
  const url = `https://127.0.0.1:${port}/mutate`;
  let markers = 0;
  return {
    url,
    caBundle: Buffer.from(readFileSync(join(certsDir, 'ca.crt'))).toString('base64'),
    certsDir,
    policyFile: join(dir, 'policy.yaml'),
    logFile,
    logs,
    reviews,
    async settledReviews(name) {
      const marker = `log-marker-${++markers}`;
      const ca = readFileSync(join(certsDir, 'ca.crt'), 'utf8');
      // A ConfigMap: reviewed (skipped) and logged like any other object, patched never.
      const answer = await postJson(url, markerReview(marker), ca);
      if (answer.status !== 200) throw new Error(`marker review ${marker}: ${answer.status} ${answer.body}`);
      await waitFor(`the marker review ${marker} in the webhook's log (${logFile})`, 30_000, () => Promise.resolve(reviews(marker).length > 0));
      return reviews(name);
    },
    async stop() {
      const code = await stopChild(child);
      removeTempDir(dir);
      return code;
    },
  };
}

/** markerReview is an AdmissionReview of a ConfigMap named name, which the webhook logs and leaves alone. */
function markerReview(name: string): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `${name}-${Date.now()}`,
      kind: { group: '', version: 'v1', kind: 'ConfigMap' },
      name,
      namespace: 'default',
      operation: 'CREATE',
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } },
    },
  };
}

/** Overlay names a kustomize overlay under manifests/overlays. */
export type Overlay = 'opt-in' | 'cluster-wide';

/** OverlayOptions rewrites the rendered overlay for a webhook outside the cluster. */
export interface OverlayOptions {
  readonly url: string;
  readonly caBundle: string;
  /** name replaces the MutatingWebhookConfiguration's name, so several registrations can coexist. */
  readonly name?: string;
  readonly failurePolicy?: 'Ignore' | 'Fail';
}

/** renderOverlay runs `kubectl kustomize` on an overlay and points its webhook at url with caBundle. */
export function renderOverlay(binDir: string, overlay: Overlay, options: OverlayOptions): Record<string, unknown>[] {
  const out = spawnSync(join(binDir, 'kubectl'), ['kustomize', join(ROOT, 'manifests/overlays', overlay)], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`kubectl kustomize ${overlay}: ${out.stderr}`);
  const docs = parseAllDocuments(out.stdout).map((d) => d.toJS() as Record<string, unknown>);
  for (const doc of docs) {
    if (doc['kind'] !== 'MutatingWebhookConfiguration') continue;
    if (options.name !== undefined) (doc['metadata'] as Record<string, unknown>)['name'] = options.name;
    for (const webhook of doc['webhooks'] as Record<string, unknown>[]) {
      webhook['clientConfig'] = { url: options.url, caBundle: options.caBundle };
      if (options.failurePolicy !== undefined) webhook['failurePolicy'] = options.failurePolicy;
    }
  }
  return docs;
}

/** registerWebhook applies the overlay's MutatingWebhookConfiguration, pointed at the webhook, and returns its name. */
export async function registerWebhook(kubectl: Kubectl, binDir: string, overlay: Overlay, options: OverlayOptions): Promise<string> {
  const config = renderOverlay(binDir, overlay, options).find((d) => d['kind'] === 'MutatingWebhookConfiguration');
  if (config === undefined) throw new Error(`overlay ${overlay} has no MutatingWebhookConfiguration`);
  const applied = await kubectl(['apply', '-f', '-'], JSON.stringify(config));
  if (applied.code !== 0) throw new Error(`registering the webhook: ${applied.stderr}`);
  return (config['metadata'] as { name: string }).name;
}

/** unregisterWebhook deletes a MutatingWebhookConfiguration. */
export async function unregisterWebhook(kubectl: Kubectl, name: string): Promise<void> {
  await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
}

/** ensureNamespace creates or updates a namespace with labels. */
export async function ensureNamespace(kubectl: Kubectl, name: string, labels: Record<string, string> = {}): Promise<void> {
  const result = await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }));
  if (result.code !== 0) throw new Error(`namespace ${name}: ${result.stderr}`);
}

/** probeService is a minimal Istio-shaped LoadBalancer Service (status-port, http 80). */
export function probeService(name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ports: [
        { name: 'status-port', port: 15021, appProtocol: 'tcp' },
        { name: 'http', port: 80, appProtocol: 'http' },
      ],
    },
  };
}

/**
 * waitUntilMutating waits until the API server calls the webhook for namespace: webhook
 * configurations reach the API server's admission chain a moment after they are written.
 */
export async function waitUntilMutating(kubectl: Kubectl, namespace: string): Promise<void> {
  await waitFor(`webhook registration in effect for ${namespace}`, 30_000, async () => {
    const result = await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(probeService('registration-probe', namespace)));
    return result.code === 0 && result.stdout.includes('health-probe_protocol');
  });
}
