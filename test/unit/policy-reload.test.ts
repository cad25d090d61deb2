/**
 * A policy reload goes through the same pipeline as the start (parsePolicy): a 10 MiB policy
 * written while reviews are answered is refused before it is parsed, every review keeps its
 * answer, and the review latency stays flat. Parsed, such a file would hold the thread that
 * answers reviews for many seconds and take far more heap than the image's 96 MB: the process
 * would stall or die, which this test would see as failed or missing answers.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../support/fixtures.js';
import { decodePatch, review } from '../support/reviews.js';
import { runCli, startServe, stopProcess, type LogLine } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-policy-reload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MiB = 1024 * 1024;

interface Answer {
  readonly at: number;
  readonly ms: number;
  readonly status: number;
  readonly probe: string | undefined;
}

function post(url: string, ca: string, agent: Agent, body: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', ca, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => {
        const patch = res.statusCode === 200 ? (decodePatch(JSON.parse(data)) as { value: Record<string, string> }[]) : [];
        resolve({ at: started, ms: performance.now() - started, status: res.statusCode ?? 0, probe: patch[0]?.value['service.beta.kubernetes.io/port_80_health-probe_protocol'] });
      });
    });
    req.on('error', () => resolve({ at: started, ms: performance.now() - started, status: 0, probe: undefined }));
    req.end(body);
  });
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve(data));
    })
      .on('error', reject)
      .end();
  });
}

const percentile = (values: readonly number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))] ?? NaN;
const figures = (answers: readonly Answer[]) => `${answers.length} reviews, p50 ${percentile(answers.map((a) => a.ms), 50).toFixed(1)} ms, p99 ${percentile(answers.map((a) => a.ms), 99).toFixed(1)} ms, max ${Math.max(...answers.map((a) => a.ms)).toFixed(1)} ms`;

describe('policy reload under load', () => {
  it('a 10 MiB policy written under load is refused before it is parsed; every review is answered with the last good policy.', async () => {
    expect((await runCli(['certs', '--out', tmp, '--dns', 'localhost', '--ip', '127.0.0.1'])).code).toBe(0);
    const policyFile = join(tmp, 'policy.yaml');
    writeFileSync(policyFile, 'provider: azure\n');
    const server = await startServe(
      ['--policy', policyFile, '--tls-cert', join(tmp, 'tls.crt'), '--tls-key', join(tmp, 'tls.key'), '--port', '0', '--health-port', '0', '--address', '127.0.0.1', '--shutdown-delay', '0s', '--reload-interval', '100ms'],
      // As the image starts it: no NODE_OPTIONS, serve gives itself its V8 flags.
      {},
    );
    try {
      const url = `https://localhost:${server.port}/mutate`;
      const ca = readFileSync(join(tmp, 'ca.crt'), 'utf8');
      const agent = new Agent({ keepAlive: true, maxSockets: 2 });
      const body = JSON.stringify(review(fixture('istio-gateway-service.yaml')));
      const answers: Answer[] = [];
      let running = true;
      const worker = async () => {
        while (running) answers.push(await post(url, ca, agent, body));
      };
      const workers = [worker(), worker()];
      const waitUntil = async (done: () => boolean, what: string) => {
        // Generous: a stalled or dead server fails here with what it did not do, not with the test's timeout.
        for (let i = 0; i < 1200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
        if (!done()) throw new Error(`gave up waiting for ${what}`);
      };
      // Some load before the write, and the write itself: a policy of 10 MiB of rules, atomically renamed into place as a ConfigMap update is.
      await waitUntil(() => answers.length >= 200, '200 reviews before the write');
      const written = performance.now();
      let huge = 'provider: azure\nrules:\n';
      for (let i = 0; huge.length < 10 * MiB; i++) huge += `  - match: { namespaces: [team-${i}], labels: { app: a${i} } }\n    probe: tcp\n`;
      writeFileSync(`${policyFile}.tmp`, huge);
      renameSync(`${policyFile}.tmp`, policyFile);
      const refused = (l: LogLine) => l.msg === 'policy refused; the last good policy keeps serving';
      await waitUntil(() => server.logs.some(refused), 'the refusal in the log');
      // As many reviews again after the refusal.
      const afterRefusal = answers.length;
      await waitUntil(() => answers.length >= afterRefusal + 200, '200 reviews after the refusal');
      running = false;
      await Promise.all(workers);
      agent.destroy();

      expect(server.logs.find(refused)?.['problems']).toEqual([`${policyFile}: larger than 65536 bytes, the most a policy may be; not a policy file`]);
      expect(server.logs.some((l) => l.msg === 'policy reloaded')).toBe(false);
      expect(answers.filter((a) => a.status !== 200 || a.probe !== 'tcp')).toEqual([]);
      expect(server.child.exitCode).toBeNull();
      const text = await metrics(server.healthPort);
      expect(text).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 1$/m);
      // The figures, for the reader: flat means the same before and while the file is read and refused.
      // The first 100 answers include the connections' handshakes and the warm-up: left out.
      console.log(`policy reload: before the 10 MiB write ${figures(answers.slice(100).filter((a) => a.at < written))}; from the write on ${figures(answers.filter((a) => a.at >= written))}`);
    } finally {
      await stopProcess(server.child);
    }
  }, 150_000);
});
