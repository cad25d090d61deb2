/**
 * WebhookMetrics: the Prometheus metrics of one webhook process, on a registry of its own (never
 * the global one), served on the health port at /metrics. Names follow Prometheus conventions
 * with the one prefix `lb_probe_webhook_`.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from './series.js';

/** METRIC_PREFIX starts every metric name. */
export const METRIC_PREFIX = 'lb_probe_webhook_';

/**
 * ServerCounts is what the metrics read, when scraped, from the webhook server (its connection
 * tracker and body admission keep these counts); declared here so that metrics depend on no
 * server.
 */
export interface ServerCounts {
  /** inFlight is the number of requests received and not yet answered or aborted. */
  readonly inFlight: number;
  /** waiting is the number of requests waiting for room in a body budget. */
  readonly waiting: number;
  /** bodyBytes is the number of request body bytes in work now, by budget. */
  readonly bodyBytes: { readonly small: number; readonly large: number };
}

/** ReviewRecorder records answered reviews; WebhookMetrics is one (the admission layer's metrics wrapper takes this interface). */
export interface ReviewRecorder {
  /**
   * reviewed records one answered review: its kind (any string; other than Service and Gateway
   * it is counted as `other`, so the label set stays bounded whatever clients send), operation,
   * decision, duration, whether it was patched, and the number of warnings the client was shown.
   */
  reviewed(kind: string, operation: string, decision: string, seconds: number, patched: boolean, warnings: number): void;
}

/** REVIEW_KINDS label the review metrics; any other kind a client sends counts as the last, `other`. */
export const REVIEW_KINDS = ['Service', 'Gateway', 'other'] as const;
/** REVIEW_OPERATIONS are the admission operations; anything else counts as the last, `other`. */
export const REVIEW_OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'other'] as const;
/** REVIEW_DECISIONS are the decisions' outcomes; anything else counts as the last, `other`. */
export const REVIEW_DECISIONS = ['patched', 'warned', 'unchanged', 'skipped', 'other'] as const;

/** indexOf is the index of value in a label list, or of its last entry (`other`) when absent. */
function indexOf(list: readonly string[], value: string): number {
  const i = list.indexOf(value);
  return i < 0 ? list.length - 1 : i;
}

/** ReloadResult is the outcome of one reload attempt. */
export type ReloadResult = 'success' | 'failure';

/** WebhookMetrics records what the webhook does; every method is cheap enough for the hot path. */
export class WebhookMetrics {
  /** registry holds every metric of this process. */
  readonly registry = new Registry();
  // The review metrics are recorded on the hot path: fixed label sets addressed by index (series.ts).
  private readonly reviews = new SeriesCounter({
    name: `${METRIC_PREFIX}reviews_total`,
    help: 'AdmissionReviews answered, by object kind, operation and decision (patched, warned, unchanged, skipped).',
    labelNames: ['kind', 'operation', 'decision'],
    series: REVIEW_KINDS.flatMap((kind) => REVIEW_OPERATIONS.flatMap((operation) => REVIEW_DECISIONS.map((decision) => [kind, operation, decision]))),
    registry: this.registry,
  });
  private readonly patches = new SeriesCounter({
    name: `${METRIC_PREFIX}patches_total`,
    help: 'AdmissionReviews answered with a JSON patch, by object kind.',
    labelNames: ['kind'],
    series: REVIEW_KINDS.map((kind) => [kind]),
    registry: this.registry,
  });
  private readonly warnings = new SeriesCounter({
    name: `${METRIC_PREFIX}warnings_total`,
    help: 'Admission warnings returned to clients, by object kind.',
    labelNames: ['kind'],
    series: REVIEW_KINDS.map((kind) => [kind]),
    registry: this.registry,
  });
  private readonly errors = new Counter({
    name: `${METRIC_PREFIX}errors_total`,
    help: 'Requests refused or failed, by error code (LBP_*).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly duration = new SeriesHistogram({
    name: `${METRIC_PREFIX}review_duration_seconds`,
    help: 'Time to decide one AdmissionReview, from decoded body to encoded answer.',
    labelNames: ['kind'],
    series: REVIEW_KINDS.map((kind) => [kind]),
    // The API server allows a webhook timeoutSeconds of 1 to 30; the decision takes well under a millisecond.
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registry: this.registry,
  });
  // The server's own counts, read when scraped: nothing on the hot path.
  private server: ServerCounts | undefined;
  private readonly inFlight: Gauge = new Gauge({
    name: `${METRIC_PREFIX}requests_in_flight`,
    help: 'Requests on the webhook port received and not yet answered or aborted.',
    registers: [this.registry],
    collect: (): void => void this.inFlight.set(this.server?.inFlight ?? 0),
  });
  private readonly waiting: Gauge = new Gauge({
    name: `${METRIC_PREFIX}requests_waiting`,
    help: 'Requests whose body waits for room in the body budget (TCP backpressure meanwhile).',
    registers: [this.registry],
    collect: (): void => void this.waiting.set(this.server?.waiting ?? 0),
  });
  private readonly bodyBytes: Gauge = new Gauge({
    name: `${METRIC_PREFIX}request_body_budget_bytes_in_use`,
    help: 'Bytes of request bodies in work now, by budget (small, large).',
    labelNames: ['budget'],
    registers: [this.registry],
    collect: (): void => {
      const bytes = this.server?.bodyBytes ?? { small: 0, large: 0 };
      this.bodyBytes.set({ budget: 'small' }, bytes.small);
      this.bodyBytes.set({ budget: 'large' }, bytes.large);
    },
  });
  private readonly droppedLogLines = new Counter({
    name: `${METRIC_PREFIX}log_lines_dropped_total`,
    help: 'Log lines dropped because stdout was not read fast enough and the pending lines reached their bound.',
    registers: [this.registry],
  });
  private readonly abortedRequests = new Counter({
    name: `${METRIC_PREFIX}requests_aborted_total`,
    help: 'Requests whose client closed the connection before the answer (not refusals).',
    registers: [this.registry],
  });
  private readonly policyReloads = new Counter({
    name: `${METRIC_PREFIX}policy_reloads_total`,
    help: 'Policy file reloads, by result; a failure keeps the last good policy.',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly certificateReloads = new Counter({
    name: `${METRIC_PREFIX}certificate_reloads_total`,
    help: 'Serving certificate reloads, by result; a failure keeps the certificate in use.',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly certificateExpiry = new Gauge({
    name: `${METRIC_PREFIX}certificate_expiry_timestamp_seconds`,
    help: 'notAfter of the serving certificate in use, as a Unix timestamp.',
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    for (const result of ['success', 'failure']) {
      this.policyReloads.inc({ result }, 0);
      this.certificateReloads.inc({ result }, 0);
    }
  }

  /** observeServer makes the in-flight, waiting and body-budget gauges report the server's counts. */
  observeServer(server: ServerCounts): void {
    this.server = server;
  }

  /** logLineDropped records a log line dropped because stdout did not keep up. */
  logLineDropped(): void {
    this.droppedLogLines.inc();
  }

  /** aborted records a request whose client hung up before its answer. */
  aborted(): void {
    this.abortedRequests.inc();
  }

  /** reviewed records one answered review (ReviewRecorder). */
  reviewed(kind: string, operation: string, decision: string, seconds: number, patched: boolean, warnings: number): void {
    const k = indexOf(REVIEW_KINDS, kind);
    this.reviews.inc((k * REVIEW_OPERATIONS.length + indexOf(REVIEW_OPERATIONS, operation)) * REVIEW_DECISIONS.length + indexOf(REVIEW_DECISIONS, decision));
    this.duration.observe(k, seconds);
    if (patched) this.patches.inc(k);
    if (warnings > 0) this.warnings.inc(k, warnings);
  }

  /** error records a refused or failed request by its catalogue code. */
  error(code: string): void {
    this.errors.inc({ code });
  }

  /** policyReload records a policy reload attempt. */
  policyReload(result: ReloadResult): void {
    this.policyReloads.inc({ result });
  }

  /** certificateReload records a certificate reload attempt. */
  certificateReload(result: ReloadResult): void {
    this.certificateReloads.inc({ result });
  }

  /** certificateInUse records the notAfter of the certificate being served. */
  certificateInUse(notAfter: Date): void {
    this.certificateExpiry.set(notAfter.getTime() / 1000);
  }
}
