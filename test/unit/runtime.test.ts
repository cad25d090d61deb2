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

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
};

describe('watchFiles', () => {
  it('reports each change once, with every file’s content, and read errors to onError.', async () => {
    const a = join(dir, 'a.txt');
    const b = join(dir, 'b.txt');
    writeFileSync(a, 'a1');
    writeFileSync(b, 'b1');
    const seen: (readonly string[])[] = [];
    const errors: unknown[] = [];
    const watch = await watchFiles({ paths: [a, b], intervalMs: 20, onChange: (c) => void seen.push(c), onError: (e) => errors.push(e) });
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    writeFileSync(b, 'b2');
    await until(() => seen.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([['a1', 'b2']]);
    rmSync(a);
    await until(() => errors.length > 0);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOENT');
    // Reported once per episode, not every interval: again only after a good read in between.
    await new Promise((r) => setTimeout(r, 200));
    expect(errors).toHaveLength(1);
    writeFileSync(a, 'a2');
    await until(() => seen.length > 1);
    expect(seen[1]).toEqual(['a2', 'b2']);
    rmSync(a);
    await until(() => errors.length > 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOENT', 'ENOENT']);
    watch.stop();
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
