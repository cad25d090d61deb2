/**
 * BodyAdmission lets a request's body be read only once its budget has room (budget.ts): bodies
 * up to SMALL_BODY share the small budget, a larger one takes the whole large budget, so one
 * large review is in work at a time, and a full garbage collection follows each. A request that
 * waits is not read: TCP flow control slows its client and its bytes stay in kernel buffers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ByteBudget, type Release } from './budget.js';

/**
 * DEFAULT_BODY_LIMIT, the largest review accepted. The API server decodes at most 3 MiB of
 * request body per object (k8s.io/apiserver/pkg/server/config.go, MaxRequestBodyBytes, "2x" etcd's
 * 1.5 MiB request limit), and an UPDATE's review carries the object and the old object, each
 * JSON-encoded, plus a small envelope: 2 × 3 MiB + 1 MiB of headroom.
 */
export const DEFAULT_BODY_LIMIT = 7 * 1024 * 1024;
/** SMALL_BODY: bodies up to this size use the small budget; every realistic Service or Gateway review is far below it. */
export const SMALL_BODY = 256 * 1024;
/**
 * DEFAULT_SMALL_BUDGET bounds the bytes of small bodies in work at once: 8 MiB is two thousand
 * 4 KiB reviews, more than the throughput of one process at any moment.
 */
export const DEFAULT_SMALL_BUDGET = 8 * 1024 * 1024;
/**
 * DEFAULT_LARGE_BUDGET is the room for large bodies: each takes all of it, so one large review is
 * in work at a time. Deciding a review holds several times its size in parsed objects, the patch
 * and the answer; see docs/operations.md, "Memory budget", for the measurements.
 */
export const DEFAULT_LARGE_BUDGET = DEFAULT_BODY_LIMIT;

/** BodyBudgetOptions sizes the two budgets. */
export interface BodyBudgetOptions {
  readonly bodyLimit?: number;
  readonly smallBudget?: number;
  readonly largeBudget?: number;
}

/**
 * collectGarbage runs a full collection when the process has --expose-gc (serve makes sure it
 * has: runtime/memory.ts): after a large review, before the next one is let in, so that the heap
 * holds one large review's garbage at most instead of letting several pile up before V8 collects
 * them. Large reviews are rare; a collection takes a few milliseconds.
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** BodyAdmission holds each request with a body until its budget has room. */
export class BodyAdmission {
  private readonly bodyLimit: number;
  private readonly small: ByteBudget;
  private readonly large: ByteBudget;

  /** collect runs after each large body's answer (collectGarbage unless a test gives its own). */
  constructor(
    options: BodyBudgetOptions = {},
    private readonly collect: () => void = collectGarbage,
  ) {
    this.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.small = new ByteBudget(options.smallBudget ?? DEFAULT_SMALL_BUDGET);
    this.large = new ByteBudget(options.largeBudget ?? DEFAULT_LARGE_BUDGET);
  }

  /** waiting is the number of requests waiting for room in a body budget. */
  get waiting(): number {
    return this.small.queued + this.large.queued;
  }

  /** bodyBytes is the number of body bytes in work now, by budget. */
  get bodyBytes(): { small: number; large: number } {
    return { small: this.small.inUse, large: this.large.inUse };
  }

  /** admit calls handler once the request's body has room, and gives the room back when its response closes. */
  admit(req: IncomingMessage, res: ServerResponse, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
    const bytes = bodyBytes(req, this.bodyLimit);
    if (bytes === 0) {
      handler(req, res);
      return;
    }
    const large = bytes > SMALL_BODY;
    let release: Release | undefined;
    let cancel: (() => void) | undefined;
    res.on('close', () => {
      cancel?.();
      if (release === undefined) return;
      if (large) this.collect();
      release();
    });
    // A large review takes the whole large budget: one at a time, since deciding one holds several
    // times its size (docs/operations.md, "Memory budget").
    cancel = (large ? this.large : this.small).acquire(large ? this.large.capacity : bytes, (granted) => {
      cancel = undefined;
      if (res.closed) {
        granted();
        return;
      }
      release = granted;
      handler(req, res);
    });
  }
}

/**
 * bodyBytes is what a request's body will hold: its Content-Length, the whole limit for a chunked
 * body of unknown length, and 0 when there is no body or when it is over the limit (Fastify
 * refuses it with 413 before reading it).
 */
function bodyBytes(req: IncomingMessage, limit: number): number {
  const length = req.headers['content-length'];
  if (length !== undefined) {
    const n = Number(length);
    return Number.isSafeInteger(n) && n > 0 && n <= limit ? n : 0;
  }
  return req.headers['transfer-encoding'] === undefined ? 0 : limit;
}
