/**
 * `npm run bench`: the webhook against a bare Fastify HTTPS server, same machine, same load
 * generator (autocannon), same run; then Service creation through a real kube-apiserver with and
 * without the webhook registered. Prints figures; asserts nothing. Loopback only, bounded runs.
 *
 * Environment: BENCH_SECONDS (default 10) per measured run, BENCH_ROUNDS (default 5) interleaved
 * rounds per server, BENCH_SERVICES (default 300) Services per end-to-end round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { decide, userMessages } from '../src/core/decide.js';
import { encodeResponse } from '../src/http/review.js';
import { parsePolicy } from '../src/policy/parse.js';
import { removeTempDir, startControlPlane, startProcess, stopChild, tempDir } from '../test/e2e/controlplane/controlplane.js';
import { ensureNamespace, probeService, registerWebhook, startWebhook, unregisterWebhook, waitUntilMutating } from '../test/e2e/webhook.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 300);
const CONNECTIONS = 10;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);

interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
}

function startServer(name: string, args: readonly string[], logFile: string): Promise<Server> {
  const child = startProcess(process.execPath, args, logFile);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 20_000;
    const poll = setInterval(() => {
      const line = readFileSync(logFile, 'utf8')
        .split('\n')
        .find((l) => l.includes('"serving"'));
      if (line !== undefined) {
        clearInterval(poll);
        resolve({ name, child, port: (JSON.parse(line) as { port: number }).port });
      } else if (child.exitCode !== null || Date.now() > deadline) {
        clearInterval(poll);
        reject(new Error(`${name} did not start: ${readFileSync(logFile, 'utf8')}`));
      }
    }, 50);
  });
}

/** peakRssMb reads the process's high-water mark of resident memory (Linux /proc). */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

interface Measured {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

async function cannon(port: number, ca: string, body: string, seconds: number): Promise<Measured> {
  const result = await autocannon({
    url: `https://127.0.0.1:${port}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    duration: seconds,
    servername: 'localhost',
    tlsOptions: { ca },
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx };
}

/**
 * paced sends `rate` requests per second for `seconds`, evenly spaced over keep-alive connections,
 * and measures each latency from its scheduled start (open loop: queueing counts), so the
 * percentiles are those of a steady rate, not of bursts.
 */
async function paced(port: number, ca: string, body: string, rate: number, seconds: number): Promise<{ p50: number; p99: number; failed: number }> {
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: CONNECTIONS, ca, servername: 'localhost' });
  const total = rate * seconds;
  const latencies: number[] = [];
  let failed = 0;
  let sent = 0;
  let done = 0;
  const start = performance.now() + 50;
  await new Promise<void>((finish) => {
    const send = (due: number) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - due);
          else failed++;
          if (++done === total) finish();
        });
      });
      req.on('error', () => {
        failed++;
        if (++done === total) finish();
      });
      req.end(body);
    };
    // One timer loop sends every request that is due: the schedule, not the responses, sets the pace.
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + (sent * 1000) / rate <= now) send(start + (sent++ * 1000) / rate);
      if (sent < total) setTimeout(tick, Math.max(0, start + (sent * 1000) / rate - performance.now()));
    };
    setTimeout(tick, 50);
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN) * 100) / 100;
  return { p50: at(0.5), p99: at(0.99), failed };
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length))) ?? [];
  return rows.map((r) => r.map((c, i) => String(c).padStart(widths[i] ?? 0)).join('  ')).join('\n');
}

async function serverBenchmark(): Promise<void> {
  const dir = tempDir('lbp-bench-');
  const certs = join(dir, 'certs');
  const made = spawn(process.execPath, [CLI, 'certs', '--out', certs, '--dns', 'localhost', '--ip', '127.0.0.1'], { stdio: 'ignore' });
  await new Promise((r) => made.once('exit', r));
  const ca = readFileSync(join(certs, 'ca.crt'), 'utf8');
  const policyFile = join(ROOT, 'manifests/base/policy.yaml');

  // A realistic review: the Service Istio generates for a Gateway, as the API server sends it on CREATE.
  const service = parse(readFileSync(join(ROOT, 'test/fixtures/istio-gateway-service.yaml'), 'utf8')) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  service.metadata.managedFields = [
    { manager: 'pilot-discovery', operation: 'Apply', apiVersion: 'v1', time: '2026-11-21T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:gateway.istio.io/managed': {}, 'f:gateway.networking.k8s.io/gateway-name': {} }, 'f:ownerReferences': { 'k:{"uid":"5c7e0f5e-3b1a-4f55-9d2b-0c5d1a3e7b10"}': {} } }, 'f:spec': { 'f:ipFamilyPolicy': {}, 'f:ports': { 'k:{"port":15021,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} }, 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} }, 'k:{"port":443,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} } }, 'f:selector': {}, 'f:type': {} } } },
  ];
  service.spec = { ...service.spec, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ipFamilies: ['IPv4'], allocateLoadBalancerNodePorts: true };
  const uid = '2b7c5c7e-8d1f-4b3a-a2c4-1f0e9d8c7b6a';
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      requestKind: { group: '', version: 'v1', kind: 'Service' },
      requestResource: { group: '', version: 'v1', resource: 'services' },
      name: 'gateway-istio',
      namespace: 'istio-ingress',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:istio-system:istiod', uid: 'f3c2', groups: ['system:serviceaccounts', 'system:serviceaccounts:istio-system', 'system:authenticated'] },
      object: service,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'pilot-discovery' },
    },
  };
  const body = JSON.stringify(review);
  const decision = decide({ object: service, operation: 'CREATE', policy: parsePolicy(readFileSync(policyFile, 'utf8')) });
  const responseFile = join(dir, 'response.json');
  writeFileSync(responseFile, JSON.stringify(encodeResponse(uid, decision.patch, userMessages(decision))));

  const ours = await startServer('lb-probe-webhook', [CLI, 'serve', '--policy', policyFile, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--port', '0', '--health-port', '0', '--address', '127.0.0.1', '--shutdown-delay', '0s'], join(dir, 'ours.log'));
  const bare = await startServer('bare Fastify', ['--import', 'tsx', join(ROOT, 'bench/bare-server.ts'), join(certs, 'tls.crt'), join(certs, 'tls.key'), responseFile], join(dir, 'bare.log'));

  console.log(`\nServer benchmark: POST /mutate over HTTPS with keep-alive, ${CONNECTIONS} connections, a ${(body.length / 1024).toFixed(1)} KB review; ${SECONDS} s per run`);
  const rows: (string | number)[][] = [['server', 'median req/s', 'p50 ms', 'p99 ms', 'p50 / p99 ms at 1000/s', 'errors', 'peak RSS MB']];
  // Interleaved rounds, so that both servers see the same machine noise; the median round counts.
  const rounds: Record<string, Measured[]> = { [bare.name]: [], [ours.name]: [] };
  for (const server of [bare, ours]) await cannon(server.port, ca, body, 2); // warm-up: JIT and TLS set-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of round % 2 === 0 ? [bare, ours] : [ours, bare]) rounds[server.name]?.push(await cannon(server.port, ca, body, SECONDS));
  }
  const results: Record<string, Measured> = {};
  for (const [name, list] of Object.entries(rounds)) results[name] = [...list].sort((a, b) => a.rps - b.rps)[Math.floor(list.length / 2)] as Measured;
  for (const [name, list] of Object.entries(rounds)) console.log(`${name}: req/s per round ${list.map((m) => Math.round(m.rps)).join(', ')}`);
  for (const server of [bare, ours]) {
    const full = results[server.name] as Measured;
    const steady = await paced(server.port, ca, body, 1000, SECONDS);
    rows.push([server.name, Math.round(full.rps), full.p50, full.p99, `${steady.p50} / ${steady.p99}`, full.errors + full.non2xx + steady.failed, peakRssMb(server.child.pid as number)]);
  }
  console.log(table(rows));
  const ratio = (results[ours.name]?.rps ?? 0) / (results[bare.name]?.rps ?? 1);
  console.log(`throughput ratio ours/bare: ${ratio.toFixed(2)} (target >= 0.80)`);
  await stopChild(ours.child);
  await stopChild(bare.child);
  removeTempDir(dir);
}

async function endToEndBenchmark(): Promise<void> {
  console.log(`\nEnd-to-end benchmark: create ${SERVICES} Istio-shaped LoadBalancer Services through kube-apiserver, 4 at a time, with and without the webhook`);
  const cp = await startControlPlane();
  const webhook = await startWebhook(readFileSync(join(ROOT, 'manifests/base/policy.yaml'), 'utf8'));
  await ensureNamespace(cp.kubectl, 'bench-with', { 'lb-probe-webhook/enabled': 'true' });
  await ensureNamespace(cp.kubectl, 'bench-without');
  const name = await registerWebhook(cp.kubectl, cp.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-bench' });
  await waitUntilMutating(cp.kubectl, 'bench-with');
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);

  const round = async (namespace: string, tag: string): Promise<number> => {
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < SERVICES) {
          const i = next++;
          const body = probeService(`${tag}-${i}`, namespace) as { spec: Record<string, unknown> };
          // No nodePorts: thousands of Services would exhaust the node port range, which is beside the point here.
          body.spec['allocateLoadBalancerNodePorts'] = false;
          await core.createNamespacedService({ namespace, body: body });
        }
      }),
    );
    return performance.now() - started;
  };
  const times: Record<string, number[]> = { without: [], with: [] };
  for (let r = 0; r < 3; r++) {
    times['without']?.push(await round('bench-without', `r${r}`));
    times['with']?.push(await round('bench-with', `r${r}`));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const without = median(times['without'] ?? []);
  const withHook = median(times['with'] ?? []);
  console.log(table([
    ['', 'median ms', 'ms per Service', 'rounds ms'],
    ['without webhook', Math.round(without), (without / SERVICES).toFixed(2), (times['without'] ?? []).map(Math.round).join(' ')],
    ['with webhook', Math.round(withHook), (withHook / SERVICES).toFixed(2), (times['with'] ?? []).map(Math.round).join(' ')],
  ]));
  const mutated = (await webhook.settledReviews()).filter((l) => l['decision'] === 'patched').length;
  console.log(`end-to-end ratio with/without: ${(withHook / without).toFixed(2)} (target <= 1.25); reviews patched: ${mutated}`);
  await unregisterWebhook(cp.kubectl, name);
  await webhook.stop();
  await cp.stop();
}

async function main(): Promise<void> {
  console.log(`machine: ${(await import('node:os')).cpus().length} cores, ${Math.round((await import('node:os')).totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  await serverBenchmark();
  if (process.argv.includes('--server-only')) return;
  await endToEndBenchmark();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
