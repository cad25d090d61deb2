/**
 * The HTTP layer: the /mutate route through inject, and the webhook and health servers over real
 * sockets on a manual clock, so that every deadline is checked at its exact bound (one
 * millisecond before it the connection is shown to be served, at it the connection is closed)
 * without waiting on the wall clock.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { generateCertificates } from '../../src/certs/generate.js';
import { ByteBudget } from '../../src/http/budget.js';
import { createHealthServer, createWebhookServer, type WebhookServerOptions } from '../../src/http/server.js';
import { createLog } from '../../src/log/log.js';
import { WebhookMetrics } from '../../src/metrics/metrics.js';
import type { Policy } from '../../src/policy/schema.js';
import { ManualClock } from '../support/clock.js';
import { fixture, policy } from '../support/fixtures.js';
import { nextAnswer, openTcp, requestText, untilClosed, waitUntil } from '../support/https.js';
import { decodePatch, review } from '../support/reviews.js';

const azure = policy({ provider: 'azure' });
const AZURE_TCP_PATCH = [
  {
    op: 'add',
    path: '/metadata/annotations',
    value: { 'service.beta.kubernetes.io/port_80_health-probe_protocol': 'tcp', 'service.beta.kubernetes.io/port_443_health-probe_protocol': 'tcp' },
  },
];
const AZURE_TCP_WARNINGS = [
  'lb-probe-webhook: Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)',
  'lb-probe-webhook: Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)',
];
const certs = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 1, caDays: 2, now: new Date() });
const istioBody = () => JSON.stringify(review(fixture('istio-gateway-service.yaml')));

/** build makes a webhook server on a manual clock, logging into lines, with its own metrics. */
function build(options: Partial<WebhookServerOptions> & { policy?: () => Policy } = {}) {
  const clock = new ManualClock();
  const lines: string[] = [];
  const log = createLog({ level: 'debug', destination: { write: (line: string) => void lines.push(line) }, clock });
  const metrics = new WebhookMetrics({ processMetrics: false });
  const server = createWebhookServer({ policy: () => azure, tls: { cert: certs.tlsCert, key: certs.tlsKey }, log, clock, metrics, ...options });
  const logged = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const metric = async (pattern: RegExp) => Number(pattern.exec(await metrics.registry.metrics())?.[1]);
  return { clock, lines, logged, metrics, metric, server };
}

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** listening builds a webhook server and starts it on a loopback port. */
async function listening(options: Partial<WebhookServerOptions> = {}) {
  const built = build(options);
  const port = await built.server.listen(0, '127.0.0.1');
  closing.push(() => built.server.close(0));
  return { ...built, port };
}

/** secure opens a TLS connection trusting the test CA, resolved after the handshake. */
function secure(port: number, socket?: Socket): Promise<TLSSocket> {
  return new Promise((resolve) => {
    const tls = tlsConnect({ host: '127.0.0.1', port, ca: certs.caCert, servername: 'localhost', ...(socket !== undefined && { socket }) });
    tls.on('error', () => undefined);
    tls.once('secureConnect', () => resolve(tls));
  });
}

describe('POST /mutate', () => {
  const { server, logged, lines, metric } = build();
  const post = (payload: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    server.app.inject({ method: 'POST', url: '/mutate', headers, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
  beforeAll(() => server.app.ready());
  afterAll(() => server.app.close());

  it('A CREATE of the Istio-generated Service is allowed with the patch, the uid echoed and warnings saying why.', async () => {
    const body = review(fixture('istio-gateway-service.yaml'));
    const res = await post(body);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const json = res.json();
    expect(json).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: (body['request'] as { uid: string }).uid, allowed: true, patchType: 'JSONPatch', patch: expect.any(String), warnings: AZURE_TCP_WARNINGS },
    });
    expect(decodePatch(json)).toEqual(AZURE_TCP_PATCH);
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

  it('Logs exactly one line per review, this one byte for byte, and the patch at debug level.', async () => {
    lines.length = 0;
    const body = review(fixture('istio-gateway-service.yaml'), 'CREATE', { uid: 'c7a1d3f0-0000-4000-8000-000000000001' });
    await post(body);
    // The manual clock does not move while the review runs: time is its epoch and the duration 0.
    expect(lines.filter((l) => l.includes('"msg":"review"'))).toEqual([
      '{"level":30,"time":1796083200000,"uid":"c7a1d3f0-0000-4000-8000-000000000001","kind":"Service","namespace":"istio-ingress","name":"gateway-istio",' +
        '"operation":"CREATE","dryRun":false,"decision":"patched","probe":"tcp","profile":"istio","changes":2,"warnings":2,"durationMs":0,"msg":"review"}\n',
    ]);
    expect(logged().find((l) => l['msg'] === 'review detail')).toEqual({ level: 20, time: 1796083200000, uid: 'c7a1d3f0-0000-4000-8000-000000000001', patch: AZURE_TCP_PATCH, notes: [], msg: 'review detail' });
  });

  it('Counts the warnings the client is shown, the same number in the response, the log line and warnings_total, also when they are bounded to 20.', async () => {
    const object = fixture('istio-gateway-service.yaml');
    (object['spec'] as { ports: unknown[] }).ports = Array.from({ length: 30 }, (_, i) => ({ name: `p${i}`, port: 8000 + i, appProtocol: 'http' }));
    const before = await metric(/^lb_probe_webhook_warnings_total\{kind="Service"\} (\d+)$/m);
    lines.length = 0;
    const res = await post(review(object));
    const shown = (res.json().response.warnings as string[]).length;
    expect(shown).toBe(20);
    expect(logged().find((l) => l['msg'] === 'review')).toMatchObject({ changes: 30, warnings: 20 });
    expect((await metric(/^lb_probe_webhook_warnings_total\{kind="Service"\} (\d+)$/m)) - (Number.isNaN(before) ? 0 : before)).toBe(20);
  });

  it('Records each review in reviews_total, patches_total and review_duration_seconds by kind, operation and decision.', async () => {
    const count = (decision: string) => metric(new RegExp(`^lb_probe_webhook_reviews_total\\{kind="Service",operation="CREATE",decision="${decision}"\\} (\\d+)$`, 'm'));
    const patched = await count('patched');
    const patches = await metric(/^lb_probe_webhook_patches_total\{kind="Service"\} (\d+)$/m);
    const observed = await metric(/^lb_probe_webhook_review_duration_seconds_count\{kind="Service"\} (\d+)$/m);
    await post(review(fixture('istio-gateway-service.yaml')));
    await post(review(fixture('service-clusterip.yaml')));
    expect(await count('patched')).toBe(patched + 1);
    expect(await metric(/^lb_probe_webhook_patches_total\{kind="Service"\} (\d+)$/m)).toBe(patches + 1);
    expect(await metric(/^lb_probe_webhook_review_duration_seconds_count\{kind="Service"\} (\d+)$/m)).toBe(observed + 2);
    expect(await count('skipped')).toBeGreaterThanOrEqual(1);
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
  ] as [string, unknown, number, string, RegExp][]).map(([name, payload, status, code, message]) => [name, status, code, payload, message] as const))('%s gets a clear %i %s.', async (_name, status, code, payload, message) => {
    const res = await post(payload);
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ code });
    expect(res.json().message).toMatch(message);
  });

  /** nested is a Service whose annotations map holds a chain of maps, so that the object nests `levels` levels in all. */
  const nested = (levels: number) => {
    const object = fixture('istio-gateway-service.yaml');
    let deep: Record<string, unknown> = {};
    for (let level = 4; level < levels; level++) deep = { a: deep };
    (object['metadata'] as Record<string, unknown>)['extra'] = { chain: deep }; // object (1), metadata (2), extra (3), chain (4)
    return object;
  };

  it('An object nested exactly 64 levels deep is reviewed; at 65 it gets 400 naming the limit.', async () => {
    const ok = await post(review(nested(64)));
    expect(ok.statusCode).toBe(200);
    expect(decodePatch(ok.json())).toEqual(AZURE_TCP_PATCH);
    const deep = await post(review(nested(65)));
    expect(deep.statusCode).toBe(400);
    expect(deep.json()).toEqual({ code: 'LBP_REVIEW_INVALID', message: 'malformed AdmissionReview: request.object nests deeper than 64 levels' });
  });

  it('A refusal is logged as one JSON line with one "msg" key and the reason under its own key.', async () => {
    lines.length = 0;
    await post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    const refused = lines.filter((l) => l.includes('"request refused"'));
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
    const before = await metric(/^lb_probe_webhook_errors_total\{code="LBP_NOT_FOUND"\} (\d+)$/m);
    await post('not json');
    await server.app.inject({ method: 'GET', url: '/nowhere' });
    expect(await metric(/^lb_probe_webhook_errors_total\{code="LBP_BODY_NOT_JSON"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(await metric(/^lb_probe_webhook_errors_total\{code="LBP_NOT_FOUND"\} (\d+)$/m)).toBe((Number.isNaN(before) ? 0 : before) + 1);
  });

  it('A content type other than JSON gets 415.', async () => {
    const res = await post(review(fixture('istio-gateway-service.yaml')), { 'content-type': 'application/yaml' });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ code: 'LBP_UNSUPPORTED_MEDIA_TYPE' });
  });

  it('An unknown path gets 404 naming the served route.', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/mutate' });
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
    const swapping = build({ policy: () => current });
    const first = await swapping.server.app.inject({ method: 'POST', url: '/mutate', payload: review(fixture('istio-gateway-service.yaml')) });
    current = policy({ provider: 'azure', probe: 'none' });
    const second = await swapping.server.app.inject({ method: 'POST', url: '/mutate', payload: review(fixture('istio-gateway-service.yaml')) });
    expect(decodePatch(first.json())).toEqual(AZURE_TCP_PATCH);
    expect(second.json().response.patch).toBeUndefined();
    await swapping.server.app.close();
  });

  it('Many warnings are bounded to 20 for kubectl, the last saying how many more the log has.', async () => {
    const object = fixture('istio-gateway-service.yaml');
    (object['spec'] as { ports: unknown[] }).ports = Array.from({ length: 30 }, (_, i) => ({ name: `p${i}`, port: 8000 + i, appProtocol: 'http' }));
    const res = await post(review(object));
    expect(res.json().response.warnings).toEqual([
      ...Array.from({ length: 19 }, (_, i) => `lb-probe-webhook: Azure probes port ${8000 + i} (p${i}) over TCP instead of GET / (appProtocol http)`),
      'lb-probe-webhook: 11 more warnings in the webhook log',
    ]);
  });

  it('A warning over 256 characters is cut to 255 and an ellipsis, as the API server would cut it anyway.', async () => {
    const object = fixture('istio-gateway-service.yaml');
    const long = 'x'.repeat(300);
    (object['metadata'] as Record<string, unknown>)['annotations'] = { 'service.beta.kubernetes.io/port_80_health-probe_protocol': long };
    const overwrite = build({ policy: () => policy({ provider: 'azure', overwrite: true }) });
    const res = await overwrite.server.app.inject({ method: 'POST', url: '/mutate', payload: review(object) });
    const replaced = (res.json().response.warnings as string[]).find((w) => w.includes('replaced'));
    const full = `lb-probe-webhook: replaced service.beta.kubernetes.io/port_80_health-probe_protocol="${long}" with "tcp" (overwrite: true)`;
    expect(replaced).toBe(`${full.slice(0, 255)}…`);
    expect(replaced).toHaveLength(256);
    await overwrite.server.app.close();
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

describe('the webhook server over real TLS', () => {
  it('requests_in_flight counts a request whose body is still arriving, and returns to 0 when the client of 100 pipelined requests hangs up.', async () => {
    const { server, port, metric } = await listening();
    const inFlight = () => metric(/^lb_probe_webhook_requests_in_flight (\d+)$/m);
    const stalled = await secure(port);
    stalled.write(requestText(istioBody()).slice(0, 300));
    await waitUntil('the stalled request to arrive', () => server.state.inFlight === 1);
    expect(await inFlight()).toBe(1);
    stalled.destroy();
    await waitUntil('the stalled request to end', () => server.state.inFlight === 0);
    expect(await inFlight()).toBe(0);

    // Node's HTTPS server itself answers a long pipelined burst only in part (its parser reports
    // HPE_PAUSED once the queued answers fill the socket), so the client hangs up after the first.
    const socket = await secure(port);
    const first = nextAnswer(socket);
    socket.write(requestText(istioBody()).repeat(100));
    expect((await first).head).toMatch(/^HTTP\/1\.1 200 /);
    socket.destroy();
    await waitUntil('every pipelined request to end', () => server.state.inFlight === 0);
    expect(await inFlight()).toBe(0);
  });

  it('A client that hangs up mid-body is counted in requests_aborted_total, not as a refused review.', async () => {
    const { port, logged, metrics } = await listening();
    const socket = await secure(port);
    socket.write(requestText(istioBody()).slice(0, 300));
    socket.destroy();
    await waitUntil('the hang-up to be logged', () => logged().some((l) => l['msg'] === 'client closed the connection before the answer'));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_requests_aborted_total 1$/m);
    expect(text).not.toMatch(/^lb_probe_webhook_errors_total\{/m);
    expect(logged().filter((l) => l['msg'] === 'request refused')).toEqual([]);
  });

  it('A large body waits, unread, while another large one holds the whole large-body budget, is answered once it frees, and each large answer is followed by one collection.', async () => {
    let collections = 0;
    const { server, port, metric } = await listening({ budgets: { largeBudget: 400 * 1024 }, collect: () => collections++ });
    const object = fixture('istio-gateway-service.yaml') as { metadata: { annotations?: Record<string, string> } };
    object.metadata.annotations = { pad: 'x'.repeat(300 * 1024) };
    const body = JSON.stringify(review(object));
    const first = await secure(port);
    first.write(requestText(body).slice(0, 1000));
    await waitUntil('the first to hold the budget', () => server.state.bodyBytes.large === 400 * 1024);
    const second = await secure(port);
    const answer = nextAnswer(second);
    second.write(requestText(body));
    await waitUntil('the second to wait', () => server.state.waiting === 1);
    expect([server.state.waiting, server.state.bodyBytes, await metric(/^lb_probe_webhook_requests_waiting (\d+)$/m)]).toEqual([1, { small: 0, large: 400 * 1024 }, 1]);
    first.destroy();
    expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
    await waitUntil('the budget to be free', () => server.state.bodyBytes.large === 0);
    expect(collections).toBe(2);
    // A small review neither waits nor collects.
    const small = await secure(port);
    const smallAnswer = nextAnswer(small);
    small.write(requestText(istioBody()));
    expect((await smallAnswer).head).toMatch(/^HTTP\/1\.1 200 /);
    expect(collections).toBe(2);
    small.destroy();
    second.destroy();
  });

  it('A large body whose client hangs up while it waits leaves the queue, and the budget is free once the first is done.', async () => {
    const { server, port } = await listening({ budgets: { largeBudget: 400 * 1024 }, collect: () => undefined });
    const object = fixture('istio-gateway-service.yaml') as { metadata: { annotations?: Record<string, string> } };
    object.metadata.annotations = { pad: 'x'.repeat(300 * 1024) };
    const text = requestText(JSON.stringify(review(object)));
    const first = await secure(port);
    first.write(text.slice(0, 1000));
    await waitUntil('the first to hold the budget', () => server.state.bodyBytes.large === 400 * 1024);
    const gone = await secure(port);
    gone.write(text.slice(0, 1000));
    await waitUntil('the second to wait', () => server.state.waiting === 1);
    gone.destroy();
    await waitUntil('the second to leave the queue', () => server.state.waiting === 0 && server.state.inFlight === 1);
    first.destroy();
    await waitUntil('the budget to be free', () => server.state.bodyBytes.large === 0 && server.state.inFlight === 0);
  });

  it('After drain, every answer says Connection: close, also one whose request was already being read.', async () => {
    const { server, port } = await listening();
    const keptAlive = await secure(port);
    const before = nextAnswer(keptAlive);
    keptAlive.write(requestText(istioBody()));
    expect((await before).head).not.toMatch(/\r\nconnection: close/i);
    const underWay = await secure(port);
    const body = istioBody();
    underWay.write(requestText(body).slice(0, 300));
    await waitUntil('the request under way to arrive', () => server.state.inFlight === 1);
    server.drain();
    const underWayAnswer = nextAnswer(underWay);
    underWay.write(requestText(body).slice(300));
    expect((await underWayAnswer).head).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close/i);
    const after = nextAnswer(keptAlive);
    keptAlive.write(requestText(istioBody()));
    expect((await after).head).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close/i);
    await untilClosed(keptAlive);
  });

  it('rotateCertificate serves the new certificate to new connections, with the same TLS settings.', async () => {
    const { server, port } = await listening();
    const other = generateCertificates({ dns: ['localhost'], ips: ['127.0.0.1'], days: 1, caDays: 2, now: new Date() });
    const fingerprint = (ca: string) =>
      new Promise<string | undefined>((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
        socket.once('secureConnect', () => {
          resolve(socket.getPeerX509Certificate()?.fingerprint256);
          socket.destroy();
        });
        socket.once('error', () => resolve(undefined));
      });
    const before = await fingerprint(certs.caCert);
    server.rotateCertificate({ cert: other.tlsCert, key: other.tlsKey });
    const after = await fingerprint(other.caCert);
    expect(before).toBeDefined();
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });
});

describe('connection deadlines, on the manual clock', () => {
  it('A connection that never starts TLS is served if it does at 9,999 ms, and closed at 10,000 ms.', async () => {
    const { server, clock, port } = await listening();
    const served = await openTcp(port);
    const silent = await openTcp(port);
    const silentClosed = untilClosed(silent);
    await waitUntil('both connections to be tracked', () => server.state.open === 2);
    await clock.advance(9_999);
    const tls = await secure(port, served);
    const answer = nextAnswer(tls);
    tls.write(requestText(istioBody()));
    expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
    expect(server.state.open).toBe(2);
    await clock.advance(1);
    await silentClosed;
    expect(server.state.open).toBe(1);
    tls.destroy();
  });

  it('A request head still arriving is served if it ends at 9,999 ms, and answered 408 and closed at 10,000 ms.', async () => {
    const { server, clock, port } = await listening();
    const [served, slow] = [await secure(port), await secure(port)];
    const head = requestText(istioBody()).split('\r\n\r\n')[0] ?? '';
    served.write(head.slice(0, 40));
    slow.write(head.slice(0, 40));
    const slowClosed = untilClosed(slow);
    await waitUntil('both connections to be tracked', () => server.state.open === 2);
    await clock.advance(9_999);
    const answer = nextAnswer(served);
    served.write(requestText(istioBody()).slice(40));
    expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
    await clock.advance(1);
    expect((await slowClosed).text).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    served.destroy();
  });

  it('A request whose body is still arriving is answered if it ends at 29,999 ms, and answered 408 and closed at 30,000 ms.', async () => {
    const { server, clock, port } = await listening();
    const [served, slow] = [await secure(port), await secure(port)];
    const text = requestText(istioBody());
    served.write(text.slice(0, 400));
    slow.write(text.slice(0, 400));
    const slowClosed = untilClosed(slow);
    await waitUntil('both requests to arrive', () => server.state.inFlight === 2);
    await clock.advance(29_999);
    const answer = nextAnswer(served);
    served.write(text.slice(400));
    expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
    await clock.advance(1);
    expect((await slowClosed).text).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    await waitUntil('the cut request to end', () => server.state.inFlight === 0);
    served.destroy();
  });

  it('An idle keep-alive connection is served if it sends at 71,999 ms after its answer, and closed at 72,000 ms.', async () => {
    const { server, clock, port } = await listening();
    const [served, idle] = [await secure(port), await secure(port)];
    for (const socket of [served, idle]) {
      const answer = nextAnswer(socket);
      socket.write(requestText(istioBody()));
      await answer;
    }
    await waitUntil('both to be idle', () => server.state.idle === 2);
    const idleClosed = untilClosed(idle);
    await clock.advance(71_999);
    const answer = nextAnswer(served);
    served.write(requestText(istioBody()));
    expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
    await clock.advance(1);
    expect((await idleClosed).text).toBe('');
    served.destroy();
  });

  it('Beyond maxIdle idle connections the least recently used is closed, and the others still serve.', async () => {
    const { server, port } = await listening({ limits: { maxIdle: 2 } });
    const sockets = [await secure(port), await secure(port), await secure(port)];
    const oldestClosed = untilClosed(sockets[0] as TLSSocket);
    for (const [i, socket] of sockets.entries()) {
      const answer = nextAnswer(socket);
      socket.write(requestText(istioBody()));
      await answer;
      await waitUntil(`connection ${i} to be idle`, () => server.state.idle === Math.min(i + 1, 2));
    }
    await oldestClosed;
    for (const socket of sockets.slice(1)) {
      const answer = nextAnswer(socket);
      socket.write(requestText(istioBody()));
      expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
      socket.destroy();
    }
  });

  it('Beyond maxConnections a new connection is closed at once, before its handshake, and those open still serve.', async () => {
    const { server, port } = await listening({ limits: { maxConnections: 2 } });
    const open = [await secure(port), await secure(port)];
    await waitUntil('two connections to be tracked', () => server.state.open === 2);
    const refused = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.caCert, servername: 'localhost' });
      socket.once('secureConnect', () => resolve('handshake completed'));
      socket.once('error', (err) => resolve(`error: ${err.message}`));
      socket.once('close', () => resolve('closed'));
    });
    expect(refused).not.toBe('handshake completed');
    expect(server.state.open).toBe(2);
    for (const socket of open) {
      const answer = nextAnswer(socket);
      socket.write(requestText(istioBody()));
      expect((await answer).head).toMatch(/^HTTP\/1\.1 200 /);
      socket.destroy();
    }
  });
});

describe('health server', () => {
  const logger = createLog({ level: 'silent', destination: { write: () => undefined }, clock: new ManualClock() }).logger;

  it('/metrics serves the registry in the Prometheus text format, process metrics included.', async () => {
    const registry = new WebhookMetrics();
    registry.certificateInUse(new Date('2030-01-01T00:00:00Z'));
    const health = createHealthServer({ logger, ready: () => undefined, metrics: registry.registry });
    const res = await health.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^lb_probe_webhook_certificate_expiry_timestamp_seconds 1893456000$/m);
    expect(res.body).toMatch(/^lb_probe_webhook_policy_reloads_total\{result="failure"\} 0$/m);
    expect(res.body).toMatch(/^lb_probe_webhook_process_resident_memory_bytes \d+$/m);
    await health.close();
  });

  it('/healthz answers 200 and /readyz follows the ready callback.', async () => {
    let reason: string | undefined = 'starting';
    const health = createHealthServer({ logger, ready: () => reason });
    expect((await health.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const notReady = await health.app.inject({ url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: 'not ready', reason: 'starting' });
    reason = undefined;
    expect((await health.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    await health.close();
  });

  it('has the webhook port’s deadlines: a slow head gets 408 at 10,000 ms and a slow body at 30,000 ms, not a millisecond before.', async () => {
    const clock = new ManualClock();
    const health = createHealthServer({ logger, ready: () => undefined, clock });
    const port = await health.listen(0, '127.0.0.1');
    closing.push(() => health.close());
    const slowHead = await openTcp(port);
    slowHead.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    const slowBody = await openTcp(port);
    slowBody.write('POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{');
    const [headClosed, bodyClosed] = [untilClosed(slowHead), untilClosed(slowBody)];
    await waitUntil('both on the health port', () => health.state.open === 2 && health.state.inFlight === 1);
    await clock.advance(9_999);
    expect(health.state.open).toBe(2);
    await clock.advance(1);
    expect((await headClosed).text).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    expect(health.state.open).toBe(1);
    await clock.advance(19_999);
    expect(health.state.open).toBe(1);
    await clock.advance(1);
    expect((await bodyClosed).text).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
  });
});
