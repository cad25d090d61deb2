/**
 * Counters and a histogram for the hot path: their label sets are fixed when they are made, so a
 * caller addresses a series by its index, and recording is an array increment. prom-client's own
 * metrics hash the label object on every inc and observe, even through a child; these render
 * the same exposition text (a test compares them line for line) from plain arrays, at scrape
 * time.
 */
import type { Registry } from 'prom-client';

/** SeriesOptions names a metric and lists its label names and, per series index, the label values. */
export interface SeriesOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** series lists the label values of each series, in the order of labelNames; a series is addressed by its index here. */
  readonly series: readonly (readonly string[])[];
  readonly registry: Registry;
}

interface Value {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
  readonly sharedLabels?: Record<string, string>;
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((name, i) => [name, values[i] ?? '']));
}

/** register adds a metric that renders itself when scraped, through the registry's documented contract (name, help, type, get). */
function register(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => Value[]): void {
  const metric = { name, help, type, aggregator: 'sum', get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }) };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** SeriesCounter is a counter over a fixed set of label sets; a series appears once it has been counted. */
export class SeriesCounter {
  private readonly counts: Float64Array;
  private readonly seen: Uint8Array;

  constructor(options: SeriesOptions) {
    const { series, labelNames } = options;
    this.counts = new Float64Array(series.length);
    this.seen = new Uint8Array(series.length);
    const labels = series.map((values) => labelsOf(labelNames, values));
    register(options.registry, options.name, options.help, 'counter', () => {
      const out: Value[] = [];
      for (let i = 0; i < labels.length; i++) if (this.seen[i] === 1) out.push({ value: this.counts[i] ?? 0, labels: labels[i] ?? {} });
      return out;
    });
  }

  /** inc adds by (1 unless given) to the series at index. */
  inc(index: number, by = 1): void {
    this.counts[index] = (this.counts[index] ?? 0) + by;
    this.seen[index] = 1;
  }
}

/** SeriesHistogram is a histogram over a fixed set of label sets, with prom-client's bucket semantics (le is inclusive). */
export class SeriesHistogram {
  private readonly bounds: Float64Array;
  /** buckets holds, per series, the count of observations in each bucket (not cumulative), the last one past every bound. */
  private readonly buckets: Float64Array;
  private readonly sums: Float64Array;
  private readonly counts: Float64Array;

  constructor(options: SeriesOptions & { readonly buckets: readonly number[] }) {
    const { series, labelNames, name } = options;
    this.bounds = Float64Array.from(options.buckets);
    const width = this.bounds.length + 1;
    this.buckets = new Float64Array(series.length * width);
    this.sums = new Float64Array(series.length);
    this.counts = new Float64Array(series.length);
    const shared = series.map((values) => labelsOf(labelNames, values));
    register(options.registry, name, options.help, 'histogram', () => {
      const out: Value[] = [];
      for (let s = 0; s < shared.length; s++) {
        const count = this.counts[s] ?? 0;
        if (count === 0) continue;
        const sharedLabels = shared[s] ?? {};
        let cumulative = 0;
        for (let b = 0; b < this.bounds.length; b++) {
          cumulative += this.buckets[s * width + b] ?? 0;
          out.push({ value: cumulative, labels: { le: this.bounds[b] ?? 0 }, metricName: `${name}_bucket`, sharedLabels });
        }
        out.push({ value: count, labels: { le: '+Inf' }, metricName: `${name}_bucket`, sharedLabels });
        out.push({ value: this.sums[s] ?? 0, labels: {}, metricName: `${name}_sum`, sharedLabels });
        out.push({ value: count, labels: {}, metricName: `${name}_count`, sharedLabels });
      }
      return out;
    });
  }

  /** observe records value in the series at index. */
  observe(index: number, value: number): void {
    const { bounds } = this;
    let b = 0;
    while (b < bounds.length && value > (bounds[b] ?? 0)) b++;
    const cell = index * (bounds.length + 1) + b;
    this.buckets[cell] = (this.buckets[cell] ?? 0) + 1;
    this.sums[index] = (this.sums[index] ?? 0) + value;
    this.counts[index] = (this.counts[index] ?? 0) + 1;
  }
}
