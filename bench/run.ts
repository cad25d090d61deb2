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
 * - profile: serve under the server benchmark's load with --cpu-prof; where its CPU goes per review.
 * - create: the latency of one create (p50, p99) through one kube-apiserver v1.37.2, with nothing
 *   registered, with the webhook, and with the policy compiled to a MutatingAdmissionPolicy
 *   (`export admission-policy`), interleaved one Service at a time.
 *
 * `serve` gives itself its Node flags (SERVE_NODE_FLAGS, src/runtime/memory.ts); the bare server
 * is started with the same flags. Each round prints the load average of the machine beside it,
 * and each server's CPU time per review (its process's CPU time over the round / the reviews
 * answered), the steadier figure on a machine shared with other work.
 * Environment: BENCH_ONLY (a pattern of memory scenario names), BENCH_SECONDS (8) per round, BENCH_ROUNDS (5) interleaved rounds per server,
 * BENCH_CONNECTIONS (16), BENCH_SERVICES (300) Services per end-to-end round, BENCH_CREATES (1000) Services per way in the create benchmark.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { review } from '../src/admission/review.js';
import { decodeReview, encodeAnswer } from '../src/http/review.js';
import { parseAllDocuments } from 'yaml';
import { parsePolicy } from '../src/policy/parse.js';
import { SERVE_NODE_FLAGS } from '../src/runtime/memory.js';
import { hostileScenarios, istioService, updateReview } from '../test/support/hostile.js';
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

/** load1 is the machine's one-minute load average, printed beside every figure. */
function load1(): string {
  return `load ${loadavg()[0]?.toFixed(2)}`;
}

/** TICKS_PER_SECOND is the kernel's clock tick, the unit of /proc/PID/stat's CPU times. */
const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

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

/** startOurs starts the built serve as the README starts it, no NODE_OPTIONS: it gives itself SERVE_NODE_FLAGS. */
function startOurs(s: Setup, tag: string): Promise<Server> {
  const args = [CLI, 'serve', '--policy', POLICY, '--tls-cert', join(s.certs, 'tls.crt'), '--tls-key', join(s.certs, 'tls.key'), '--port', '0', '--health-port', '0', '--address', '127.0.0.1', '--shutdown-delay', '0s'];
  return startServer('lb-probe-webhook', args, join(s.dir, `ours-${tag}.log`), { ...process.env, NODE_OPTIONS: undefined, LOG_LEVEL: 'info' });
}


/** benchReview writes the review the server benchmark sends: an UPDATE of the Service Istio generates for a Gateway (object and old object). */
function benchReview(s: Setup): { body: string; bodyFile: string } {
  const service = istioService();
  const old = structuredClone<typeof service>(service);
  (old.metadata['labels'] as Record<string, string>)['gateway.istio.io/revision'] = 'default';
  const body = JSON.stringify(updateReview('2b7c5c7e-8d1f-4b3a-a2c4-1f0e9d8c7b6a', service, old));
  const bodyFile = join(s.dir, 'review.json');
  writeFileSync(bodyFile, body);
  return { body, bodyFile };
}

async function serverBenchmark(): Promise<void> {
  const s = await setup();
  const { body, bodyFile } = benchReview(s);
  const responseFile = join(s.dir, 'response.json');
  writeFileSync(responseFile, encodeAnswer(review(decodeReview(JSON.parse(body)), parsePolicy(readFileSync(POLICY, 'utf8')))));

  const ours = await startOurs(s, 'server');
  const bare = await startServer('bare Fastify', [...SERVE_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'bench/bare-server.ts'), join(s.certs, 'tls.crt'), join(s.certs, 'tls.key'), responseFile], join(s.dir, 'bare.log'), { ...process.env, NODE_OPTIONS: undefined });

  console.log(`\nServer benchmark: POST /mutate over HTTPS, keep-alive, ${CONNECTIONS} connections, a ${(body.length / 1024).toFixed(1)} KB UPDATE review; ${ROUNDS} interleaved rounds of ${SECONDS} s`);
  console.log(TASKSET ? 'pinned: servers on core 0, the load generator (its own process) on core 1' : 'NOT pinned: taskset missing or fewer than 2 cores; figures are less comparable');
  console.log(`both servers run with ${SERVE_NODE_FLAGS.join(' ')} (serve gives them to itself; the bare server is started with them)`);
  const run = (server: Server, seconds: number, rate = 0) =>
    load({ port: server.port, caFile: s.caFile, bodyFile, connections: CONNECTIONS, seconds, rate, pid: server.child.pid, ticksPerSecond: TICKS_PER_SECOND });
  for (const server of [bare, ours]) await run(server, 2); // warm-up: JIT and TLS set-up
  const rounds: Record<string, LoadResult[]> = { [bare.name]: [], [ours.name]: [] };
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const perReview = (r: LoadResult) => (r.cpuMs * 1000) / r.requests;
  for (let round = 0; round < ROUNDS; round++) {
    const got: Record<string, LoadResult> = {};
    const loads: string[] = [load1()];
    for (const server of round % 2 === 0 ? [bare, ours] : [ours, bare]) {
      const result = await run(server, SECONDS);
      rounds[server.name]?.push(result);
      got[server.name] = result;
    }
    loads.push(load1());
    const [b, o] = [got[bare.name] as LoadResult, got[ours.name] as LoadResult];
    ratios.push(o.rps / b.rps);
    cpuRatios.push(perReview(b) / perReview(o));
    console.log(
      `round ${round + 1}: bare ${b.rps} req/s, ${perReview(b).toFixed(0)} µs CPU per review; ours ${o.rps} req/s, ${perReview(o).toFixed(0)} µs CPU per review; ` +
        `ratio ${(o.rps / b.rps).toFixed(2)} (throughput), ${(perReview(b) / perReview(o)).toFixed(2)} (CPU per review); ${loads.join(' -> ')}`,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const rows: (string | number)[][] = [['server', 'median req/s', 'rounds req/s', 'median µs CPU/review', 'p99 ms (max load)', 'p50 / p99 ms at 1000/s', 'send lag p99 ms', 'failed', 'peak RSS MB']];
  for (const server of [bare, ours]) {
    const list = rounds[server.name] ?? [];
    const steady = await run(server, SECONDS, 1000);
    const failed = list.reduce((n, r) => n + r.failed, 0) + steady.failed;
    rows.push([server.name, median(list.map((r) => r.rps)), list.map((r) => r.rps).join(' '), median(list.map(perReview)).toFixed(0), median(list.map((r) => r.p99)), `${steady.p50} / ${steady.p99}`, steady.sendLagP99, failed, peakRssMb(server.child.pid as number)]);
  }
  console.log(table(rows));
  console.log(`throughput ratio ours/bare, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(2)} (target >= 0.80)`);
  console.log(`CPU per review, bare/ours, per round: ${cpuRatios.map((r) => r.toFixed(2)).join(' ')}; median ${median(cpuRatios).toFixed(2)} (${load1()})`);
  const peak = (server: Server) => peakRssMb(server.child.pid as number);
  console.log(`peak RSS under saturating load: ours ${peak(ours)} MB, bare ${peak(bare)} MB, difference ${peak(ours) - peak(bare)} MB (target <= 25)`);
  await stopChild(ours.child);
  await stopChild(bare.child);
  removeTempDir(s.dir);
}

async function memoryBenchmark(): Promise<void> {
  const s = await setup();
  const scenarios = hostileScenarios();
  console.log(`\nMemory benchmark: each scenario against a fresh serve started without NODE_OPTIONS (it gives itself ${SERVE_NODE_FLAGS.join(' ')}); peak RSS is VmHWM; ${load1()}`);
  const rows: (string | number)[][] = [['scenario', 'peak RSS MB', 'well-formed reviews', 'failed', 'machine']];
  let worst = 0;
  let failures = 0;
  const only = new RegExp(process.env['BENCH_ONLY'] ?? '');
  for (const [i, scenario] of scenarios.entries()) {
    if (!only.test(scenario.name)) continue;
    const server = await startOurs(s, `memory-${i}`);
    const result = await scenario.run({ host: '127.0.0.1', port: server.port, ca: s.ca, servername: 'localhost' });
    const peak = peakRssMb(server.child.pid as number);
    worst = Math.max(worst, peak);
    failures += result.failed;
    rows.push([scenario.name, peak, result.sent, result.failed, load1()]);
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
  const webhook = await startWebhook(readFileSync(join(ROOT, 'manifests/base/policy.yaml'), 'utf8'), { LOG_LEVEL: 'info' });
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

/** PROFILE_GROUPS sorts a CPU profile's self time into what a review costs, first match wins: a pattern on `function url`. */
const PROFILE_GROUPS: readonly [string, RegExp][] = [
  ['garbage collection', /^\(garbage collector\)/],
  ['idle', /^\(idle\)|^\(program\)/],
  ['decision (decide, providers, profiles, diff)', /\/dist\/(decision|providers|profiles|core|policy)\/|fast-json-patch/],
  ['review log line', /\/dist\/(admission\/logged|log)\/|sonic-boom|\/pino\//],
  ['metrics', /\/dist\/(admission\/measured|metrics)\/|prom-client/],
  ['decode and encode (AdmissionReview)', /\/dist\/(http\/review|admission\/review)\.js/],
  ['connection tracking and body admission', /\/dist\/http\/(connections|bodies|budget)\.js/],
  ['JSON parse (body)', /^parse |secure-json-parse|^JSONParse/],
  ['Fastify (routing, content type, reply)', /\/fastify\/|find-my-way|avvio|light-my-request|@fastify\//],
  ['TLS (encrypt, decrypt, write)', /_tls_|tls_wrap|TLSWrap|\(native\) .*Write|^writev|^writeGeneric|^onStreamRead|stream_base/],
  ['Node HTTP (parser, response)', /_http_|internal\/http/],
];

/** CpuProfile is the part of a V8 .cpuprofile read here. */
interface CpuProfile {
  readonly nodes: readonly { id: number; callFrame: { functionName: string; url: string } }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** profileServer runs one server under closed-loop load with --cpu-prof, and returns its busy time by group and by function, in µs per review. */
async function profileServer(s: Setup, bodyFile: string, name: string, args: readonly string[]): Promise<{ groups: Map<string, number>; functions: Map<string, number>; result: LoadResult }> {
  const dir = join(s.dir, `profile-${name.replace(/\W/g, '')}`);
  const server = await startServer(name, ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...args], join(s.dir, `${name.replace(/\W/g, '')}-profile.log`), { ...process.env, NODE_OPTIONS: undefined, LOG_LEVEL: 'info' });
  const run = (seconds: number) => load({ port: server.port, caFile: s.caFile, bodyFile, connections: CONNECTIONS, seconds, rate: 0, pid: server.child.pid, ticksPerSecond: TICKS_PER_SECOND });
  await run(2);
  const result = await run(SECONDS);
  await stopChild(server.child);
  // serve's first image, the one that re-executes itself with its flags, writes a profile of its start too: the last one is the server's.
  const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort((a, b) => statSync(join(dir, a)).mtimeMs - statSync(join(dir, b)).mtimeMs).at(-1);
  if (file === undefined) throw new Error(`no CPU profile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const groupUs = new Map<string, number>();
  const functionUs = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id);
    const label = `${frame?.functionName || '(anonymous)'} ${frame?.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/') ?? ''}`;
    if (/^\((idle|program)\)/.test(label)) return;
    const us = profile.timeDeltas[i] ?? 0;
    const group = PROFILE_GROUPS.find(([, re]) => re.test(label) || re.test(`${frame?.functionName ?? ''} ${frame?.url ?? ''}`))?.[0] ?? 'other (Node internals, event loop, the rest)';
    groupUs.set(group, (groupUs.get(group) ?? 0) + us);
    functionUs.set(label, (functionUs.get(label) ?? 0) + us);
  });
  // The profile also covers start-up and the warm-up: shares of its busy time, scaled to the CPU per review of the measured round.
  const busy = [...groupUs.values()].reduce((a, b) => a + b, 0);
  const cpuPerReview = (result.cpuMs * 1000) / result.requests;
  const scale = (m: Map<string, number>) => new Map([...m].map(([k, us]) => [k, (us / busy) * cpuPerReview]));
  return { groups: scale(groupUs), functions: scale(functionUs), result };
}

/**
 * profileBenchmark runs serve and the bare server, one after the other, under the server
 * benchmark's closed-loop load with --cpu-prof (serve keeps it through its re-exec), and prints
 * where each spends its CPU per review, side by side: the profile of what separates them.
 */
async function profileBenchmark(): Promise<void> {
  const s = await setup();
  const { bodyFile } = benchReview(s);
  const responseFile = join(s.dir, 'response.json');
  writeFileSync(responseFile, encodeAnswer(review(decodeReview(JSON.parse(readFileSync(bodyFile, 'utf8'))), parsePolicy(readFileSync(POLICY, 'utf8')))));
  const ours = await profileServer(s, bodyFile, 'lb-probe-webhook', [CLI, 'serve', '--policy', POLICY, '--tls-cert', join(s.certs, 'tls.crt'), '--tls-key', join(s.certs, 'tls.key'), '--port', '0', '--health-port', '0', '--address', '127.0.0.1', '--shutdown-delay', '0s']);
  const bare = await profileServer(s, bodyFile, 'bare Fastify', [...SERVE_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'bench/bare-server.ts'), join(s.certs, 'tls.crt'), join(s.certs, 'tls.key'), responseFile]);
  const perReview = (r: LoadResult) => ((r.cpuMs * 1000) / r.requests).toFixed(0);
  console.log(`\nProfile under closed-loop load, ${SECONDS} s each (${load1()}): ours ${ours.result.rps} req/s, ${perReview(ours.result)} µs CPU per review; bare ${bare.result.rps} req/s, ${perReview(bare.result)} µs CPU per review`);
  console.log('µs of CPU per review, by where the profile puts it (its shares of busy time, scaled to the measured CPU per review):');
  const names = [...new Set([...ours.groups.keys(), ...bare.groups.keys()])].sort((a, b) => (ours.groups.get(b) ?? 0) - (ours.groups.get(a) ?? 0));
  console.log(table([['where', 'ours', 'bare', 'difference'], ...names.map((g) => [g, (ours.groups.get(g) ?? 0).toFixed(1), (bare.groups.get(g) ?? 0).toFixed(1), ((ours.groups.get(g) ?? 0) - (bare.groups.get(g) ?? 0)).toFixed(1)])]));
  console.log('\nours, top functions by self time (µs per review):');
  console.log(table([...ours.functions].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([f, us]) => [f.slice(0, 100), us.toFixed(1)])));
  removeTempDir(s.dir);
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
  const webhook = await startWebhook(policyText, { LOG_LEVEL: 'info' });
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
  if (!['all', 'server', 'memory', 'e2e', 'profile', 'create'].includes(mode)) {
    console.error(`bench: unknown mode ${JSON.stringify(mode)}; one of server, memory, e2e, profile, create (none: server, e2e, then create)`);
    process.exit(2);
  }
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  if (mode === 'all' || mode === 'server') await serverBenchmark();
  if (mode === 'memory') await memoryBenchmark();
  if (mode === 'profile') await profileBenchmark();
  if (mode === 'all' || mode === 'e2e') await endToEndBenchmark();
  if (mode === 'all' || mode === 'create') await createLatencyBenchmark();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
