import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { generateCertificates } from '../../src/certs/generate.js';
import { WebhookMetrics } from '../../src/metrics/metrics.js';
import { CertificateSource, PolicySource } from '../../src/runtime/reload.js';
import { watchFiles } from '../../src/runtime/watch.js';
import { ensureMemoryFlags, missingNodeFlags } from '../../src/runtime/memory.js';
import { ManualClock } from '../support/clock.js';
import type { TlsMaterial } from '../../src/tls/material.js';
import { policy } from '../support/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'lbp-runtime-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { lines, logger };
}

describe('watchFiles, on the manual clock', () => {
  it('reports nothing for the contents it started with, each change once with every file’s content, and a read error once per episode.', async () => {
    const a = join(dir, 'a.txt');
    const b = join(dir, 'b.txt');
    writeFileSync(a, 'a1');
    writeFileSync(b, 'b1');
    const clock = new ManualClock();
    const seen: (readonly string[])[] = [];
    const errors: string[] = [];
    const watch = await watchFiles({ paths: [a, b], intervalMs: 100, clock, onChange: (c) => void seen.push(c), onError: (e) => errors.push((e as NodeJS.ErrnoException).code ?? String(e)) });
    // Each advance runs the polls that fall due and waits for their reads: what they report is all there is.
    await clock.advance(300);
    expect(seen).toEqual([]);
    writeFileSync(b, 'b2');
    await clock.advance(99);
    expect(seen).toEqual([]);
    await clock.advance(1);
    expect(seen).toEqual([['a1', 'b2']]);
    await clock.advance(300);
    expect(seen).toEqual([['a1', 'b2']]);
    rmSync(a);
    await clock.advance(500);
    expect(errors).toEqual(['ENOENT']);
    writeFileSync(a, 'a2');
    await clock.advance(100);
    expect(seen).toEqual([['a1', 'b2'], ['a2', 'b2']]);
    rmSync(a);
    await clock.advance(300);
    expect(errors).toEqual(['ENOENT', 'ENOENT']);
    watch.stop();
    writeFileSync(a, 'a3');
    await clock.advance(1000);
    expect(seen).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });
});

describe('the memory flags of serve', () => {
  const flags = ['--max-old-space-size=96', '--max-semi-space-size=2', '--v8-pool-size=1', '--expose-gc'];

  it.each([
    ['no flags', [], flags],
    ['all four', flags, []],
    ['all four written with underscores', ['--max_old_space_size=96', '--max_semi_space_size=2', '--v8_pool_size=1', '--expose_gc'], []],
    ['a larger heap after ours', [...flags, '--max-old-space-size=4096'], ['--max-old-space-size=96']],
    ['a larger heap before ours', ['--max-old-space-size=4096', ...flags], []],
    ['other flags only', ['--import', 'tsx', '--enable-source-maps'], flags],
  ])('with %s, missingNodeFlags lists what is missing or overridden.', (_name, execArgv, missing) => {
    expect(missingNodeFlags(execArgv)).toEqual(missing);
  });

  it('replaces the process with the same command, its own flags kept and the four added last, when one is missing.', () => {
    const calls: unknown[][] = [];
    const env = { PATH: '/bin', NODE_OPTIONS: '--max-old-space-size=4096' };
    const proc = {
      execPath: '/nodejs/bin/node',
      execArgv: ['--enable-source-maps'],
      argv: ['/nodejs/bin/node', '/app/dist/cli/main.js', 'serve', '--policy', 'p.yaml'],
      env,
      execve: (...args: unknown[]) => {
        calls.push(args);
        throw new Error('replaced');
      },
    };
    expect(() => ensureMemoryFlags(proc as never, 4096 * 2 ** 20, false)).toThrow('replaced');
    expect(calls).toEqual([['/nodejs/bin/node', ['/nodejs/bin/node', '--enable-source-maps', ...flags, '/app/dist/cli/main.js', 'serve', '--policy', 'p.yaml'], env]]);
  });

  it('returns when the flags are there and V8 reports their heap limit, and refuses when V8 does not.', () => {
    const proc = {
      execPath: 'node',
      execArgv: flags,
      argv: ['node', 'main.js', 'serve'],
      env: {},
      execve: () => {
        throw new Error('must not re-exec');
      },
    };
    expect(() => ensureMemoryFlags(proc as never, 102 * 2 ** 20, true)).not.toThrow();
    expect(() => ensureMemoryFlags(proc as never, 4102 * 2 ** 20, true)).toThrow(/V8 reports a heap limit of 4102 MiB; the memory budget cannot hold/);
    expect(() => ensureMemoryFlags(proc as never, 102 * 2 ** 20, false)).toThrow(/and no gc/);
  });

  it('refuses with the command to run when this Node cannot replace the process.', () => {
    const proc = { execPath: 'node', execArgv: [], argv: ['node', 'main.js', 'serve'], env: {} };
    expect(() => ensureMemoryFlags(proc, 4096 * 2 ** 20, false)).toThrow(`start it as: node ${flags.join(' ')} main.js serve`);
  });
});

describe('PolicySource', () => {
  it('takes a valid policy, refuses an invalid one with every problem logged, and counts both.', async () => {
    const { lines, logger } = capture();
    const metrics = new WebhookMetrics({ processMetrics: false });
    const source = new PolicySource(policy({ provider: 'azure' }), 'policy.yaml', logger, metrics);
    expect(source.update('provider: aws\nprobe: readiness\n')).toBe(true);
    expect(source.current()).toMatchObject({ provider: 'aws', probe: 'readiness' });
    expect(source.update('provider: nope\nmode: x\n')).toBe(false);
    expect(source.current()).toMatchObject({ provider: 'aws' });
    expect(lines.find((l) => l['level'] === 50)).toMatchObject({
      code: 'LBP_POLICY_INVALID',
      problems: [expect.stringMatching(/^policy.yaml:1: provider: unknown provider "nope"/), 'policy.yaml:2: mode: must be one of "enforce", "warn", got "x"'],
    });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="success"\} 1$/m);
    expect(text).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 1$/m);
  });
});

describe('unreadable files', () => {
  it('a policy or certificate file that cannot be read is logged and counted as a failed reload.', async () => {
    const { lines, logger } = capture();
    const metrics = new WebhookMetrics({ processMetrics: false });
    const policySource = new PolicySource(policy({ provider: 'azure' }), 'policy.yaml', logger, metrics);
    const certificateSource = new CertificateSource('tls.crt with key tls.key', () => undefined, logger, metrics);
    const missing = Object.assign(new Error("ENOENT: no such file or directory, open 'policy.yaml'"), { code: 'ENOENT' });
    policySource.unreadable(missing);
    certificateSource.unreadable(missing);
    expect(policySource.current()).toMatchObject({ provider: 'azure' });
    expect(lines.map((l) => [l['level'], l['msg'], l['err']])).toEqual([
      [50, 'cannot read the policy file; the last good policy keeps serving', "ENOENT: no such file or directory, open 'policy.yaml'"],
      [50, 'cannot read the certificate or key; the certificate in use keeps serving', "ENOENT: no such file or directory, open 'policy.yaml'"],
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 1$/m);
    expect(text).toMatch(/^lb_probe_webhook_certificate_reloads_total\{result="failure"\} 1$/m);
  });
});

describe('CertificateSource', () => {
  it('applies a pair that belongs together and refuses a mismatched or half-written one.', async () => {
    const now = new Date();
    const one = generateCertificates({ dns: ['localhost'], ips: [], days: 1, caDays: 2, now });
    const two = generateCertificates({ dns: ['localhost'], ips: [], days: 1, caDays: 2, now });
    const { lines, logger } = capture();
    const metrics = new WebhookMetrics({ processMetrics: false });
    const applied: TlsMaterial[] = [];
    const source = new CertificateSource('tls.crt with key tls.key', (m) => applied.push(m), logger, metrics);
    expect(source.update(one.tlsCert, two.tlsKey)).toBe(false);
    expect(source.update(one.tlsCert.slice(0, 200), one.tlsKey)).toBe(false);
    expect(applied).toEqual([]);
    expect(source.update(two.tlsCert, two.tlsKey)).toBe(true);
    expect(applied.map((m) => m.cert)).toEqual([two.tlsCert]);
    expect(lines.filter((l) => l['msg'] === 'certificate refused; the certificate in use keeps serving')).toHaveLength(2);
    expect(String(lines[0]?.['err'])).toMatch(/the key does not belong to the certificate/);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_certificate_reloads_total\{result="failure"\} 2$/m);
    expect(text).toMatch(/^lb_probe_webhook_certificate_expiry_timestamp_seconds \d+$/m);
  });
});
