/**
 * `npm run bench [-- MODE]`: prints figures, asserts nothing. Loopback only, bounded runs.
 *
 * Modes (default: server, e2e, then create):
 * - server: the built `serve` against a bare Fastify HTTPS server (bench/bare-server.ts), same
 *   certificates, same run: throughput in interleaved closed-loop rounds, latency at a steady
 *   1,000 requests/s, peak RSS. The server runs pinned to one core and the load generator
 *   (bench/load.ts, its own process) to another, with `taskset`.
 * - memory: hostile but well-formed traffic, each scenario against a fresh server: parallel
 *   reviews of the largest size, uploads that stall mid-body, thousands of idle connections; the
 *   peak RSS of each, and every well-formed review must be answered 200.
 * - e2e: Service creation through a real kube-apiserver with and without the webhook.
 * - create: the latency of one create (p50, p99) through one kube-apiserver v1.37.2, with nothing
 *   registered, with the webhook, and with the policy compiled to a MutatingAdmissionPolicy
 *   (`export admission-policy`), interleaved one Service at a time.
 *
 * `serve` runs with the Node flags the container image uses (NODE_OPTIONS in the Dockerfile).
 * Environment: BENCH_ONLY (a pattern of memory scenario names), BENCH_NODE_OPTIONS (the image's NODE_OPTIONS) for serve, BENCH_SECONDS (8) per round, BENCH_ROUNDS (5) interleaved rounds per server,
 * BENCH_CONNECTIONS (16), BENCH_SERVICES (300) Services per end-to-end round, BENCH_CREATES (1000) Services per way in the create benchmark.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { decide, MAX_AFFECTED_PORTS, userMessages } from '../src/decision/decide.js';
import { encodeResponse } from '../src/http/review.js';
import { parsePolicy } from '../src/policy/parse.js';
import { removeTempDir, startControlPlane, startProcess, stopChild, tempDir } from '../test/support/controlplane.js';
import { ensureNamespace, probeService, registerWebhook, startWebhook, unregisterWebhook, waitUntilMutating } from '../test/support/webhook.js';
import type { LoadOptions, LoadResult } from './load.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 16);
const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 300);
const POLICY = join(ROOT, 'manifests/base/policy.yaml');
const CREATES = Number(process.env['BENCH_CREATES'] ?? 1000);

/** NODE_OPTIONS as the container image sets them: the one place the heap settings are written down. */
function imageNodeOptions(): string {
  const override = process.env['BENCH_NODE_OPTIONS'];
  if (override !== undefined) return override;
  const match = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  if (match === null) throw new Error('Dockerfile: no ENV NODE_OPTIONS="..." line');
  return match[1] as string;
}

/** pinned runs a command on one core with taskset when it exists (two cores or more), else as it is. */
const TASKSET = cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;
function pinned(core: number, command: string, args: readonly string[]): [string, string[]] {
  return TASKSET ? ['taskset', ['-c', String(core), command, ...args]] : [command, [...args]];
}

interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
}

function startServer(name: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Server> {
  const [command, argv] = pinned(0, process.execPath, args);
  const child = startProcess(command, argv, logFile, env);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 30_000;
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

/** load runs bench/load.ts in its own process, pinned to the core the server does not use. */
function load(options: LoadOptions): Promise<LoadResult> {
  const [command, argv] = pinned(1, process.execPath, ['--import', 'tsx', join(ROOT, 'bench/load.ts'), JSON.stringify(options)]);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited with ${code}`))));
  });
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length))) ?? [];
  return rows.map((r) => r.map((c, i) => String(c).padStart(widths[i] ?? 0)).join('  ')).join('\n');
}

interface Setup {
  readonly dir: string;
  readonly certs: string;
  readonly ca: string;
  readonly caFile: string;
}

async function setup(): Promise<Setup> {
  const dir = tempDir('lbp-bench-');
  const certs = join(dir, 'certs');
  const made = spawn(process.execPath, [CLI, 'certs', '--out', certs, '--dns', 'localhost', '--ip', '127.0.0.1'], { stdio: 'ignore' });
  await new Promise((r) => made.once('exit', r));
  return { dir, certs, ca: readFileSync(join(certs, 'ca.crt'), 'utf8'), caFile: join(certs, 'ca.crt') };
}

function startOurs(s: Setup, tag: string): Promise<Server> {
  const args = [CLI, 'serve', '--policy', POLICY, '--tls-cert', join(s.certs, 'tls.crt'), '--tls-key', join(s.certs, 'tls.key'), '--port', '0', '--health-port', '0', '--address', '127.0.0.1', '--shutdown-delay', '0s'];
  return startServer('lb-probe-webhook', args, join(s.dir, `ours-${tag}.log`), { ...process.env, NODE_OPTIONS: imageNodeOptions(), LOG_LEVEL: 'info' });
}

/** istioService is the Service Istio generates for a Gateway, as the API server sends it (with managedFields). */
function istioService(): { metadata: Record<string, unknown>; spec: Record<string, unknown> } {
  const service = parse(readFileSync(join(ROOT, 'test/fixtures/istio-gateway-service.yaml'), 'utf8')) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  service.metadata.managedFields = [
    { manager: 'pilot-discovery', operation: 'Apply', apiVersion: 'v1', time: '2026-11-21T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:gateway.istio.io/managed': {}, 'f:gateway.networking.k8s.io/gateway-name': {} }, 'f:ownerReferences': { 'k:{"uid":"5c7e0f5e-3b1a-4f55-9d2b-0c5d1a3e7b10"}': {} } }, 'f:spec': { 'f:ipFamilyPolicy': {}, 'f:ports': { 'k:{"port":15021,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} }, 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} }, 'k:{"port":443,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} } }, 'f:selector': {}, 'f:type': {} } } },
  ];
  service.spec = { ...service.spec, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ipFamilies: ['IPv4'], allocateLoadBalancerNodePorts: true };
  return service;
}

/** updateReview wraps an object (and the old one) in an UPDATE AdmissionReview as the API server sends it. */
function updateReview(uid: string, object: unknown, oldObject: unknown): Record<string, unknown> {
  return {
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
      operation: 'UPDATE',
      userInfo: { username: 'system:serviceaccount:istio-system:istiod', uid: 'f3c2', groups: ['system:serviceaccounts', 'system:serviceaccounts:istio-system', 'system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
      options: { kind: 'UpdateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'pilot-discovery' },
    },
  };
}

async function serverBenchmark(): Promise<void> {
  const s = await setup();
  // A realistic review: an UPDATE of the Service Istio generates for a Gateway (object and old object).
  const service = istioService();
  const old = structuredClone<typeof service>(service);
  (old.metadata['labels'] as Record<string, string>)['gateway.istio.io/revision'] = 'default';
  const uid = '2b7c5c7e-8d1f-4b3a-a2c4-1f0e9d8c7b6a';
  const body = JSON.stringify(updateReview(uid, service, old));
  const bodyFile = join(s.dir, 'review.json');
  writeFileSync(bodyFile, body);
  const decision = decide({ object: service, operation: 'UPDATE', policy: parsePolicy(readFileSync(POLICY, 'utf8')) });
  const responseFile = join(s.dir, 'response.json');
  writeFileSync(responseFile, JSON.stringify(encodeResponse(uid, decision.patch, userMessages(decision))));

  const ours = await startOurs(s, 'server');
  const bare = await startServer('bare Fastify', ['--import', 'tsx', join(ROOT, 'bench/bare-server.ts'), join(s.certs, 'tls.crt'), join(s.certs, 'tls.key'), responseFile], join(s.dir, 'bare.log'));

  console.log(`\nServer benchmark: POST /mutate over HTTPS, keep-alive, ${CONNECTIONS} connections, a ${(body.length / 1024).toFixed(1)} KB UPDATE review; ${ROUNDS} interleaved rounds of ${SECONDS} s`);
  console.log(TASKSET ? 'pinned: servers on core 0, the load generator (its own process) on core 1' : 'NOT pinned: taskset missing or fewer than 2 cores; figures are less comparable');
  console.log(`serve runs with NODE_OPTIONS="${imageNodeOptions()}" (the image's); the bare server with Node's defaults`);
  const run = (server: Server, seconds: number, rate = 0) => load({ port: server.port, caFile: s.caFile, bodyFile, connections: CONNECTIONS, seconds, rate });
  for (const server of [bare, ours]) await run(server, 2); // warm-up: JIT and TLS set-up
  const rounds: Record<string, LoadResult[]> = { [bare.name]: [], [ours.name]: [] };
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const got: Record<string, number> = {};
    for (const server of round % 2 === 0 ? [bare, ours] : [ours, bare]) {
      const result = await run(server, SECONDS);
      rounds[server.name]?.push(result);
      got[server.name] = result.rps;
    }
    ratios.push((got[ours.name] ?? 0) / (got[bare.name] ?? 1));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const rows: (string | number)[][] = [['server', 'median req/s', 'rounds req/s', 'p99 ms (max load)', 'p50 / p99 ms at 1000/s', 'send lag p99 ms', 'failed', 'peak RSS MB']];
  for (const server of [bare, ours]) {
    const list = rounds[server.name] ?? [];
    const steady = await run(server, SECONDS, 1000);
    const failed = list.reduce((n, r) => n + r.failed, 0) + steady.failed;
    rows.push([server.name, median(list.map((r) => r.rps)), list.map((r) => r.rps).join(' '), median(list.map((r) => r.p99)), `${steady.p50} / ${steady.p99}`, steady.sendLagP99, failed, peakRssMb(server.child.pid as number)]);
  }
  console.log(table(rows));
  console.log(`throughput ratio ours/bare, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(2)} (target >= 0.80)`);
  const peak = (server: Server) => peakRssMb(server.child.pid as number);
  console.log(`peak RSS under saturating load: ours ${peak(ours)} MB, bare ${peak(bare)} MB, difference ${peak(ours) - peak(bare)} MB (target <= 25)`);
  await stopChild(ours.child);
  await stopChild(bare.child);
  removeTempDir(s.dir);
}

/** post sends one body over its own connection and resolves with the status (0 when the connection failed). */
function post(port: number, ca: string, body: string | Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', () => resolve(0));
    req.end(body);
  });
}

function openTls(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** manyPorts is an Istio-shaped Service with n http ports: about 70 bytes of JSON per port. */
function manyPorts(n: number, from = 1): Record<string, unknown> {
  const service = istioService();
  service.spec['ports'] = Array.from({ length: n }, (_, i) => ({ name: `http-${from + i}`, port: from + i, protocol: 'TCP', appProtocol: 'http' }));
  return service;
}

interface Scenario {
  readonly name: string;
  /** run drives the hostile traffic and returns how many well-formed reviews were sent and how many failed. */
  readonly run: (port: number, ca: string) => Promise<{ sent: number; failed: number }>;
}

/** steady sends small well-formed reviews one after another for ms, counting the answers other than 200. */
async function steady(port: number, ca: string, ms: number): Promise<{ sent: number; failed: number }> {
  const body = JSON.stringify(updateReview('steady', istioService(), istioService()));
  let sent = 0;
  let failed = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    sent++;
    if ((await post(port, ca, body)) !== 200) failed++;
  }
  return { sent, failed };
}

async function parallel(port: number, ca: string, body: string, n: number): Promise<{ sent: number; failed: number }> {
  const statuses = await Promise.all(Array.from({ length: n }, () => post(port, ca, body)));
  return { sent: n, failed: statuses.filter((s) => s !== 200).length };
}

async function memoryBenchmark(): Promise<void> {
  const s = await setup();
  const ports45k = JSON.stringify(updateReview('ports-45k', manyPorts(45_000), null)).replace('"oldObject":null,', '');
  // The largest review the API server can send (see DEFAULT_BODY_LIMIT): an UPDATE whose object
  // and old object are each just over 3 MiB of JSON.
  const maxUpdate = JSON.stringify(updateReview('max-update', manyPorts(48_000), manyPorts(48_000, 2)));
  // The heaviest review that is still annotated: as many http ports as one object is annotated for.
  const atCap = JSON.stringify(updateReview('ports-cap', manyPorts(MAX_AFFECTED_PORTS), manyPorts(MAX_AFFECTED_PORTS)));
  const scenarios: Scenario[] = [
    { name: 'idle, after one review', run: (port, ca) => parallel(port, ca, JSON.stringify(updateReview('one', istioService(), istioService())), 1) },
    ...[1, 8].map((n) => ({
      name: `${n} x ${(atCap.length / 2 ** 20).toFixed(1)} MiB UPDATE of ${MAX_AFFECTED_PORTS.toLocaleString('en-US')} http ports, each annotated, in parallel`,
      run: (port: number, ca: string) => parallel(port, ca, atCap, n),
    })),
    ...[1, 4, 8].map((n) => ({ name: `${n} x ${(ports45k.length / 2 ** 20).toFixed(1)} MiB review (45,000 http ports) in parallel`, run: (port: number, ca: string) => parallel(port, ca, ports45k, n) })),
    ...[2, 8].map((n) => ({ name: `${n} x ${(maxUpdate.length / 2 ** 20).toFixed(1)} MiB UPDATE (object + oldObject) in parallel`, run: (port: number, ca: string) => parallel(port, ca, maxUpdate, n) })),
    {
      name: '30 uploads of 6 MiB stalled mid-body for 10 s, small reviews meanwhile',
      run: async (port, ca) => {
        const sockets = await Promise.all(Array.from({ length: 30 }, () => openTls(port, ca)));
        const half = Buffer.alloc(3 * 2 ** 20, 0x20);
        for (const socket of sockets) {
          socket.on('error', () => undefined);
          socket.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${6 * 2 ** 20}\r\n\r\n{"pad":"`);
          socket.write(half);
        }
        const result = await steady(port, ca, 10_000);
        for (const socket of sockets) socket.destroy();
        return result;
      },
    },
    {
      name: '1,000 idle keep-alive connections, small reviews meanwhile',
      run: async (port, ca) => {
        const body = JSON.stringify(updateReview('idle', istioService(), istioService()));
        const request = `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
        const sockets: TLSSocket[] = [];
        let failed = 0;
        for (let i = 0; i < 1000; i += 50) {
          const batch = await Promise.all(Array.from({ length: 50 }, () => openTls(port, ca)));
          await Promise.all(
            batch.map(
              (socket) =>
                new Promise<void>((resolve) => {
                  socket.on('error', () => undefined);
                  socket.once('data', (d: Buffer) => {
                    if (!d.toString('latin1').startsWith('HTTP/1.1 200 ')) failed++;
                    resolve();
                  });
                  socket.write(request);
                }),
            ),
          );
          sockets.push(...batch);
        }
        const result = await steady(port, ca, 3000);
        for (const socket of sockets) socket.destroy();
        return { sent: result.sent + 1000, failed: result.failed + failed };
      },
    },
  ];
  console.log(`\nMemory benchmark: each scenario against a fresh serve with NODE_OPTIONS="${imageNodeOptions()}"; peak RSS is VmHWM`);
  const rows: (string | number)[][] = [['scenario', 'peak RSS MB', 'well-formed reviews', 'failed']];
  let worst = 0;
  let failures = 0;
  const only = new RegExp(process.env['BENCH_ONLY'] ?? '');
  for (const [i, scenario] of scenarios.entries()) {
    if (!only.test(scenario.name)) continue;
    const server = await startOurs(s, `memory-${i}`);
    const result = await scenario.run(server.port, s.ca);
    const peak = peakRssMb(server.child.pid as number);
    worst = Math.max(worst, peak);
    failures += result.failed;
    rows.push([scenario.name, peak, result.sent, result.failed]);
    await stopChild(server.child);
  }
  console.log(table(rows));
  console.log(`worst peak RSS ${worst} MB (target <= 160), failed well-formed reviews ${failures} (target 0)`);
  removeTempDir(s.dir);
}

async function endToEndBenchmark(): Promise<void> {
  console.log(`\nEnd-to-end benchmark: create ${SERVICES} Istio-shaped LoadBalancer Services through kube-apiserver, 4 at a time, with and without the webhook; ${ROUNDS} interleaved rounds`);
  const cp = await startControlPlane();
  // As deployed: the image's Node flags and one info line per review.
  const webhook = await startWebhook(readFileSync(join(ROOT, 'manifests/base/policy.yaml'), 'utf8'), { NODE_OPTIONS: imageNodeOptions(), LOG_LEVEL: 'info' });
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
  for (let r = 0; r < ROUNDS; r++) {
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

/** percentile returns the p-th percentile (nearest rank) of the values. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/**
 * createLatencyBenchmark creates CREATES Services three ways on one kube-apiserver v1.37.2, one at a
 * time and interleaved (nothing registered, the webhook, the compiled MutatingAdmissionPolicy), and
 * prints the p50 and p99 of one create, each way.
 */
async function createLatencyBenchmark(): Promise<void> {
  const version = 'v1.37.2';
  console.log(`\nCreate latency: ${CREATES} Istio-shaped LoadBalancer Services each way on one kube-apiserver ${version}, one at a time, interleaved: nothing registered, the webhook, the compiled admission policy`);
  const cp = await startControlPlane({ version });
  const policyText = readFileSync(POLICY, 'utf8');
  const webhook = await startWebhook(policyText, { NODE_OPTIONS: imageNodeOptions(), LOG_LEVEL: 'info' });
  const ways: { name: string; namespace: string; labels: Record<string, string> }[] = [
    { name: 'nothing registered', namespace: 'bench-none', labels: {} },
    { name: 'webhook', namespace: 'bench-webhook', labels: { 'lb-probe-webhook/enabled': 'true' } },
    { name: 'admission policy', namespace: 'bench-policy', labels: { 'lbp-bench/admission-policy': 'true' } },
  ];
  for (const way of ways) await ensureNamespace(cp.kubectl, way.namespace, way.labels);
  const registration = await registerWebhook(cp.kubectl, cp.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-bench' });
  const exported = spawnSync(process.execPath, [CLI, 'export', 'admission-policy', '--policy', POLICY, '--api-version', 'v1'], { encoding: 'utf8' });
  if (exported.status !== 0) throw new Error(`export admission-policy: ${exported.stderr}`);
  const objects = parseAllDocuments(exported.stdout).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> });
  for (const object of objects) {
    if (object.kind === 'MutatingAdmissionPolicyBinding') object.spec['matchResources'] = { namespaceSelector: { matchLabels: { 'lbp-bench/admission-policy': 'true' } } };
  }
  const applied = await cp.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
  if (applied.code !== 0) throw new Error(`applying the admission policy: ${applied.stderr}`);
  await waitUntilMutating(cp.kubectl, 'bench-webhook');
  await waitUntilMutating(cp.kubectl, 'bench-policy');
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const create = async (namespace: string, name: string): Promise<{ ms: number; annotated: boolean }> => {
    const body = probeService(name, namespace) as { spec: Record<string, unknown> };
    // No nodePorts: thousands of Services would exhaust the node port range, which is beside the point here.
    body.spec['allocateLoadBalancerNodePorts'] = false;
    const started = performance.now();
    const created = await core.createNamespacedService({ namespace, body: body });
    return { ms: performance.now() - started, annotated: Object.keys(created.metadata?.annotations ?? {}).length > 0 };
  };
  // Warm-up: the first creates pay for connections and caches.
  for (const way of ways) for (let i = 0; i < 20; i++) await create(way.namespace, `warm-${i}`);
  const times: number[][] = ways.map(() => []);
  const annotated = ways.map(() => 0);
  for (let i = 0; i < CREATES; i++) {
    for (const [w, way] of ways.entries()) {
      const result = await create(way.namespace, `s-${i}`);
      times[w]?.push(result.ms);
      if (result.annotated) annotated[w] = (annotated[w] ?? 0) + 1;
    }
  }
  console.log(table([
    ['', 'p50 ms', 'p99 ms', 'mean ms', 'annotated'],
    ...ways.map((way, w) => {
      const xs = times[w] ?? [];
      return [way.name, percentile(xs, 50).toFixed(2), percentile(xs, 99).toFixed(2), (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2), `${annotated[w]} of ${xs.length}`];
    }),
  ]));
  await unregisterWebhook(cp.kubectl, registration);
  await webhook.stop();
  await cp.stop();
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'all';
  if (!['all', 'server', 'memory', 'e2e', 'create'].includes(mode)) {
    console.error(`bench: unknown mode ${JSON.stringify(mode)}; one of server, memory, e2e, create (none: server, e2e, then create)`);
    process.exit(2);
  }
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  if (mode === 'all' || mode === 'server') await serverBenchmark();
  if (mode === 'memory') await memoryBenchmark();
  if (mode === 'all' || mode === 'e2e') await endToEndBenchmark();
  if (mode === 'all' || mode === 'create') await createLatencyBenchmark();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
