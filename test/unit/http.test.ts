import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp } from '../../src/http/app.js';
import { WebhookMetrics } from '../../src/http/metrics.js';
import { buildHealthApp } from '../../src/http/health.js';
import { decide } from '../../src/core/decide.js';
import { fixture, policy } from '../helpers/fixtures.js';
import { decodePatch, review } from '../helpers/reviews.js';

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
const logger = pino({ level: 'debug' }, sink);
const azure = policy({ provider: 'azure' });
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
    expect(decodePatch(json)).toEqual(decide({ object: fixture('istio-gateway-service.yaml'), operation: 'CREATE', policy: azure }).patch);
    expect(json.response.warnings).toEqual([
      'lb-probe-webhook: Azure probes port 80 (http) over TCP instead of GET / (appProtocol http)',
      'lb-probe-webhook: Azure probes port 443 (https) over TCP instead of GET / (appProtocol https)',
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
    expect(lines.find((l) => l['msg'] === 'review detail')?.['patch']).toHaveLength(1);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lb_probe_webhook_reviews_total\{kind="Service",operation="CREATE",decision="patched"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_patches_total\{kind="Service"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_warnings_total\{kind="Service"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_review_duration_seconds_count\{kind="Service"\} [1-9]\d*$/m);
    expect(text).toMatch(/^lb_probe_webhook_requests_in_flight 0$/m);
  });

  it.each([
    ['an empty body', '', 400, 'LBP_BODY_NOT_JSON'],
    ['text that is not JSON', '{"apiVersion":', 400, 'LBP_BODY_NOT_JSON'],
    ['a JSON array', [], 400, 'LBP_REVIEW_INVALID'],
    ['a JSON string', '"review"', 400, 'LBP_REVIEW_INVALID'],
    ['a v1beta1 review', { ...review(fixture('istio-gateway-service.yaml')), apiVersion: 'admission.k8s.io/v1beta1' }, 400, 'LBP_REVIEW_INVALID'],
    ['a review of another kind', { ...review(fixture('istio-gateway-service.yaml')), kind: 'TokenReview' }, 400, 'LBP_REVIEW_INVALID'],
    ['a review without request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 400, 'LBP_REVIEW_INVALID'],
    ['a request without uid', review(fixture('istio-gateway-service.yaml'), 'CREATE', { uid: undefined }), 400, 'LBP_REVIEW_INVALID'],
    ['a request with a numeric uid', review(fixture('istio-gateway-service.yaml'), 'CREATE', { uid: 7 }), 400, 'LBP_REVIEW_INVALID'],
    ['a request with an unknown operation', review(fixture('istio-gateway-service.yaml'), 'PATCH'), 400, 'LBP_REVIEW_INVALID'],
    ['a CREATE without object', review(null, 'CREATE'), 400, 'LBP_REVIEW_INVALID'],
    ['a request whose kind is a string', review(fixture('istio-gateway-service.yaml'), 'CREATE', { kind: 'Service' }), 400, 'LBP_REVIEW_INVALID'],
    ['a request whose dryRun is a string', review(fixture('istio-gateway-service.yaml'), 'CREATE', { dryRun: 'yes' }), 400, 'LBP_REVIEW_INVALID'],
    ['a request whose namespace is a number', review(fixture('istio-gateway-service.yaml'), 'CREATE', { namespace: 3 }), 400, 'LBP_REVIEW_INVALID'],
    ['a body with __proto__', '{"__proto__":{"x":1}}', 400, 'LBP_BODY_NOT_JSON'],
    ['a body over the limit', { pad: 'x'.repeat(70 * 1024) }, 413, 'LBP_BODY_TOO_LARGE'],
  ])('%s gets a clear %i.', async (_name, payload, status, code) => {
    const res = await post(payload);
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ code });
    expect(res.json().message.length).toBeGreaterThan(10);
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
    expect(warnings).toHaveLength(20);
    expect(warnings[19]).toBe('lb-probe-webhook: 11 more warnings in the webhook log');
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
