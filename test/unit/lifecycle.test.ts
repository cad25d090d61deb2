/**
 * The serve process's life: the stop sequence (readiness, drain, delay, close, grace), policy
 * reload and certificate rotation, in process on a manual clock with real sockets, so each bound
 * is checked exactly. Two tests run the built `serve` as a process: a real SIGTERM under
 * keep-alive load, and a stdout nobody reads.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../../src/certs/generate.js';
import { createHealthServer, createWebhookServer } from '../../src/http/server.js';
import { createLog } from '../../src/log/log.js';
import { WebhookMetrics } from '../../src/metrics/metrics.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { Lifecycle } from '../../src/runtime/lifecycle.js';
import { CertificateSource, PolicySource } from '../../src/runtime/reload.js';
import { watchFiles } from '../../src/runtime/watch.js';
import { ManualClock } from '../support/clock.js';
import { fixture } from '../support/fixtures.js';
import { nextAnswer, openTcp, openTls, requestText, untilClosed, waitUntil } from '../support/https.js';
import { decodePatch, review } from '../support/reviews.js';
import { runCli, startServeOnLoopback, stopProcess, type startServe } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-life-'));
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const body = () => JSON.stringify(review(fixture('istio-gateway-service.yaml')));
const certs = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 1, caDays: 2, now: new Date() });

/** serving builds the webhook and health servers and the lifecycle on one manual clock, listening on loopback. */
async function serving(options: { delayMs?: number; graceMs?: number; policy?: () => ReturnType<typeof parsePolicy>; clock?: ManualClock; lines?: string[]; metrics?: WebhookMetrics } = {}) {
  const clock = options.clock ?? new ManualClock();
  const lines = options.lines ?? [];
  const log = createLog({ level: 'info', destination: { write: (line: string) => void lines.push(line) }, clock });
  const metrics = options.metrics ?? new WebhookMetrics({ processMetrics: false });
  const lifecycle = new Lifecycle({ clock, logger: log.logger, delayMs: options.delayMs ?? 5000, graceMs: options.graceMs ?? 20_000 });
  const webhook = createWebhookServer({ policy: options.policy ?? (() => parsePolicy('provider: azure\n')), tls: { cert: certs.tlsCert, key: certs.tlsKey }, log, clock, metrics });
  const health = createHealthServer({ logger: log.logger, ready: lifecycle.ready, metrics: metrics.registry, clock });
  const port = await webhook.listen(0, '127.0.0.1');
  const healthPort = await health.listen(0, '127.0.0.1');
  cleanups.push(async () => {
    await webhook.close(0);
    await health.close();
  });
  lifecycle.serving();
  const messages = () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
  return { clock, lines, messages, metrics, lifecycle, webhook, health, port, healthPort };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    })
      .on('error', () => resolve({ status: 0, body: '' }))
      .end();
  });
}

/** connectError resolves with the error code of a TLS connection attempt, or 'connected'. */
function connectError(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.caCert, servername: 'localhost' });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** answered sends one review on a socket and returns the whole answer. */
async function answered(socket: TLSSocket): Promise<{ head: string; body: string }> {
  const answer = nextAnswer(socket);
  socket.write(requestText(body()));
  return answer;
}

describe('the stop sequence, on the manual clock', () => {
  it('fails /readyz at once, answers with Connection: close for the whole delay, stops accepting at the delay and not a millisecond before, and ends.', async () => {
    const { clock, lifecycle, webhook, health, port, healthPort, messages } = await serving({ delayMs: 5000 });
    expect(await get(healthPort, '/readyz')).toEqual({ status: 200, body: '{"status":"ready"}' });
    const keptAlive = await openTls(port, certs.caCert);
    expect((await answered(keptAlive)).head).not.toMatch(/\r\nconnection: close/i);
    let watchStopped = false;
    let stopped = false;
    const stop = lifecycle.stop('SIGTERM', { webhook, health, watches: [{ stop: () => (watchStopped = true) }] }).then(() => (stopped = true));

    expect(await get(healthPort, '/readyz')).toEqual({ status: 503, body: '{"status":"not ready","reason":"stopping"}' });
    expect(watchStopped).toBe(true);
    expect(messages()).toContain('stopping: /readyz fails now; reviews are still answered while endpoints drain');
    const keptAliveClosed = untilClosed(keptAlive);
    expect((await answered(keptAlive)).head).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close/i);
    await keptAliveClosed;

    await clock.advance(4_999);
    const late = await openTls(port, certs.caCert);
    expect((await answered(late)).head).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close/i);
    expect(messages()).not.toContain('stopped accepting connections');
    await clock.advance(1);
    expect(messages()).toContain('stopped accepting connections');
    expect(await connectError(port)).toBe('ECONNREFUSED');
    await stop;
    expect(stopped).toBe(true);
    expect(lifecycle.state).toBe('stopped');
    expect(messages().at(-1)).toBe('stopped');
  });

  it('answers a review still arriving when the webhook stops accepting, with Connection: close, and ends only after it.', async () => {
    const { clock, lifecycle, webhook, health, port } = await serving({ delayMs: 1000 });
    const slow = await openTls(port, certs.caCert);
    const text = requestText(body());
    slow.write(text.slice(0, 300));
    await waitUntil('the slow review to arrive', () => webhook.state.inFlight === 1);
    const stop = lifecycle.stop('SIGTERM', { webhook, health, watches: [] });
    await clock.advance(1000);
    expect(await connectError(port)).toBe('ECONNREFUSED');
    expect([webhook.state.inFlight, webhook.state.open, lifecycle.state]).toEqual([1, 1, 'stopping']);
    const answer = nextAnswer(slow);
    slow.write(text.slice(300));
    expect((await answer).head).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close/i);
    await stop;
    expect(lifecycle.state).toBe('stopped');
  });

  it('closes the connections still open when the grace period ends, not a millisecond before.', async () => {
    const { clock, lifecycle, webhook, health, port, messages } = await serving({ delayMs: 1000, graceMs: 20_000 });
    const stuck = await openTls(port, certs.caCert);
    stuck.write(requestText(body()).slice(0, 300));
    await waitUntil('the stuck review to arrive', () => webhook.state.inFlight === 1);
    const stuckClosed = untilClosed(stuck);
    const stop = lifecycle.stop('SIGTERM', { webhook, health, watches: [] });
    await clock.advance(1000 + 19_999);
    expect([webhook.state.open, lifecycle.state]).toEqual([1, 'stopping']);
    await clock.advance(1);
    expect(messages()).toContain('shutdown grace period over: closing the connections still open');
    await stuckClosed;
    await stop;
    expect(lifecycle.state).toBe('stopped');
  });

  it('when it stops accepting, closes an idle connection at once and one still without a request once it is a second old.', async () => {
    const { clock, lifecycle, webhook, health, port } = await serving({ delayMs: 1000 });
    const idle = await openTls(port, certs.caCert);
    await answered(idle);
    await waitUntil('the answered connection to be idle', () => webhook.state.idle === 1);
    const idleClosed = untilClosed(idle);
    const stop = lifecycle.stop('SIGTERM', { webhook, health, watches: [] });
    await clock.advance(500);
    const fresh = await openTcp(port); // opened at 500 ms: 500 ms old when the webhook stops accepting
    const freshClosed = untilClosed(fresh);
    await waitUntil('the fresh connection to be tracked', () => webhook.state.open === 2);
    await clock.advance(500);
    await idleClosed;
    expect(webhook.state.open).toBe(1);
    await clock.advance(499);
    expect(webhook.state.open).toBe(1);
    await clock.advance(1);
    await freshClosed;
    await stop;
  });
});

describe('policy reload, on the manual clock', () => {
  it('applies a valid new policy to the next review, refuses an invalid one with every error logged, and keeps the last good one.', async () => {
    const dir = join(tmp, 'reload');
    mkdirSync(dir, { recursive: true });
    const policyFile = join(dir, 'policy.yaml');
    const write = (text: string) => {
      writeFileSync(`${policyFile}.tmp`, text);
      renameSync(`${policyFile}.tmp`, policyFile);
    };
    write('provider: azure\n');
    const [clock, lines, metrics] = [new ManualClock(), [] as string[], new WebhookMetrics({ processMetrics: false })];
    const logger = createLog({ level: 'info', destination: { write: (line: string) => void lines.push(line) }, clock }).logger;
    const source = new PolicySource(parsePolicy('provider: azure\n', policyFile), policyFile, logger, metrics);
    const { port, messages } = await serving({ policy: () => source.current(), clock, lines, metrics });
    const watch = await watchFiles({ paths: [policyFile], intervalMs: 100, clock, onChange: ([text]) => void source.update(text ?? ''), onError: (err) => source.unreadable(err) });
    cleanups.push(() => watch.stop());
    const socket = await openTls(port, certs.caCert);
    cleanups.push(() => void socket.destroy());
    const probeValue = async () => {
      const patch = decodePatch(JSON.parse((await answered(socket)).body)) as { value: Record<string, string> }[];
      return patch[0]?.value['service.beta.kubernetes.io/port_80_health-probe_protocol'];
    };

    expect(await probeValue()).toBe('tcp');
    write('provider: azure\nprobe: readiness\n');
    await clock.advance(99);
    expect(await probeValue()).toBe('tcp');
    await clock.advance(1);
    expect(messages()).toContain('policy reloaded');
    expect(await probeValue()).toBe('http');

    write('provider: azure\nprobe: maybe\nbogus: 1\n');
    await clock.advance(100);
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'policy refused; the last good policy keeps serving');
    expect(refused?.['problems']).toEqual([
      `${policyFile}:2: probe: must be one of "tcp", "readiness", "kube-proxy", "none", got "maybe"`,
      `${policyFile}:3: bogus: unknown key; allowed: provider, mode, probe, readiness, overwrite, kinds, gateway, profiles, azure, aws, custom, rules`,
    ]);
    expect(await probeValue()).toBe('http');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 1$/m);
    expect(text).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="success"\} 1$/m);
  });
});

/** mountLike lays files out the way the kubelet mounts a Secret or ConfigMap: names pointing through a `..data` symlink that is swapped atomically. */
function mountLike(dir: string, files: Record<string, string>, generation: string): void {
  mkdirSync(join(dir, generation), { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, generation, name), content);
  symlinkSync(generation, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    try {
      symlinkSync(join('..data', name), join(dir, name));
    } catch {
      /* the name link exists from an earlier generation */
    }
  }
}

interface Outcome {
  status: number;
  error?: string;
  /** sent is false for a failure before the TLS handshake finished: no request bytes left the client. */
  sent?: boolean;
  fingerprint?: string;
  at: number;
}

function post(url: string, ca: string, agent: Agent | false): Promise<Outcome> {
  const at = Date.now();
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', ca, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate?.().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, at }));
    });
    let secured = false;
    req.on('socket', (socket) => {
      if (req.reusedSocket) secured = true;
      else socket.once('secureConnect', () => (secured = true));
    });
    req.on('error', (err) => resolve({ status: 0, error: err.message, sent: secured, at }));
    req.end(body());
  });
}

/** load sends reviews from `workers` keep-alive loops, each opening a new connection when one is closed, until stop() or `max` requests. */
function load(url: string, ca: string, workers: number, max: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running && outcomes.length < max) outcomes.push(await post(url, ca, agent));
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

describe('certificate rotation, on the manual clock', () => {
  it('swaps the certificate in place under load: zero failed requests, new connections get the new certificate, a mismatched pair is refused.', async () => {
    const now = new Date();
    const a = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 1, caDays: 2, now });
    const b = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 2, caDays: 2, now, ca: { certPem: a.caCert, keyPem: a.caKey } });
    const c = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 1, caDays: 2, now });
    const mount = join(tmp, 'rotate');
    mountLike(mount, { 'tls.crt': a.tlsCert, 'tls.key': a.tlsKey }, '..gen1');
    const clock = new ManualClock();
    const lines: string[] = [];
    const log = createLog({ level: 'info', destination: { write: (line: string) => void lines.push(line) }, clock });
    const metrics = new WebhookMetrics({ processMetrics: false });
    const webhook = createWebhookServer({ policy: () => parsePolicy('provider: azure\n'), tls: { cert: a.tlsCert, key: a.tlsKey }, log, clock, metrics });
    const port = await webhook.listen(0, '127.0.0.1');
    cleanups.push(() => webhook.close(0));
    const [certFile, keyFile] = [join(mount, 'tls.crt'), join(mount, 'tls.key')];
    const certificate = new CertificateSource(`${certFile} with key ${keyFile}`, (m) => webhook.rotateCertificate(m), log.logger, metrics);
    const watch = await watchFiles({ paths: [certFile, keyFile], intervalMs: 100, clock, onChange: ([cert, key]) => void certificate.update(cert ?? '', key ?? ''), onError: (err) => certificate.unreadable(err) });
    cleanups.push(() => watch.stop());
    const url = `https://localhost:${port}/mutate`;
    const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
    const messages = () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);

    expect((await post(url, a.caCert, false)).fingerprint).toBe(fingerprintOf(a.tlsCert));
    const running = load(url, a.caCert, 4, 20_000);
    await waitUntil('load to be under way', () => running.outcomes.length >= 20);
    mountLike(mount, { 'tls.crt': b.tlsCert, 'tls.key': b.tlsKey }, '..gen2');
    await clock.advance(100);
    expect(messages()).toContain('certificate reloaded');
    const swappedAt = running.outcomes.length;
    await waitUntil('load to go on past the swap', () => running.outcomes.length >= swappedAt + 50);
    await running.stop();
    expect(running.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect((await post(url, a.caCert, false)).fingerprint).toBe(fingerprintOf(b.tlsCert));

    // A certificate whose key belongs to another: refused, logged, counted; the new certificate stays.
    mountLike(mount, { 'tls.crt': c.tlsCert, 'tls.key': b.tlsKey }, '..gen3');
    await clock.advance(100);
    expect(messages()).toContain('certificate refused; the certificate in use keeps serving');
    expect((await post(url, a.caCert, false)).fingerprint).toBe(fingerprintOf(b.tlsCert));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_certificate_reloads_total\{result="success"\} 1$/m);
    expect(text).toMatch(/^lb_probe_webhook_certificate_reloads_total\{result="failure"\} 1$/m);
  });
});

describe('the serve process', () => {
  const started: Awaited<ReturnType<typeof startServe>>[] = [];
  afterEach(async () => {
    for (const s of started.splice(0)) await stopProcess(s.child);
  });

  async function certsIn(dir: string): Promise<void> {
    expect((await runCli(['certs', '--out', dir, '--dns', 'localhost', '--ip', '127.0.0.1'])).code).toBe(0);
  }

  /** logged waits until serve has written a line with this msg, and returns it. */
  async function logged(server: Awaited<ReturnType<typeof startServe>>, msg: string): Promise<Record<string, unknown>> {
    await waitUntil(`a "${msg}" log line`, () => server.logs.some((l) => l.msg === msg));
    return server.logs.find((l) => l.msg === msg) as Record<string, unknown>;
  }

  // A real process, real signals and real sockets: what the in-process tests above cannot show is
  // that serve wires them (the signal handler, the watches, the shutdown on the system clock).
  // The only wall-clock bound is a generous one on the exit (the delay plus 10 s on a loaded
  // machine): the order of events is checked on serve's own log lines, not on timings.
  it('reloads its policy, and on SIGTERM fails /readyz, answers every review sent under keep-alive load, finishes one in flight, and exits 0.', async () => {
    const dir = join(tmp, 'shutdown');
    await certsIn(dir);
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'provider: azure\n');
    const server = await startServeOnLoopback({ policy: policyFile, cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') }, '--reload-interval', '100ms', '--shutdown-delay', '1s', '--shutdown-grace', '20s');
    started.push(server);
    const url = `https://localhost:${server.port}/mutate`;
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    expect((await get(server.healthPort, '/readyz')).status).toBe(200);
    writeFileSync(`${policyFile}.tmp`, 'provider: azure\nprobe: readiness\n');
    renameSync(`${policyFile}.tmp`, policyFile);
    expect(await logged(server, 'policy reloaded')).toMatchObject({ probe: 'readiness' });

    // A review whose body is still arriving when SIGTERM comes: accepted, so it must be answered.
    const slow = await openTls(server.port, ca);
    const slowText = requestText(body());
    slow.write(slowText.slice(0, 300));
    const slowAnswer = untilClosed(slow);

    // Keep-alive load that, like the API server, opens a new connection when one is closed, and
    // goes on through the moment the server stops accepting.
    const running = load(url, ca, 4, 20_000);
    await waitUntil('load to be under way', () => running.outcomes.length >= 50);
    const exited = new Promise<number | null>((r) => server.child.once('exit', (code) => r(code)));
    const sigterm = Date.now();
    server.child.kill('SIGTERM');
    const stopping = await logged(server, 'stopping: /readyz fails now; reviews are still answered while endpoints drain');
    expect((await get(server.healthPort, '/readyz')).status).toBe(503);
    // Past the shutdown delay the server no longer accepts, and must still finish the slow review:
    // it cannot have exited, since that review's connection is open.
    const stoppedAccepting = await logged(server, 'stopped accepting connections');
    expect(stoppedAccepting['inFlight']).toBeGreaterThanOrEqual(1);
    expect(server.child.exitCode).toBeNull();
    slow.write(slowText.slice(300));
    const code = await exited;
    const elapsed = Date.now() - sigterm;
    await running.stop();

    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(1000 + 10_000);
    expect((await slowAnswer).text).toMatch(/^HTTP\/1\.1 200 OK[^]*\r\nConnection: close\r\n/i);
    const answeredOutcomes = running.outcomes.filter((o) => o.status !== 0);
    expect(answeredOutcomes.length).toBeGreaterThan(50);
    expect(answeredOutcomes.filter((o) => o.status !== 200)).toEqual([]);
    // Once the server no longer listens a new connection is refused, and the client goes elsewhere.
    // A connection still in the kernel's accept queue when the listener closes is reset before its
    // TLS handshake finished: no request was sent on it, so for a retrying client it is a refusal
    // too. A request sent on a connection that the server then resets is a lost review.
    expect(running.outcomes.filter((o) => o.status === 0 && o.sent !== false)).toEqual([]);
    // Between SIGTERM and the moment it stopped accepting (serve's own timestamps), reviews were still answered.
    expect(running.outcomes.filter((o) => o.status === 200 && o.at > (stopping['time'] as number) && o.at < (stoppedAccepting['time'] as number)).length).toBeGreaterThan(0);
    expect(server.logs.map((l) => l.msg)).toContain('stopped');
  });

  it('keeps answering every review while stdout is not read, holds at most 1 MiB of lines and counts the lines it drops.', async () => {
    const dir = join(tmp, 'stalled-stdout');
    await certsIn(dir);
    writeFileSync(join(dir, 'policy.yaml'), 'provider: azure\n');
    const server = await startServeOnLoopback({ policy: join(dir, 'policy.yaml'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') });
    started.push(server);
    // From here on nobody reads the child's stdout: the pipe fills and its writes stop.
    server.child.stdout?.removeAllListeners('data');
    server.child.stdout?.pause();
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    // 9,000 review lines of about 300 bytes: 2.7 MB, over the pipe's 64 KiB and the 1 MiB bound.
    const run = load(`https://127.0.0.1:${server.port}/mutate`, ca, 8, 9000);
    await waitUntil('9,000 reviews', () => run.outcomes.length >= 9000, 110_000);
    await run.stop();
    expect(run.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    const metrics = await get(server.healthPort, '/metrics');
    const dropped = Number(/^lb_probe_webhook_log_lines_dropped_total (\d+)$/m.exec(metrics.body)?.[1]);
    // What was written (the pipe and the 1 MiB buffer, about 3,700 lines) is all that is kept.
    expect(dropped).toBeGreaterThan(4000);
    expect(dropped).toBeLessThan(9000);
    const rss = Number(/^lb_probe_webhook_process_resident_memory_bytes (\d+)$/m.exec(metrics.body)?.[1]);
    expect(rss).toBeLessThan(160 * 1024 * 1024);
  }, 120_000);
});
