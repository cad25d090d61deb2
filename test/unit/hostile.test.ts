/**
 * Hostile input. Generated inputs (fast-check) through the whole Fastify pipeline, and
 * hand-written attacks against a running server over real sockets. Every input gets a clear 4xx
 * or a valid AdmissionReview; the process never crashes; memory stays bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import fastJsonPatch from 'fast-json-patch';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp } from '../../src/http/app.js';
import { decide } from '../../src/decision/decide.js';
import { fixture, policy } from '../support/fixtures.js';
import { review } from '../support/reviews.js';
import { runCli, startServe, stopProcess } from '../support/cli.js';
import { openTls, postJson } from '../support/https.js';

/** RUNS are the generated inputs per property; ran counts those each property actually checked. */
const RUNS = { json: 3000, bytes: 1000, reviewShaped: 3000, objects: 3000, decide: 2000 };
const ran = { json: 0, bytes: 0, reviewShaped: 0, objects: 0, decide: 0 };

const azure = policy({ provider: 'azure', probe: 'readiness', azure: { hideStatusPort: true } });
let app: FastifyInstance;

beforeAll(async () => {
  app = buildWebhookApp({ policy: () => azure, logger: pino({ level: 'silent' }) });
  await app.ready();
});
afterAll(() => app.close());

function isValidAnswer(status: number, text: string, uid?: unknown): boolean {
  const json = JSON.parse(text) as Record<string, any>;
  if (status >= 400 && status < 500) return typeof json['code'] === 'string' && typeof json['message'] === 'string' && json['message'].length > 0;
  if (status !== 200) return false;
  const response = json['response'];
  return (
    json['apiVersion'] === 'admission.k8s.io/v1' &&
    json['kind'] === 'AdmissionReview' &&
    response?.allowed === true &&
    typeof response.uid === 'string' &&
    (uid === undefined || response.uid === uid)
  );
}

async function inject(payload: string | Buffer): Promise<{ status: number; body: string }> {
  const res = await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload });
  return { status: res.statusCode, body: res.body };
}

const ports = fc.array(
  fc.record(
    {
      name: fc.oneof(fc.constantFrom('http', 'https', 'status-port', 'tcp'), fc.string(), fc.anything()),
      port: fc.oneof(fc.integer({ min: -1, max: 70000 }), fc.constant(80), fc.constant(15021), fc.anything()),
      protocol: fc.oneof(fc.constantFrom('TCP', 'UDP', 'SCTP'), fc.anything()),
      appProtocol: fc.oneof(fc.constantFrom('http', 'HTTPS', 'tcp', 'h2c'), fc.anything()),
    },
    { requiredKeys: [] },
  ),
  { maxLength: 6 },
);
const annotations = fc.oneof(
  fc.dictionary(fc.oneof(fc.constantFrom('service.beta.kubernetes.io/port_80_health-probe_protocol', 'lb-probe-webhook/probe'), fc.string()), fc.oneof(fc.string(), fc.anything())),
  fc.anything(),
);
const serviceLike = fc.record(
  {
    apiVersion: fc.oneof(fc.constant('v1'), fc.anything()),
    kind: fc.oneof(fc.constant('Service'), fc.anything()),
    metadata: fc.oneof(fc.record({ name: fc.string(), namespace: fc.string(), annotations, labels: annotations }, { requiredKeys: [] }), fc.anything()),
    spec: fc.oneof(
      fc.record({ type: fc.oneof(fc.constant('LoadBalancer'), fc.anything()), ports, externalTrafficPolicy: fc.constantFrom('Cluster', 'Local') }, { requiredKeys: [] }),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);
const gatewayLike = fc.record(
  {
    apiVersion: fc.constantFrom('gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'),
    kind: fc.constant('Gateway'),
    metadata: fc.record({ name: fc.string(), annotations }, { requiredKeys: [] }),
    spec: fc.record(
      {
        gatewayClassName: fc.oneof(fc.constant('istio'), fc.anything()),
        infrastructure: fc.oneof(fc.record({ annotations }, { requiredKeys: [] }), fc.anything()),
        listeners: fc.array(
          fc.record({ name: fc.string(), port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.anything()), protocol: fc.oneof(fc.constantFrom('HTTP', 'HTTPS', 'TLS'), fc.anything()) }, { requiredKeys: [] }),
          { maxLength: 5 },
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

// Bounded by the run counts above, not by time; a loaded CI machine may need more than the default 5 s.
describe('generated input through the whole server pipeline', { timeout: 120_000 }, () => {
  it('any JSON text gets a clear 4xx or a valid AdmissionReview.', async () => {
    await fc.assert(
      fc.asyncProperty(fc.json(), async (text) => {
        ran.json++;
        const { status, body } = await inject(text);
        expect(isValidAnswer(status, body)).toBe(true);
      }),
      { numRuns: RUNS.json },
    );
  });

  it('any bytes declared as JSON get a clear 4xx or a valid AdmissionReview.', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        ran.bytes++;
        const { status, body } = await inject(Buffer.from(bytes));
        expect(isValidAnswer(status, body)).toBe(true);
      }),
      { numRuns: RUNS.bytes },
    );
  });

  it('an AdmissionReview with wrong types anywhere in its request gets a clear 4xx or a valid answer echoing its uid.', async () => {
    const request = fc.record(
      {
        uid: fc.oneof(fc.uuid(), fc.string(), fc.anything()),
        kind: fc.oneof(fc.record({ group: fc.string(), version: fc.string(), kind: fc.string() }), fc.anything()),
        operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'), fc.anything()),
        namespace: fc.oneof(fc.string(), fc.anything()),
        name: fc.oneof(fc.string(), fc.anything()),
        object: fc.oneof(serviceLike, fc.anything()),
        dryRun: fc.oneof(fc.boolean(), fc.anything()),
      },
      { requiredKeys: [] },
    );
    const envelope = fc.record({
      apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), fc.anything()),
      kind: fc.oneof(fc.constant('AdmissionReview'), fc.anything()),
      request: fc.oneof(request, fc.anything()),
    });
    await fc.assert(
      fc.asyncProperty(envelope, async (body) => {
        ran.reviewShaped++;
        const { status, body: text } = await inject(JSON.stringify(body));
        const uid = (body.request as { uid?: unknown } | null)?.uid;
        expect(isValidAnswer(status, text, status === 200 ? uid : undefined)).toBe(true);
      }),
      { numRuns: RUNS.reviewShaped },
    );
  });

  it('any Service- or Gateway-shaped object in a valid review is answered 200 with a patch that applies to it.', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(serviceLike, gatewayLike), fc.constantFrom('CREATE', 'UPDATE'), async (object, operation) => {
        ran.objects++;
        const body = JSON.stringify(review(object, operation));
        const { status, body: text } = await inject(body);
        if (/"(__proto__|constructor)"/.test(body) && status === 400) {
          // Prototype-poisoning keys are refused before anything reads the body.
          expect(JSON.parse(text)).toMatchObject({ code: 'LBP_BODY_NOT_JSON' });
          return;
        }
        expect(status).toBe(200);
        const patch = (JSON.parse(text) as { response: { patch?: string } }).response.patch;
        if (patch !== undefined) {
          const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[];
          expect(() => fastJsonPatch.applyPatch(structuredClone(object), ops, true)).not.toThrow();
        }
      }),
      { numRuns: RUNS.objects },
    );
  });

  it('decide is idempotent on any Service- or Gateway-shaped object: its own result needs no patch.', () => {
    fc.assert(
      fc.property(fc.oneof(serviceLike, gatewayLike), (object) => {
        ran.decide++;
        const first = decide({ object, operation: 'CREATE', policy: azure });
        if (first.object === undefined) return;
        expect(decide({ object: first.object, operation: 'UPDATE', policy: azure }).patch).toEqual([]);
      }),
      { numRuns: RUNS.decide },
    );
  });

  it('the properties above checked at least 10,000 generated inputs in all, each property as many as it asked for.', () => {
    const total = Object.values(ran).reduce((a, b) => a + b, 0);
    console.log(`hostile input: ${total} generated inputs checked (${JSON.stringify(ran)})`);
    expect(ran).toEqual(RUNS);
    expect(total).toBeGreaterThanOrEqual(10_000);
  });
});

describe('hand-written attacks on a running server', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-hostile-'));
  let server: Awaited<ReturnType<typeof startServe>>;
  // The heap settings the container image runs with, so that the memory bound below is the image's.
  const startHostile = () =>
    startServe(
      ['--policy', join(dir, 'policy.yaml'), '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--port', '0', '--health-port', '0', '--address', '127.0.0.1', '--shutdown-delay', '0s'],
      { NODE_OPTIONS: /^ENV NODE_OPTIONS="([^"]*)"/m.exec(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'))?.[1] ?? '' },
    );
  let ca: string;
  let url: string;

  beforeAll(async () => {
    expect((await runCli(['certs', '--out', dir, '--dns', 'localhost', '--ip', '127.0.0.1'])).code).toBe(0);
    writeFileSync(join(dir, 'policy.yaml'), 'provider: azure\n');
    server = await startHostile();
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    url = `https://localhost:${server.port}/mutate`;
  });
  afterAll(async () => {
    if (server) await stopProcess(server.child);
    rmSync(dir, { recursive: true, force: true });
  });

  const stillServes = async () => {
    const res = await postJson(url, review(fixture('istio-gateway-service.yaml')), ca);
    expect(res.status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  };

  function rssBytes(): Promise<number> {
    return new Promise((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: server.healthPort, path: '/metrics' }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(Number(/^lb_probe_webhook_process_resident_memory_bytes (\d+)/m.exec(text)?.[1])));
      })
        .on('error', reject)
        .end();
    });
  }

  it.each([
    ['a 6 MB string in an annotation', 200, () => {
      const service = fixture('istio-gateway-service.yaml') as Record<string, any>;
      service.metadata.annotations = { big: 'x'.repeat(6 * 1024 * 1024) };
      return JSON.stringify(review(service));
    }],
    ['100,000 ports', 200, () => {
      const service = fixture('istio-gateway-service.yaml') as Record<string, any>;
      service.spec.ports = Array.from({ length: 100_000 }, (_, i) => ({ name: `p${i}`, port: i % 65535 + 1, appProtocol: i % 2 ? 'http' : 'tcp' }));
      return JSON.stringify(review(service));
    }],
    ['100,000 levels of nesting in the object', 400, () => {
      const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
      return JSON.stringify(review(fixture('istio-gateway-service.yaml'))).replace('"selector":{', `"deep":${deep},"selector":{`);
    }],
    ['100,000 levels of nested arrays as the body', 400, () => '['.repeat(100_000) + ']'.repeat(100_000)],
  ] as const)('%s gets %i, and the server keeps serving.', async (_name, status, make) => {
    const res = await postJson(url, make(), ca);
    expect(res.status).toBe(status);
    if (status !== 200) expect(JSON.parse(res.body)).toMatchObject({ code: expect.stringMatching(/^LBP_/) });
    await stillServes();
  });

  it('a body over the 7 MiB limit gets 413 as soon as its Content-Length is read.', async () => {
    // Raw TLS: the answer comes before the body is sent, so no client write races the refusal.
    const socket = await openTls(server.port, ca);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n{"pad":"`);
    for (let i = 0; i < 100 && !answer.includes('\r\n\r\n{'); i++) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"code":"LBP_BODY_TOO_LARGE"');
    await stillServes();
  });

  it('a wrong content type gets 415.', async () => {
    const res = await postJson(url, review(fixture('istio-gateway-service.yaml')), ca, { 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    await stillServes();
  });

  it('a truncated body (Content-Length larger than what is sent, then hang-up) does not disturb the server.', async () => {
    const socket = await openTls(server.port, ca);
    socket.write('POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"apiVersion":');
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await stillServes();
  });

  it('TLS garbage on the webhook port is dropped and the server keeps serving.', async () => {
    for (const garbage of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))]) {
      const socket = netConnect({ host: '127.0.0.1', port: server.port });
      await new Promise((r) => socket.once('connect', r));
      const closed = new Promise((r) => socket.once('close', r));
      socket.on('error', () => undefined);
      socket.write(garbage);
      await closed;
    }
    await stillServes();
  });

  it('every phase is cut off at its documented bound on both ports: no TLS 10 s, slow headers 10 s, slow body 30 s; others are served meanwhile.', { timeout: 60_000 }, async () => {
    /** closedAfter resolves with the seconds from `start` until the server closes the socket (read to the end, whatever it answers). */
    const closedAfter = (socket: { resume(): unknown; once(e: 'close', f: () => void): unknown }, start: number) =>
      new Promise<number>((r) => {
        socket.resume();
        socket.once('close', () => r((Date.now() - start) / 1000));
      });
    const plain = async (port: number) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('connect', r));
      return socket;
    };
    const start = Date.now();
    const noTls = await plain(server.port);
    const slowHeaders = await openTls(server.port, ca);
    slowHeaders.write('POST /mutate HTTP/1.1\r\nHost: localhost\r\n');
    const slowBody = await openTls(server.port, ca);
    slowBody.write('POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"apiVersion":');
    const healthHeaders = await plain(server.healthPort);
    healthHeaders.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    const healthBody = await plain(server.healthPort);
    healthBody.write('POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{');
    const closed = Promise.all([noTls, slowHeaders, slowBody, healthHeaders, healthBody].map((s) => closedAfter(s, start)));
    await stillServes();
    const [tls, headers, body, health, healthSlowBody] = await closed;
    // Node checks the header deadline every second, so a connection closes between 10 and 11 s
    // after it opened; half a second more is slack for a loaded machine (11.007 s was seen).
    for (const seconds of [tls, headers, health]) {
      expect(seconds).toBeGreaterThanOrEqual(9.5);
      expect(seconds).toBeLessThan(11.5);
    }
    for (const seconds of [body, healthSlowBody]) {
      expect(seconds).toBeGreaterThanOrEqual(29.5);
      expect(seconds).toBeLessThan(32.5);
    }
    await stillServes();
  });

  it('peak memory of a fresh server stays under the documented 160 MB during bursts of large requests, four at a time.', async () => {
    // A fresh server, so that its peak is this burst's and not that of the attacks above.
    await stopProcess(server.child);
    server = await startHostile();
    url = `https://localhost:${server.port}/mutate`;
    const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]) * 1024;
    const before = await rssBytes();
    const huge = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x', pad: 'y'.repeat(6 * 1024 * 1024) } });
    for (let i = 0; i < 10; i++) {
      const statuses = await Promise.all(Array.from({ length: 4 }, () => postJson(url, huge, ca).then((r) => r.status)));
      expect(statuses).toEqual([400, 400, 400, 400]);
    }
    const after = await rssBytes();
    const peak = peakRss();
    console.log(`hostile input: RSS ${Math.round(before / 1048576)} MB before, ${Math.round(after / 1048576)} MB after 40 requests of 6 MB, peak ${Math.round(peak / 1048576)} MB`);
    expect(peak).toBeLessThan(160 * 1000 * 1000);
    await stillServes();
  });
});
