/**
 * WebhookMetrics: the Prometheus metrics of one webhook process, on a registry of its own (never
 * the global one), served on the health port at /metrics. Names follow Prometheus conventions
 * with the one prefix `lb_probe_webhook_`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** METRIC_PREFIX starts every metric name. */
export const METRIC_PREFIX = 'lb_probe_webhook_';

/**
 * GateCounts is what the metrics read, when scraped, from whatever admits the webhook's requests
 * (the HTTP server's RequestGate has these counters); declared here so that metrics depend on no
 * server.
 */
export interface GateCounts {
  /** inFlight is the number of requests received and not yet answered or aborted. */
  readonly inFlight: number;
  /** waiting is the number of requests waiting for room in a body budget. */
  readonly waiting: number;
  /** bodyBytes is the number of request body bytes in work now, by budget. */
  readonly bodyBytes: { readonly small: number; readonly large: number };
}

/** ReviewEvent describes one answered review. */
export interface ReviewEvent {
  readonly kind: string;
  readonly operation: string;
  readonly decision: string;
  readonly durationMs: number;
  readonly patched: boolean;
  readonly warnings: number;
}

/** ReloadResult is the outcome of one reload attempt. */
export type ReloadResult = 'success' | 'failure';

/** WebhookMetrics records what the webhook does; every method is cheap enough for the hot path. */
export class WebhookMetrics {
  /** registry holds every metric of this process. */
  readonly registry = new Registry();
  private readonly reviews = new Counter({
    name: `${METRIC_PREFIX}reviews_total`,
    help: 'AdmissionReviews answered, by object kind, operation and decision (patched, warned, unchanged, skipped).',
    labelNames: ['kind', 'operation', 'decision'],
    registers: [this.registry],
  });
  private readonly patches = new Counter({
    name: `${METRIC_PREFIX}patches_total`,
    help: 'AdmissionReviews answered with a JSON patch, by object kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly warnings = new Counter({
    name: `${METRIC_PREFIX}warnings_total`,
    help: 'Admission warnings returned to clients, by object kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: `${METRIC_PREFIX}errors_total`,
    help: 'Requests refused or failed, by error code (LBP_*).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: `${METRIC_PREFIX}review_duration_seconds`,
    help: 'Time to decide one AdmissionReview, from decoded body to encoded answer.',
    labelNames: ['kind'],
    // The API server allows a webhook timeoutSeconds of 1 to 30; the decision takes well under a millisecond.
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  // The gate's own counters, read when scraped: nothing on the hot path.
  private gate: GateCounts | undefined;
  private readonly inFlight: Gauge = new Gauge({
    name: `${METRIC_PREFIX}requests_in_flight`,
    help: 'Requests on the webhook port received and not yet answered or aborted.',
    registers: [this.registry],
    collect: (): void => void this.inFlight.set(this.gate?.inFlight ?? 0),
  });
  private readonly waiting: Gauge = new Gauge({
    name: `${METRIC_PREFIX}requests_waiting`,
    help: 'Requests whose body waits for room in the body budget (TCP backpressure meanwhile).',
    registers: [this.registry],
    collect: (): void => void this.waiting.set(this.gate?.waiting ?? 0),
  });
  private readonly bodyBytes: Gauge = new Gauge({
    name: `${METRIC_PREFIX}request_body_budget_bytes_in_use`,
    help: 'Bytes of request bodies in work now, by budget (small, large).',
    labelNames: ['budget'],
    registers: [this.registry],
    collect: (): void => {
      const bytes = this.gate?.bodyBytes ?? { small: 0, large: 0 };
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

  /** observeGate makes the in-flight, waiting and body-budget gauges report the gate's counts. */
  observeGate(gate: GateCounts): void {
    this.gate = gate;
  }

  /** logLineDropped records a log line dropped because stdout did not keep up. */
  logLineDropped(): void {
    this.droppedLogLines.inc();
  }

  /** aborted records a request whose client hung up before its answer. */
  aborted(): void {
    this.abortedRequests.inc();
  }

  /** review records one answered review. */
  review(event: ReviewEvent): void {
    // One lookup per review: the children of every metric for this kind, operation and decision.
    const key = `${event.kind}\0${event.operation}\0${event.decision}`;
    let set = this.reviewChildren.get(key);
    if (set === undefined) {
      set = {
        reviews: this.child(this.reviews, event.kind, event.operation, event.decision),
        duration: this.child(this.duration, event.kind),
        patches: this.child(this.patches, event.kind),
        warnings: this.child(this.warnings, event.kind),
      };
      this.reviewChildren.set(key, set);
    }
    set.reviews.inc();
    set.duration.observe(event.durationMs / 1000);
    if (event.patched) set.patches.inc();
    if (event.warnings > 0) set.warnings.inc(event.warnings);
  }

  private readonly reviewChildren = new Map<string, Record<'reviews' | 'duration' | 'patches' | 'warnings', { inc(n?: number): void; observe(v: number): void }>>();

  // Labelled children are looked up once per label set: prom-client would hash the labels on every call.
  private readonly children = new Map<string, { inc(n?: number): void; observe(v: number): void }>();
  private child(metric: Counter | Histogram, ...labels: string[]): { inc(n?: number): void; observe(v: number): void } {
    const key = `${(metric as unknown as { name: string }).name}\0${labels.join('\0')}`;
    let child = this.children.get(key);
    if (child === undefined) {
      child = metric.labels(...labels) as unknown as { inc(n?: number): void; observe(v: number): void };
      this.children.set(key, child);
    }
    return child;
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
