/**
 * The HTTP servers under the Fastify apps, built here so that every phase of a connection has a
 * bound, and the webhook port's memory has one too.
 *
 * | phase (both ports unless said)                      | bound                          |
 * |-----------------------------------------------------|--------------------------------|
 * | TLS handshake (webhook port)                        | TLS_HANDSHAKE_TIMEOUT_MS, 10 s |
 * | request line and headers                            | HEADERS_TIMEOUT_MS, 10 s       |
 * | whole request: headers, waiting for room, and body  | REQUEST_TIMEOUT_MS, 30 s       |
 * | idle keep-alive connection                          | KEEP_ALIVE_TIMEOUT_MS, 72 s    |
 *
 * Node checks the header and request deadlines every CHECK_INTERVAL_MS, so each is kept to within
 * a second (Node's default interval is 30 s, which made a 30 s deadline act as 30 to 60 s).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { serverTlsOptions, type TlsPair } from '../tls/material.js';
import { ByteBudget, type Release } from './budget.js';

/** TLS_HANDSHAKE_TIMEOUT_MS bounds the TLS handshake (Node's default is 120 s). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** HEADERS_TIMEOUT_MS bounds the request line and headers; the API server sends them at once. */
export const HEADERS_TIMEOUT_MS = 10_000;
/**
 * REQUEST_TIMEOUT_MS bounds a whole request. The API server gives a webhook at most
 * timeoutSeconds, 30 s at most (admissionregistration.k8s.io/v1 MutatingWebhook.timeoutSeconds),
 * so a request still incomplete after that has no one waiting for its answer.
 */
export const REQUEST_TIMEOUT_MS = 30_000;
/** KEEP_ALIVE_TIMEOUT_MS closes an idle keep-alive connection (Fastify's default). */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** CHECK_INTERVAL_MS is how often Node checks the header and request deadlines. */
export const CHECK_INTERVAL_MS = 1_000;
/**
 * MAX_IDLE_CONNECTIONS: beyond this many idle keep-alive connections the least recently used is
 * closed. An idle TLS connection costs tens of kilobytes; the API server keeps at most 25 idle
 * connections per webhook host (k8s.io/apimachinery/pkg/util/net SetTransportDefaults,
 * DefaultMaxIdleConnsPerHost), so a few API servers stay far below the cap.
 */
export const MAX_IDLE_CONNECTIONS = 256;
/**
 * MAX_CONNECTIONS bounds the open connections; Node closes any beyond it at once. The API server
 * opens one per concurrent call (at most its --max-mutating-requests-inflight, 200 by default).
 */
export const MAX_CONNECTIONS = 1024;

const HTTP_OPTIONS = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  connectionsCheckingInterval: CHECK_INTERVAL_MS,
} as const;

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
 * and the answer; see the README's memory budget for the measurements.
 */
export const DEFAULT_LARGE_BUDGET = DEFAULT_BODY_LIMIT;

/** BodyBudgetOptions sizes the two budgets. */
export interface BodyBudgetOptions {
  readonly bodyLimit?: number;
  readonly smallBudget?: number;
  readonly largeBudget?: number;
}

/**
 * RequestGate sits in front of the webhook's Fastify handler on the real server. Per request it
 * counts the request in flight until its response closes (answered or aborted, pipelined ones
 * included), holds the body until its budget has room (TCP backpressure meanwhile), and while
 * draining answers with `Connection: close`. It also tracks connections, so that stopping can
 * close at once every connection that has no request being answered.
 */
export class RequestGate {
  private inFlightCount = 0;
  private drainingNow = false;
  private readonly bodyLimit: number;
  private readonly small: ByteBudget;
  private readonly large: ByteBudget;
  /** Connections by their TCP socket; the value is the number of requests being answered on it. */
  private readonly connections = new Map<Socket, number>();
  /** Connections that have answered a request and wait for the next, least recently used first. */
  private readonly idle = new Set<Socket>();
  private readonly openedAt = new WeakMap<Socket, number>();
  /** Responses not yet closed, so that drain() can mark those already under way too. */
  private readonly answering = new Set<ServerResponse>();

  constructor(options: BodyBudgetOptions = {}) {
    this.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.small = new ByteBudget(options.smallBudget ?? DEFAULT_SMALL_BUDGET);
    this.large = new ByteBudget(options.largeBudget ?? DEFAULT_LARGE_BUDGET);
  }

  /** inFlight is the number of requests received and not yet answered or aborted. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** waiting is the number of requests waiting for room in a body budget. */
  get waiting(): number {
    return this.small.queued + this.large.queued;
  }

  /** bodyBytes is the number of body bytes in work now, by budget. */
  get bodyBytes(): { small: number; large: number } {
    return { small: this.small.inUse, large: this.large.inUse };
  }

  /** drain makes every response from now on close its connection, so that clients reconnect elsewhere. */
  drain(): void {
    this.drainingNow = true;
    for (const res of this.answering) if (!res.headersSent) res.setHeader('connection', 'close');
  }

  /**
   * closeIdle destroys the connections with no request being answered that are idle after an
   * answer, or older than minAgeMs (still in the TLS handshake or sending headers); a younger one
   * is left its moment to deliver the request it was opened for. Call it once the server has
   * stopped accepting, until it returns 0 left; connections with a request end after its answer
   * (Connection: close). It returns the number of connections still open.
   */
  closeIdle(minAgeMs = 0): number {
    const now = Date.now();
    for (const [socket, busy] of this.connections) {
      if (busy === 0 && (this.idle.has(socket) || now - (this.openedAt.get(socket) ?? 0) >= minAgeMs)) socket.destroy();
    }
    return this.connections.size;
  }

  /** attach wires the gate to a server: connection tracking and the request wrapper around handler. */
  attach(server: HttpServer | HttpsServer, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
    server.maxConnections = MAX_CONNECTIONS;
    server.on('connection', (socket: Socket) => {
      this.connections.set(socket, 0);
      this.openedAt.set(socket, Date.now());
      socket.once('close', () => {
        this.connections.delete(socket);
        this.idle.delete(socket);
      });
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.admit(req, res, handler));
  }

  private becameIdle(socket: Socket): void {
    this.idle.add(socket);
    if (this.idle.size <= MAX_IDLE_CONNECTIONS) return;
    const oldest = this.idle.values().next().value as Socket;
    this.idle.delete(oldest);
    oldest.destroy();
  }

  private admit(req: IncomingMessage, res: ServerResponse, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
    // The TCP socket under a TLS socket is its _parent; a plain socket is its own.
    const raw = (req.socket as TLSSocket & { _parent?: Socket })._parent ?? req.socket;
    this.inFlightCount++;
    const busy = this.connections.get(raw);
    if (busy !== undefined) this.connections.set(raw, busy + 1);
    this.idle.delete(raw);
    if (this.drainingNow) res.setHeader('connection', 'close');
    this.answering.add(res);
    let release: Release | undefined;
    let cancel: (() => void) | undefined;
    res.once('close', () => {
      this.inFlightCount--;
      this.answering.delete(res);
      const count = this.connections.get(raw);
      if (count !== undefined) {
        this.connections.set(raw, count - 1);
        if (count === 1 && !raw.destroyed) this.becameIdle(raw);
      }
      cancel?.();
      if (release !== undefined && large) collectGarbage();
      release?.();
    });

    const bytes = bodyBytes(req, this.bodyLimit);
    if (bytes === 0) {
      handler(req, res);
      return;
    }
    const large = bytes > SMALL_BODY;
    // A large review takes the whole large budget: one at a time, since deciding one holds several
    // times its size (the README's memory budget).
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
 * collectGarbage runs a full collection when the process was started with --expose-gc (the
 * image's NODE_OPTIONS): after a large review, before the next one is let in, so that the heap
 * holds one large review's garbage at most instead of letting several pile up before V8 collects
 * them. Large reviews are rare; a collection takes a few milliseconds.
 */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
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

/** webhookServerFactory returns a Fastify serverFactory for the HTTPS webhook port, behind the gate. */
export function webhookServerFactory(tls: TlsPair, gate: RequestGate) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void): HttpsServer => {
    const server = createHttpsServer({ ...serverTlsOptions(tls), ...HTTP_OPTIONS, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS });
    gate.attach(server, handler);
    return server;
  };
}

/** healthServerFactory returns a Fastify serverFactory for the plain-HTTP health port, with the same timeouts. */
export function healthServerFactory() {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void): HttpServer => createHttpServer(HTTP_OPTIONS, handler);
}
