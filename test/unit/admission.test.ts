/**
 * The review seam below HTTP, and its log and metrics wrappers, each alone: what review answers,
 * the exact line the log wrapper writes (pinned against pino's own rendering), the counts the
 * metrics wrapper records, and the Prometheus text of the hot-path series against prom-client's.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, systemClock } from '../../src/clock.js';
import { Counter, Histogram, Registry } from 'prom-client';
import { pino } from 'pino';
import { withReviewLog, REVIEW_MESSAGE } from '../../src/admission/logged.js';
import { withMetrics } from '../../src/admission/measured.js';
import { boundWarnings, MAX_WARNING_LENGTH, review, type AdmissionRequest, type Reviewer } from '../../src/admission/review.js';
import { createLog } from '../../src/log/log.js';
import { WebhookMetrics } from '../../src/metrics/metrics.js';
import { SeriesCounter, SeriesHistogram } from '../../src/metrics/series.js';
import { ManualClock } from '../support/clock.js';
import { fixture, policy } from '../support/fixtures.js';

const azure = policy({ provider: 'azure' });

function request(object: unknown, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Service' }, namespace: 'istio-ingress', name: 'gateway-istio', operation: 'CREATE', object, dryRun: false, ...extra };
}

describe('review', () => {
  it('answers the Istio Service under the Azure tcp policy with the uid, the patch and one warning per change.', () => {
    const answer = review(request(fixture('istio-gateway-service.yaml')), azure);
    expect({ uid: answer.uid, patch: answer.patch, warnings: answer.warnings, outcome: answer.decision.outcome }).toEqual({
      uid: 'u-1',
      patch: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: { 'service.beta.kubernetes.io/port_80_health-probe_protocol': 'tcp', 'service.beta.kubernetes.io/port_443_health-probe_protocol': 'tcp' },
        },
      ],
      warnings: [
        'lb-probe-webhook: Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)',
        'lb-probe-webhook: Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)',
      ],
      outcome: 'patched',
    });
  });

  it('answers a DELETE with nothing to patch and nothing to say.', () => {
    const answer = review(request(null, { operation: 'DELETE' }), azure);
    expect([answer.patch, answer.warnings, answer.decision.outcome]).toEqual([[], [], 'skipped']);
  });
});

describe('boundWarnings', () => {
  it.each([
    ['255 characters', 255, 'kept'],
    ['256 characters', 256, 'kept'],
    ['257 characters', 257, 'cut to 255 and an ellipsis'],
  ])('a warning of %s is %s.', (_name, length, _result) => {
    const warning = 'w'.repeat(length);
    const [bounded] = boundWarnings([warning]);
    expect(bounded).toBe(length <= MAX_WARNING_LENGTH ? warning : `${'w'.repeat(255)}…`);
    expect(bounded?.length).toBe(Math.min(length, 256));
  });

  it('keeps 20 warnings as they are, and of 21 keeps 19 and says how many more the log has.', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`);
    expect(boundWarnings(many(20))).toEqual(many(20));
    expect(boundWarnings(many(21))).toEqual([...many(19), 'lb-probe-webhook: 2 more warnings in the webhook log']);
  });
});

/** istio is the Istio-generated Service with edits: the status port's targetPort, annotations on metadata, more http ports. */
function istio(edit: { targetPort?: string; noName?: boolean; annotations?: Record<string, string>; ports?: number } = {}): Record<string, any> {
  const object = fixture('istio-gateway-service.yaml') as Record<string, any>;
  const status = object['spec'].ports[0];
  if (edit.targetPort !== undefined) status.targetPort = edit.targetPort;
  if (edit.noName === true) delete status.name;
  if (edit.annotations !== undefined) object['metadata'].annotations = edit.annotations;
  if (edit.ports !== undefined) object['spec'].ports = Array.from({ length: edit.ports }, (_, i) => ({ name: `p${i}`, port: i + 1, appProtocol: 'http' }));
  return object;
}

const AWS = 'service.beta.kubernetes.io/aws-load-balancer-';

describe('warnings that say what to do', () => {
  // The API server may cut a warning past 256 characters (boundWarnings does it first): what to
  // do comes first in each, so that it reaches kubectl whole however long the rest is.
  it.each([
    ['AWS with ip targets and a status port whose targetPort is a name', istio({ targetPort: 'status', annotations: { [`${AWS}type`]: 'external', [`${AWS}nlb-target-type`]: 'ip' } }), { provider: 'aws', probe: 'readiness' },
      `give Service port 15021 (status-port) a numeric targetPort, or set ${AWS}healthcheck-port to the container port number yourself`],
    ['AWS with a Service the Load Balancer Controller does not reconcile', istio(), { provider: 'aws', probe: 'readiness' },
      `set loadBalancerClass service.k8s.aws/nlb, or ${AWS}type: external with ${AWS}nlb-target-type`],
    ['AWS with instance targets and an unnamed status port', istio({ noName: true, annotations: { [`${AWS}type`]: 'external', [`${AWS}nlb-target-type`]: 'instance' } }), { provider: 'aws', probe: 'readiness', readiness: { port: 15021 } },
      'name Service port 15021 (for example status-port)'],
    ['AWS ALB with a status port whose targetPort is a name', istio({ targetPort: 'status' }), { provider: 'aws', aws: { alb: true } },
      'give port 15021 (status-port) a numeric targetPort or set alb.ingress.kubernetes.io/target-type: instance on the Service'],
    ['a Service with more http ports than one object can be annotated for', istio({ ports: 4097 }), { provider: 'azure' },
      'left unchanged; annotate it by hand or set lb-probe-webhook/probe: none'],
    ['a Service whose annotations would pass the API server’s limit', istio({ annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(256 * 1024) } }), { provider: 'azure' },
      'left unchanged; remove some annotations (a large kubectl.kubernetes.io/last-applied-configuration: use kubectl apply --server-side) or annotate it by hand'],
  ])('%s: the warning kubectl shows starts with what to do, whole.', (_name, object, settings, advice) => {
    const answer = review(request(object), policy(settings));
    const warning = answer.warnings.find((w) => w.includes(advice.slice(0, 30)));
    expect(warning, JSON.stringify(answer.warnings)).toBeDefined();
    expect(warning?.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
    expect(warning?.indexOf(advice)).toBeGreaterThanOrEqual(0);
    expect(warning?.indexOf(advice)).toBeLessThan(50);
  });
});

describe('withReviewLog', () => {
  const lines: string[] = [];
  const clock = new ManualClock();
  const log = createLog({ level: 'info', destination: { write: (line: string) => void lines.push(line) }, clock, bindings: { app: 'lb-probe-webhook' } });

  it('writes one line per review, exactly this one: the fields of the request and the answer, the warning count the client is shown, and the duration on its clock.', async () => {
    lines.length = 0;
    // A reviewer that takes 2 ms on the manual clock.
    const slow: Reviewer = (req, p) => {
      void clock.advance(2);
      return review(req, p);
    };
    const logged = withReviewLog(slow, { line: log.infoLine(REVIEW_MESSAGE), logger: log.logger, clock });
    const object = fixture('istio-gateway-service.yaml');
    (object['spec'] as { ports: unknown[] }).ports = Array.from({ length: 25 }, (_, i) => ({ name: `p${i}`, port: 8000 + i, appProtocol: 'http' }));
    const answer = logged(request(object, { uid: 'uid "quoted"', namespace: undefined }), azure);
    await Promise.resolve();
    expect(answer.warnings).toHaveLength(20);
    expect(lines).toEqual([
      '{"level":30,"time":1796083200002,"app":"lb-probe-webhook","uid":"uid \\"quoted\\"","kind":"Service","name":"gateway-istio","operation":"CREATE","dryRun":false,' +
        '"decision":"patched","probe":"tcp","changes":25,"warnings":20,"durationMs":2,"msg":"review"}\n',
    ]);
  });

  it('writes the same line pino itself writes for the same fields, so a pino upgrade that changes its format fails here.', () => {
    lines.length = 0;
    const logged = withReviewLog(review, { line: log.infoLine(REVIEW_MESSAGE), logger: log.logger, clock });
    logged(request(fixture('istio-gateway-service.yaml')), azure);
    const ours = lines.pop() as string;
    const fields = JSON.parse(ours) as Record<string, unknown>;
    const rest = Object.fromEntries(Object.entries(fields).filter(([key]) => !['level', 'time', 'app', 'msg'].includes(key)));
    log.logger.info(rest, fields['msg'] as string);
    expect(lines.pop()).toBe(ours);
  });

  it('writes nothing when info is off, and the patch at debug level.', () => {
    const quiet: string[] = [];
    const off = createLog({ level: 'warn', destination: { write: (line: string) => void quiet.push(line) }, clock });
    withReviewLog(review, { line: off.infoLine(REVIEW_MESSAGE), logger: off.logger, clock })(request(fixture('istio-gateway-service.yaml')), azure);
    expect(quiet).toEqual([]);
    const debug = createLog({ level: 'debug', destination: { write: (line: string) => void quiet.push(line) }, clock });
    withReviewLog(review, { line: debug.infoLine(REVIEW_MESSAGE), logger: debug.logger, clock })(request(fixture('istio-gateway-service.yaml')), azure);
    expect(quiet.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['review', 'review detail']);
  });
});

describe('withMetrics', () => {
  it('records each review by kind, operation and decision, with its patch, its duration and the warnings the client is shown; kinds other than Service and Gateway as other.', async () => {
    const clock = new ManualClock();
    const metrics = new WebhookMetrics({ processMetrics: false });
    const slow: Reviewer = (req, p) => {
      void clock.advance(2);
      return review(req, p);
    };
    const measured = withMetrics(slow, metrics, clock);
    measured(request(fixture('istio-gateway-service.yaml')), azure);
    measured(request({ apiVersion: 'v1', kind: 'ConfigMap' }, { kind: { group: '', version: 'v1', kind: 'ConfigMap' } }), azure);
    const text = await metrics.registry.metrics();
    const lines = text.split('\n').filter((l) => /^lb_probe_webhook_(reviews|patches|warnings)_total\{|^lb_probe_webhook_review_duration_seconds_(sum|count)\{/.test(l));
    expect(lines).toEqual([
      'lb_probe_webhook_reviews_total{kind="Service",operation="CREATE",decision="patched"} 1',
      'lb_probe_webhook_reviews_total{kind="other",operation="CREATE",decision="skipped"} 1',
      'lb_probe_webhook_patches_total{kind="Service"} 1',
      'lb_probe_webhook_warnings_total{kind="Service"} 2',
      'lb_probe_webhook_review_duration_seconds_sum{kind="Service"} 0.002',
      'lb_probe_webhook_review_duration_seconds_count{kind="Service"} 1',
      'lb_probe_webhook_review_duration_seconds_sum{kind="other"} 0.002',
      'lb_probe_webhook_review_duration_seconds_count{kind="other"} 1',
    ]);
  });
});

describe('the hot-path series', () => {
  it('render the same Prometheus text as prom-client’s Counter and Histogram after the same observations.', async () => {
    const buckets = [0.001, 0.01, 0.1];
    const values = [0.0005, 0.001, 0.002, 0.05, 0.1, 0.2, 5];
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new SeriesCounter({ name: 'c_total', help: 'c', labelNames: ['kind', 'op'], series: [['Service', 'CREATE'], ['Gateway', 'UPDATE'], ['other', 'DELETE']], registry: ours });
    const histogram = new SeriesHistogram({ name: 'h_seconds', help: 'h', labelNames: ['kind'], series: [['Service'], ['Gateway']], buckets, registry: ours });
    const promCounter = new Counter({ name: 'c_total', help: 'c', labelNames: ['kind', 'op'], registers: [theirs] });
    const promHistogram = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['kind'], buckets, registers: [theirs] });
    counter.inc(0);
    counter.inc(0, 4);
    counter.inc(2);
    promCounter.inc({ kind: 'Service', op: 'CREATE' });
    promCounter.inc({ kind: 'Service', op: 'CREATE' }, 4);
    promCounter.inc({ kind: 'other', op: 'DELETE' });
    for (const value of values) {
      histogram.observe(0, value);
      promHistogram.observe({ kind: 'Service' }, value);
    }
    histogram.observe(1, 0.003);
    promHistogram.observe({ kind: 'Gateway' }, 0.003);
    const sorted = (text: string) => text.split('\n').filter(Boolean).sort();
    expect(sorted(await ours.metrics())).toEqual(sorted(await theirs.metrics()));
  });
});

describe('the log line adapter', () => {
  it('writes an info line in pino’s exact format: level, time from the clock, the bindings, the members, the message.', () => {
    const lines: string[] = [];
    const clock = new ManualClock();
    const log = createLog({ level: 'info', destination: { write: (line: string) => void lines.push(line) }, clock, bindings: { app: 'x' } });
    log.infoLine('hello "world"').write(',"n":1');
    log.logger.info({ n: 1 }, 'hello "world"');
    expect(lines).toEqual(['{"level":30,"time":1796083200000,"app":"x","n":1,"msg":"hello \\"world\\""}\n', '{"level":30,"time":1796083200000,"app":"x","n":1,"msg":"hello \\"world\\""}\n']);
    const plain = pino({ level: 'info', base: { app: 'x' }, timestamp: () => ',"time":1796083200000' }, { write: (line: string) => void lines.push(line) });
    plain.info({ n: 1 }, 'hello "world"');
    expect(lines[2]).toBe(lines[0]);
  });
});

describe('the log on a file descriptor', () => {
  it('buffers lines and writes them all, in order, by close.', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lbp-log-'));
    try {
      const file = join(dir, 'out.log');
      const log = createLog({ level: 'info', destination: openSync(file, 'w'), clock: new ManualClock(), bindings: { app: 'x' } });
      const line = log.infoLine('review');
      for (let i = 0; i < 100; i++) line.write(`,"i":${i}`);
      log.logger.info('last');
      log.close();
      const written = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { i?: number; msg: string });
      expect(written.map((l) => l.i ?? l.msg)).toEqual([...Array.from({ length: 100 }, (_, i) => i), 'last']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('systemClock', () => {
  it('runs timers in order and not once they are cancelled, and sleeps on them.', async () => {
    const fired: string[] = [];
    const cancelled = systemClock.setTimeout(() => void fired.push('cancelled'), 1);
    cancelled();
    let ticks = 0;
    const stopInterval = systemClock.setInterval(() => void ticks++, 1, { unref: true });
    await new Promise<void>((resolve) => systemClock.setTimeout(() => resolve(), 20, { unref: false }));
    stopInterval();
    // The 20 ms timer fires after the 1 ms one would have: it never did.
    expect(fired).toEqual([]);
    expect(ticks).toBeGreaterThan(0);
    expect(systemClock.epochMs()).toBeGreaterThan(Date.UTC(2026, 0, 1));
    const before = systemClock.now();
    await sleep(systemClock, 5);
    expect(systemClock.now()).toBeGreaterThan(before);
  });
});
