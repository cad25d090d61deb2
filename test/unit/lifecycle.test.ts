/**
 * The serve process's life under load: certificate rotation and policy reload without restart,
 * and graceful shutdown. Real processes, real TLS, loopback only, bounded loops.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../support/fixtures.js';
import { review, decodePatch } from '../support/reviews.js';
import { openTls } from '../support/https.js';
import { runCli, startServeOnLoopback, stopProcess, type startServe } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-life-'));
const started: Awaited<ReturnType<typeof startServe>>[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await stopProcess(s.child);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const body = JSON.stringify(review(fixture('istio-gateway-service.yaml')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function certs(dir: string, ca?: string): Promise<void> {
  const extra = ca === undefined ? [] : ['--ca-cert', join(ca, 'ca.crt'), '--ca-key', join(ca, 'ca.key')];
  expect((await runCli(['certs', '--out', dir, '--dns', 'localhost', '--ip', '127.0.0.1', ...extra])).code).toBe(0);
}

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
  body?: string;
}

function post(url: string, ca: string, agent: Agent | false, payload = body): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', ca, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate?.().fingerprint256;
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, body: data }));
    });
    let secured = false;
    req.on('socket', (socket) => {
      if (req.reusedSocket) secured = true;
      else socket.once('secureConnect', () => (secured = true));
    });
    req.on('error', (err) => resolve({ status: 0, error: err.message, sent: secured }));
    req.end(payload);
  });
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

/** load sends reviews from `workers` keep-alive loops until stop() or `max` requests, and records each outcome with its start time. */
function load(url: string, ca: string, workers: number, max: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  const outcomes: (Outcome & { at: number })[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running && outcomes.length < max) {
      const at = Date.now();
      outcomes.push({ ...(await post(url, ca, agent)), at });
    }
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

async function waitForLog(server: Awaited<ReturnType<typeof startServe>>, msg: string, count = 1): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (server.logs.filter((l) => l.msg === msg).length >= count) return;
    await sleep(50);
  }
  throw new Error(`no "${msg}" log line; logs: ${JSON.stringify(server.logs.map((l) => l.msg))}`);
}

describe('certificate rotation', () => {
  it('swaps the certificate in place under load: zero failed requests, new connections get the new certificate, a mismatched pair is refused.', async () => {
    const [a, b, c, mount] = ['a', 'b', 'c', 'mount'].map((n) => join(tmp, `rotate-${n}`)) as [string, string, string, string];
    await certs(a);
    await certs(b, a); // the same CA: the caBundle stays valid
    await certs(c);
    const files = (dir: string) => ({ 'tls.crt': readFileSync(join(dir, 'tls.crt'), 'utf8'), 'tls.key': readFileSync(join(dir, 'tls.key'), 'utf8') });
    mountLike(mount, files(a), '..gen1');
    writeFileSync(join(tmp, 'azure.yaml'), 'provider: azure\n');
    const server = await startServeOnLoopback({ policy: join(tmp, 'azure.yaml'), cert: join(mount, 'tls.crt'), key: join(mount, 'tls.key') }, '--reload-interval', '100ms');
    started.push(server);
    const url = `https://localhost:${server.port}/mutate`;
    const ca = readFileSync(join(a, 'ca.crt'), 'utf8');
    const fingerprintOf = (dir: string) => new X509Certificate(readFileSync(join(dir, 'tls.crt'))).fingerprint256;

    expect((await post(url, ca, false)).fingerprint).toBe(fingerprintOf(a));
    const running = load(url, ca, 4, 20_000);
    await sleep(500);
    mountLike(mount, files(b), '..gen2');
    await waitForLog(server, 'certificate reloaded');
    await sleep(300);
    await running.stop();

    expect(running.outcomes.length).toBeGreaterThan(50);
    expect(running.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect((await post(url, ca, false)).fingerprint).toBe(fingerprintOf(b));

    // A certificate whose key belongs to another: refused, logged, counted; the new certificate stays.
    mountLike(mount, { 'tls.crt': files(c)['tls.crt'], 'tls.key': files(b)['tls.key'] }, '..gen3');
    await waitForLog(server, 'certificate refused; the certificate in use keeps serving');
    expect((await post(url, ca, false)).fingerprint).toBe(fingerprintOf(b));
    const metrics = await get(server.healthPort, '/metrics');
    expect(metrics.body).toMatch(/^lb_probe_webhook_certificate_reloads_total\{result="success"\} 1$/m);
    expect(metrics.body).toMatch(/^lb_probe_webhook_certificate_reloads_total\{result="failure"\} 1$/m);
  });
});

describe('policy reload', () => {
  it('applies a valid new policy to the next review, refuses an invalid one with every error logged, and keeps the last good one.', async () => {
    const dir = join(tmp, 'reload');
    await certs(dir);
    const policyFile = join(dir, 'policy.yaml');
    const write = (text: string) => {
      writeFileSync(`${policyFile}.tmp`, text);
      renameSync(`${policyFile}.tmp`, policyFile);
    };
    write('provider: azure\n');
    const server = await startServeOnLoopback({ policy: policyFile, cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') }, '--reload-interval', '100ms');
    started.push(server);
    const url = `https://localhost:${server.port}/mutate`;
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const probeValues = async () => {
      const res = await post(url, ca, false);
      const patch = decodePatch(JSON.parse(res.body ?? '{}')) as { value: Record<string, string> }[];
      return patch[0]?.value['service.beta.kubernetes.io/port_80_health-probe_protocol'];
    };

    expect(await probeValues()).toBe('tcp');
    write('provider: azure\nprobe: readiness\n');
    await waitForLog(server, 'policy reloaded');
    expect(await probeValues()).toBe('http');

    write('provider: azure\nprobe: maybe\nbogus: 1\n');
    await waitForLog(server, 'policy refused; the last good policy keeps serving');
    const refused = server.logs.find((l) => l.msg === 'policy refused; the last good policy keeps serving');
    expect(refused?.['problems']).toEqual([
      `${policyFile}:2: probe: must be one of "tcp", "readiness", "kube-proxy", "none", got "maybe"`,
      `${policyFile}:3: bogus: unknown key; allowed: provider, mode, probe, readiness, overwrite, kinds, gateway, profiles, azure, aws, custom, rules`,
    ]);
    expect(await probeValues()).toBe('http');
    const metrics = await get(server.healthPort, '/metrics');
    expect(metrics.body).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 1$/m);
    expect(metrics.body).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="success"\} 1$/m);
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM fails /readyz at once, answers every review sent under keep-alive load with no reset connection, finishes one in flight, and exits within the delay plus 2 s.', async () => {
    const dir = join(tmp, 'shutdown');
    await certs(dir);
    writeFileSync(join(dir, 'policy.yaml'), 'provider: azure\n');
    const server = await startServeOnLoopback(
      { policy: join(dir, 'policy.yaml'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') },
      '--shutdown-delay', '1s', '--shutdown-grace', '20s',
    );
    const url = `https://localhost:${server.port}/mutate`;
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    expect((await get(server.healthPort, '/readyz')).status).toBe(200);

    // A review whose body is still arriving when SIGTERM comes: accepted, so it must be answered.
    const slow = await openTls(server.port, ca);
    let slowAnswer = '';
    slow.on('data', (d: Buffer) => (slowAnswer += d.toString()));
    const slowClosed = new Promise((r) => slow.once('close', r));
    slow.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
    slow.write(body.slice(0, 100));

    // Keep-alive load that, like the API server, opens a new connection when one is closed, and
    // goes on through the moment the server stops accepting.
    const running = load(url, ca, 4, 20_000);
    await sleep(300);
    const sigterm = Date.now();
    const exited = new Promise<number | null>((r) => server.child.once('exit', (code) => r(code)));
    server.child.kill('SIGTERM');
    await sleep(100);
    expect((await get(server.healthPort, '/readyz')).status).toBe(503);
    // Past the shutdown delay: the server is closing now and must still finish this review.
    await sleep(1200);
    expect(server.child.exitCode).toBeNull();
    slow.write(body.slice(100));
    const code = await exited;
    const elapsed = Date.now() - sigterm;
    await running.stop();
    await slowClosed;

    expect(code).toBe(0);
    // The delay (1 s) plus 2 s, plus 1 s for a loaded machine; it used to be the whole grace period.
    expect(elapsed).toBeLessThan(1000 + 2000 + 1000);
    expect(slowAnswer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(slowAnswer).toMatch(/\r\nConnection: close\r\n/i);
    const answered = running.outcomes.filter((o) => o.status !== 0);
    expect(answered.length).toBeGreaterThan(50);
    expect(answered.filter((o) => o.status !== 200)).toEqual([]);
    // Once the server no longer listens a new connection is refused, and the client goes elsewhere.
    // A connection still in the kernel's accept queue when the listener closes is reset before its
    // TLS handshake finished: no request was sent on it, so for a retrying client it is a refusal
    // too. A request sent on a connection that the server then resets is a lost review.
    expect(running.outcomes.filter((o) => o.status === 0 && o.sent !== false)).toEqual([]);
    expect(running.outcomes.filter((o) => o.status === 0 && o.at < sigterm + 900)).toEqual([]);
    expect(server.logs.map((l) => l.msg)).toContain('stopped');
  });
});

describe('logging to a stdout nobody reads', () => {
  it('keeps answering every review while stdout is not read, holds at most 1 MiB of lines and counts the lines it drops.', async () => {
    const dir = join(tmp, 'stalled-stdout');
    mkdirSync(dir, { recursive: true });
    await certs(dir);
    writeFileSync(join(dir, 'policy.yaml'), 'provider: azure\n');
    const server = await startServeOnLoopback({ policy: join(dir, 'policy.yaml'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') });
    started.push(server);
    // From here on nobody reads the child's stdout: the pipe fills and its writes stop.
    server.child.stdout?.removeAllListeners('data');
    server.child.stdout?.pause();
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    // 9,000 review lines of about 300 bytes: 2.7 MB, over the pipe's 64 KiB and the 1 MiB bound.
    const run = load(`https://127.0.0.1:${server.port}/mutate`, ca, 8, 9000);
    while (run.outcomes.length < 9000) await sleep(100);
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
