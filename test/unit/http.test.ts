import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { generateCertificates } from '../../src/certs/generate.js';
import { ByteBudget } from '../../src/http/budget.js';
import { RequestGate } from '../../src/http/server.js';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp } from '../../src/http/app.js';
import { WebhookMetrics } from '../../src/metrics/metrics.js';
import { buildHealthApp } from '../../src/http/health.js';
import { fixture, policy } from '../support/fixtures.js';
import { decodePatch, review } from '../support/reviews.js';

const lines: Record<string, unknown>[] = [];
const rawLines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      rawLines.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  },
});
const logger = pino({ level: 'debug' }, sink);
const azure = policy({ provider: 'azure' });
/** ISTIO_SERVICE_PATCH is what the Azure TCP probe adds to the fixture of the Service Istio generates: one key per http/https port, in a new annotations map. */
const ISTIO_SERVICE_PATCH = [
  {
    op: 'add',
    path: '/metadata/annotations',
    value: { 'service.beta.kubernetes.io/port_80_health-probe_protocol': 'tcp', 'service.beta.kubernetes.io/port_443_health-probe_protocol': 'tcp' },
  },
];
const metrics = new WebhookMetrics({ processMetrics: false });
let app: FastifyInstance;

beforeAll(async () => {
  app = buildWebhookApp({ policy: () => azure, logger, bodyLimit: 64 * 1024, metrics });
  await app.ready();
});
afterAll(() => app.close());

function post(payload: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return app.inject({ method: 'POST', url: '/mutate', headers, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
}

describe('POST /mutate', () => {
  it('A CREATE of the Istio-generated Service is allowed with the decision’s patch, the uid echoed and warnings saying why.', async () => {
    const body = review(fixture('istio-gateway-service.yaml'));
    const res = await post(body);
    expect(res.statusCode).toBe(200);
    const json = res.json();
    expect(json).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: (body['request'] as { uid: string }).uid, allowed: true, patchType: 'JSONPatch' },
    });
    expect(decodePatch(json)).toEqual(ISTIO_SERVICE_PATCH);
    expect(json.response.warnings).toEqual([
      'lb-probe-webhook: Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)',
      'lb-probe-webhook: Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)',
    ]);
  });

  it('A dryRun request gets exactly the same answer as a real one.', async () => {
    const real = (await post(review(fixture('istio-gateway-service.yaml')))).json();
    const dry = (await post(review(fixture('istio-gateway-service.yaml'), 'CREATE', { dryRun: true }))).json();
    expect({ ...dry.response, uid: 'x' }).toEqual({ ...real.response, uid: 'x' });
  });

  it.each([
    ['a DELETE', review(null, 'DELETE', { oldObject: fixture('istio-gateway-service.yaml') })],
    ['a CONNECT', review(null, 'CONNECT')],
    ['a ClusterIP Service', review(fixture('service-clusterip.yaml'))],
    ['a ConfigMap', review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'd' }, data: {} })],
  ])('%s is allowed without a patch.', async (_name, body) => {
    const res = await post(body);
    expect(res.statusCode).toBe(200);
    expect(res.json().response).toEqual({ uid: (body['request'] as { uid: string }).uid, allowed: true });
  });

  it('Logs exactly one line per review with uid, kind, namespace, name, operation, decision and duration.', async () => {
    lines.length = 0;
    const body = review(fixture('istio-gateway-service.yaml'));
    await post(body);
    const reviewLines = lines.filter((l) => l['msg'] === 'review');
    expect(reviewLines).toHaveLength(1);
    expect(reviewLines[0]).toMatchObject({
      uid: (body['request'] as { uid: string }).uid,
      kind: 'Service',
      namespace: 'istio-ingress',
      name: 'gateway-istio',
      operation: 'CREATE',
      decision: 'patched',
      dryRun: false,
    });
    expect(typeof reviewLines[0]?.['durationMs']).toBe('number');
    expect(Object.keys(reviewLines[0] ?? {}).sort()).toEqual(['changes', 'decision', 'dryRun', 'durationMs', 'hostname', 'kind', 'level', 'msg', 'name', 'namespace', 'operation', 'pid', 'probe', 'profile', 'time', 'uid', 'warnings']);
    expect(reviewLines[0]).toMatchObject({ probe: 'tcp', changes: 2, warnings: 0, level: 30 });
    expect(lines.find((l) => l['msg'] === 'review detail')?.['patch']).toEqual(ISTIO_SERVICE_PATCH);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_reviews_total\{kind="Service",operation="CREATE",decision="patched"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_patches_total\{kind="Service"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_warnings_total\{kind="Service"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_review_duration_seconds_count\{kind="Service"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_requests_in_flight 0$/m);
  });

  it.each(([
    ['an empty body', '', 400, 'LBP_BODY_NOT_JSON', /empty/i],
    ['text that is not JSON', '{"apiVersion":', 400, 'LBP_BODY_NOT_JSON', /not valid JSON/],
    ['a JSON array', [], 400, 'LBP_REVIEW_INVALID', /the body must be a JSON object/],
    ['a JSON string', '"review"', 400, 'LBP_REVIEW_INVALID', /the body must be a JSON object/],
    ['a v1beta1 review', { ...review(fixture('istio-gateway-service.yaml')), apiVersion: 'admission.k8s.io/v1beta1' }, 400, 'LBP_REVIEW_INVALID', /apiVersion must be admission\.k8s\.io\/v1, got "admission\.k8s\.io\/v1beta1"/],
    ['a review of another kind', { ...review(fixture('istio-gateway-service.yaml')), kind: 'TokenReview' }, 400, 'LBP_REVIEW_INVALID', /kind must be AdmissionReview, got "TokenReview"/],
    ['a review without request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 400, 'LBP_REVIEW_INVALID', /request must be an object/],
    ['a request without uid', review(fixture('istio-gateway-service.yaml'), 'CREATE', { uid: undefined }), 400, 'LBP_REVIEW_INVALID', /request\.uid/],
    ['a request with a numeric uid', review(fixture('istio-gateway-service.yaml'), 'CREATE', { uid: 7 }), 400, 'LBP_REVIEW_INVALID', /request\.uid/],
    ['a request with an unknown operation', review(fixture('istio-gateway-service.yaml'), 'PATCH'), 400, 'LBP_REVIEW_INVALID', /request\.operation must be one of CREATE, UPDATE, DELETE, CONNECT/],
    ['a CREATE without object', review(null, 'CREATE'), 400, 'LBP_REVIEW_INVALID', /request\.object must be an object for CREATE/],
    ['a request whose kind is a string', review(fixture('istio-gateway-service.yaml'), 'CREATE', { kind: 'Service' }), 400, 'LBP_REVIEW_INVALID', /request\.kind must be an object/],
    ['a request whose dryRun is a string', review(fixture('istio-gateway-service.yaml'), 'CREATE', { dryRun: 'yes' }), 400, 'LBP_REVIEW_INVALID', /request\.dryRun must be a boolean/],
    ['a request whose namespace is a number', review(fixture('istio-gateway-service.yaml'), 'CREATE', { namespace: 3 }), 400, 'LBP_REVIEW_INVALID', /request\.namespace must be a string/],
    ['a body with __proto__', '{"__proto__":{"x":1}}', 400, 'LBP_BODY_NOT_JSON', /not valid JSON/],
    ['a body over the limit', { pad: 'x'.repeat(70 * 1024) }, 413, 'LBP_BODY_TOO_LARGE', /too large/i],
  ] as [string, unknown, number, string, RegExp][]).map(([name, payload, status, code, message]) => [name, status, code, payload, message] as const))('%s gets a clear %i %s.', async (_name, status, code, payload, message) => {
    const res = await post(payload);
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ code });
    expect(res.json().message).toMatch(message);
  });

  it('A refusal is logged as one JSON line with one "msg" key and the reason under its own key.', async () => {
    rawLines.length = 0;
    await post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    const refused = rawLines.filter((l) => l.includes('"request refused"'));
    expect(refused).toHaveLength(1);
    expect(refused[0]?.match(/"msg":/g)).toHaveLength(1);
    expect(JSON.parse(refused[0] ?? '{}')).toMatchObject({ msg: 'request refused', code: 'LBP_REVIEW_INVALID', reason: 'malformed AdmissionReview: request must be an object' });
  });

  it.each([
    ['gzip', 415],
    ['deflate, br', 415],
    ['identity', 200],
  ])('A body with Content-Encoding %s gets %i.', async (encoding, status) => {
    const res = await post(review(fixture('istio-gateway-service.yaml')), { 'content-type': 'application/json', 'content-encoding': encoding });
    expect(res.statusCode).toBe(status);
    if (status === 415) expect(res.json()).toEqual({ code: 'LBP_UNSUPPORTED_MEDIA_TYPE', message: `Content-Encoding "${encoding}" is not supported; the body must be sent as it is (identity)` });
  });

  it('Refused requests are counted by error code.', async () => {
    await post('not json');
    await app.inject({ method: 'GET', url: '/nowhere' });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_errors_total\{code="LBP_BODY_NOT_JSON"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_errors_total\{code="LBP_NOT_FOUND"\} [1-9]\d*$/m);
  });

  it('A content type other than JSON gets 415.', async () => {
    const res = await post(review(fixture('istio-gateway-service.yaml')), { 'content-type': 'application/yaml' });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ code: 'LBP_UNSUPPORTED_MEDIA_TYPE' });
  });

  it('An unknown path gets 404 naming the served route.', async () => {
    const res = await app.inject({ method: 'GET', url: '/mutate' });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toMatch(/POST \/mutate/);
  });

  it('After bad requests the server still answers reviews.', async () => {
    await post('garbage');
    const res = await post(review(fixture('istio-gateway-service.yaml')));
    expect(res.statusCode).toBe(200);
  });

  it('The policy is read per review, so a new policy applies to the next review.', async () => {
    let current = azure;
    const swapping = buildWebhookApp({ policy: () => current, logger });
    const first = await swapping.inject({ method: 'POST', url: '/mutate', payload: review(fixture('istio-gateway-service.yaml')) });
    current = policy({ provider: 'azure', probe: 'none' });
    const second = await swapping.inject({ method: 'POST', url: '/mutate', payload: review(fixture('istio-gateway-service.yaml')) });
    expect(first.json().response.patch).toBeDefined();
    expect(second.json().response.patch).toBeUndefined();
    await swapping.close();
  });

  it('Long and many warnings are bounded for kubectl.', async () => {
    const object = fixture('istio-gateway-service.yaml');
    const spec = object['spec'] as { ports: unknown[] };
    spec.ports = Array.from({ length: 30 }, (_, i) => ({ name: `p${i}`, port: 8000 + i, appProtocol: 'http' }));
    const res = await post(review(object));
    const warnings = res.json().response.warnings as string[];
    expect(warnings).toEqual([
      ...Array.from({ length: 19 }, (_, i) => `lb-probe-webhook: Azure probes port ${8000 + i} (p${i}) over TCP instead of GET / (appProtocol http)`),
      'lb-probe-webhook: 11 more warnings in the webhook log',
    ]);
  });

  it('A Service with a port the API server would refuse (99999) is allowed untouched, with a warning naming the field.', async () => {
    const object = fixture('istio-gateway-service.yaml');
    ((object['spec'] as { ports: { port: unknown }[] }).ports[1] as { port: unknown }).port = 99999;
    const res = await post(review(object));
    expect(res.statusCode).toBe(200);
    expect(res.json().response).toEqual({
      uid: expect.any(String),
      allowed: true,
      warnings: ['lb-probe-webhook: left unchanged: spec.ports[1].port: must be a port number from 1 to 65535, got 99999 (the API server refuses this Service)'],
    });
  });
});

describe('ByteBudget', () => {
  it('lends up to its capacity, makes the rest wait first come first served, and lends again as bytes are given back.', () => {
    const budget = new ByteBudget(10);
    const granted: string[] = [];
    const releases: Record<string, () => void> = {};
    const take = (name: string, bytes: number) => budget.acquire(bytes, (release) => {
      granted.push(name);
      releases[name] = release;
    });
    take('a', 6);
    take('b', 6);
    take('c', 1);
    const cancelD = take('d', 3);
    expect(granted).toEqual(['a']);
    expect([budget.inUse, budget.queued]).toEqual([6, 3]);
    cancelD();
    releases['a']?.();
    releases['a']?.(); // a second release gives nothing back twice
    expect(granted).toEqual(['a', 'b', 'c']);
    expect([budget.inUse, budget.queued]).toEqual([7, 0]);
    take('huge', 50); // larger than the budget: lent the whole budget once it is free
    expect(granted).toEqual(['a', 'b', 'c']);
    releases['b']?.();
    releases['c']?.();
    expect(granted).toEqual(['a', 'b', 'c', 'huge']);
    expect(budget.inUse).toBe(10);
  });
});

describe('the webhook server behind its gate, over real TLS', () => {
  const certs = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 1, caDays: 2, now: new Date() });
  const started: ReturnType<typeof buildWebhookApp>[] = [];
  afterAll(async () => {
    for (const a of started) await a.close();
  });

  async function serve(gate: RequestGate, served: WebhookMetrics) {
    const tlsApp = buildWebhookApp({ policy: () => azure, logger, metrics: served, tls: { cert: certs.tlsCert, key: certs.tlsKey }, gate });
    started.push(tlsApp);
    await tlsApp.listen({ port: 0, host: '127.0.0.1' });
    const address = tlsApp.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }
  const open = (port: number) =>
    new Promise<ReturnType<typeof tlsConnect>>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.caCert, servername: 'localhost' });
      socket.on('error', () => undefined);
      socket.once('secureConnect', () => resolve(socket));
    });
  const until = async (check: () => boolean, ms = 5000) => {
    for (const end = Date.now() + ms; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  };
  const gauge = async (m: WebhookMetrics, name: string) => Number(new RegExp(`^lb_probe_webhook_${name} (\\S+)$`, 'm').exec(await m.registry.metrics())?.[1]);

  it('requests_in_flight returns to 0 after 100 pipelined requests whose client hangs up.', async () => {
    const served = new WebhookMetrics({ processMetrics: false });
    const gate = new RequestGate();
    const port = await serve(gate, served);
    const body = JSON.stringify(review(fixture('istio-gateway-service.yaml')));
    const socket = await open(port);
    let answered = 0;
    socket.on('data', (d: Buffer) => (answered += d.toString().split('HTTP/1.1 200').length - 1));
    socket.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`.repeat(100));
    await until(() => answered >= 5);
    socket.destroy();
    await until(() => gate.inFlight === 0);
    expect(answered).toBeLessThan(100);
    expect(await gauge(served, 'requests_in_flight')).toBe(0);
  });

  it('A client that hangs up mid-body is counted in requests_aborted_total, not as a refused review.', async () => {
    const served = new WebhookMetrics({ processMetrics: false });
    const port = await serve(new RequestGate(), served);
    lines.length = 0;
    const socket = await open(port);
    socket.write('POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"apiVersion":');
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await until(() => lines.some((l) => l['msg'] === 'client closed the connection before the answer'));
    const text = await served.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_requests_aborted_total 1$/m);
    expect(text).not.toMatch(/^lb_probe_webhook_errors_total\{/m);
    expect(lines.filter((l) => l['msg'] === 'request refused')).toEqual([]);
  });

  it('A large body waits, unread, while another large one holds the whole large-body budget, and then is answered.', async () => {
    const served = new WebhookMetrics({ processMetrics: false });
    const gate = new RequestGate({ largeBudget: 400 * 1024 });
    const port = await serve(gate, served);
    const object = fixture('istio-gateway-service.yaml') as { metadata: { annotations?: Record<string, string> } };
    object.metadata.annotations = { pad: 'x'.repeat(300 * 1024) };
    const body = JSON.stringify(review(object));
    // The first holds the budget: its headers and half its body are sent, then it stalls.
    const first = await open(port);
    first.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 1000)}`);
    const second = await open(port);
    let secondAnswer = '';
    second.on('data', (d: Buffer) => (secondAnswer += d.toString()));
    second.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    await until(() => gate.waiting === 1);
    expect([gate.waiting, gate.bodyBytes.large, await gauge(served, 'requests_waiting')]).toEqual([1, 400 * 1024, 1]);
    expect(secondAnswer).toBe('');
    first.destroy();
    await until(() => secondAnswer.includes('"allowed":true'));
    expect(secondAnswer).toMatch(/^HTTP\/1\.1 200 /);
    await until(() => gate.bodyBytes.large === 0);
    expect(gate.bodyBytes).toEqual({ small: 0, large: 0 });
  });
});

describe('health server', () => {
  it('/metrics serves the registry in the Prometheus text format, process metrics included.', async () => {
    const registry = new WebhookMetrics();
    registry.certificateInUse(new Date('2030-01-01T00:00:00Z'));
    const health = buildHealthApp({ logger, ready: () => undefined, metrics: registry.registry });
    const res = await health.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^lb_probe_webhook_certificate_expiry_timestamp_seconds 1893456000$/m);
    expect(res.body).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 0$/m);
    expect(res.body).toMatch(/^lb_probe_webhook_process_resident_memory_bytes \d+$/m);
    await health.close();
  });

  it('/healthz answers 200 and /readyz follows the ready callback.', async () => {
    let reason: string | undefined = 'starting';
    const health = buildHealthApp({ logger, ready: () => reason });
    expect((await health.inject({ url: '/healthz' })).statusCode).toBe(200);
    const notReady = await health.inject({ url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: 'not ready', reason: 'starting' });
    reason = undefined;
    expect((await health.inject({ url: '/readyz' })).statusCode).toBe(200);
    await health.close();
  });
});
