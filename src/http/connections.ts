/**
 * ConnectionTracker follows every connection of one server through its phases, on an injected
 * clock, and enforces a bound on each:
 *
 * | phase                                                      | bound                           | then                     |
 * |------------------------------------------------------------|---------------------------------|--------------------------|
 * | opened, no request head yet (TLS handshake and headers)    | headersMs, HEADERS_TIMEOUT_MS   | 408 if nothing was sent, closed |
 * | a request being answered (its body, a wait for room, the answer) | requestMs, REQUEST_TIMEOUT_MS | 408 if nothing was sent, closed |
 * | idle after an answer (keep-alive)                          | idleMs, KEEP_ALIVE_TIMEOUT_MS   | closed                   |
 * | idle, beyond maxIdle idle connections                      | the least recently used first   | closed                   |
 * | open, beyond maxConnections                                | at once (Node's maxConnections) | closed                   |
 *
 * The deadlines are checked every checkEveryMs, so each holds to within that interval (a second).
 * While draining, every answer says `Connection: close`; closeIdle closes, when stopping, every
 * connection that has no request being answered.
 *
 * One thing only Node's HTTP parser sees: the start of a second request's head on a kept-alive
 * connection. Node's own headersTimeout (server.ts) bounds that one, the same 10 s.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Cancel, Clock } from '../clock.js';

/** HEADERS_TIMEOUT_MS bounds the TLS handshake and the first request's head; the API server sends them at once. */
export const HEADERS_TIMEOUT_MS = 10_000;
/**
 * REQUEST_TIMEOUT_MS bounds a request from its head to its answer. The API server gives a webhook
 * at most timeoutSeconds, 30 s at most (admissionregistration.k8s.io/v1
 * MutatingWebhook.timeoutSeconds), so a request still unanswered after that has no one waiting.
 */
export const REQUEST_TIMEOUT_MS = 30_000;
/** KEEP_ALIVE_TIMEOUT_MS closes an idle keep-alive connection (Fastify's default); the API server's own idle timeout is 90 s. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** CHECK_INTERVAL_MS is how often the deadlines are checked (Node's own default interval is 30 s). */
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

/** ConnectionLimits are the bounds a tracker enforces. */
export interface ConnectionLimits {
  readonly headersMs: number;
  readonly requestMs: number;
  readonly idleMs: number;
  readonly maxIdle: number;
  readonly maxConnections: number;
  readonly checkEveryMs: number;
}

/** DEFAULT_LIMITS are the bounds of both ports. */
export const DEFAULT_LIMITS: ConnectionLimits = {
  headersMs: HEADERS_TIMEOUT_MS,
  requestMs: REQUEST_TIMEOUT_MS,
  idleMs: KEEP_ALIVE_TIMEOUT_MS,
  maxIdle: MAX_IDLE_CONNECTIONS,
  maxConnections: MAX_CONNECTIONS,
  checkEveryMs: CHECK_INTERVAL_MS,
};

/** TIMEOUT_RESPONSE is what a connection cut off at a deadline is told, when nothing has been sent on it yet (as Node does for its own). */
const TIMEOUT_RESPONSE = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

interface Connection {
  /** tcp is the accepted socket; http is the one HTTP runs on (the TLS socket over tcp, or tcp itself), once known. */
  readonly tcp: Socket;
  http: Socket | undefined;
  readonly openedAt: number;
  /** answering is the number of requests being answered on it (more than one only when a client pipelines). */
  answering: number;
  /** current is the response being answered first, and since when its request is here (NaN when none). */
  current: ServerResponse | undefined;
  currentSince: number;
  /** pipelined are the requests after current, oldest first; only a client that pipelines ever has any. */
  pipelined: { readonly res: ServerResponse; readonly since: number }[] | undefined;
  /** idle is true between an answer and the next request; idleSince is when the last answer finished (NaN before the first request). */
  idle: boolean;
  idleSince: number;
}

/**
 * ConnectionTracker tracks the connections of one server; attach it before the server listens.
 * Per request it only writes fields of its connection's record: collections that grow and shrink
 * with every request (a set of responses, a set of idle connections) would reallocate their
 * tables all the time, and every table that outlives a scavenge is promoted to the old
 * generation, which then needs marking.
 */
export class ConnectionTracker {
  private readonly limits: ConnectionLimits;
  private readonly byTcp = new Map<Socket, Connection>();
  private readonly byHttp = new WeakMap<Socket, Connection>();
  /** waitingForTls links an accepted socket to its TLS socket, by the peer's address and port. */
  private readonly waitingForTls = new Map<string, Connection>();
  private idleConnections = 0;
  private requests = 0;
  private draining = false;
  private cancelCheck: Cancel | undefined;

  constructor(
    private readonly clock: Clock,
    limits: Partial<ConnectionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** inFlight is the number of requests received and not yet answered or aborted. */
  get inFlight(): number {
    return this.requests;
  }

  /** open is the number of connections open now (a connection closed by the tracker stops counting at once). */
  get open(): number {
    let open = 0;
    for (const connection of this.byTcp.values()) if (!connection.tcp.destroyed) open++;
    return open;
  }

  /** idleCount is the number of connections idle after an answer. */
  get idleCount(): number {
    return this.idleConnections;
  }

  /**
   * attach wires the tracker to a server: connections on `connection` (and, for TLS, the socket
   * of `secureConnection`), and handler called for each request once it is counted. It starts the
   * deadline checks; stop() ends them.
   */
  attach(server: NetServer, handler: (req: IncomingMessage, res: ServerResponse) => void, tls: boolean): void {
    server.maxConnections = this.limits.maxConnections;
    server.on('connection', (socket: Socket) => this.opened(socket, tls));
    if (tls) server.on('secureConnection', (socket: Socket) => this.secured(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.received(req, res);
      handler(req, res);
    });
    this.cancelCheck ??= this.clock.setInterval(() => this.check(), this.limits.checkEveryMs, { unref: true });
  }

  /** stop ends the deadline checks. */
  stop(): void {
    this.cancelCheck?.();
    this.cancelCheck = undefined;
  }

  /** drain makes every response from now on close its connection, so that clients reconnect elsewhere. */
  drain(): void {
    this.draining = true;
    const close = (res: ServerResponse | undefined): void => {
      if (res !== undefined && !res.headersSent) res.setHeader('connection', 'close');
    };
    for (const connection of this.byTcp.values()) {
      close(connection.current);
      for (const { res } of connection.pipelined ?? []) close(res);
    }
  }

  /**
   * closeIdle closes the connections with no request being answered that are idle after an
   * answer, or at least minAgeMs old (still in the TLS handshake or sending a head); a younger one
   * is left its moment to deliver the request it was opened for. Call it once the server has
   * stopped accepting, until it returns 0; connections with a request end after its answer
   * (Connection: close). It returns the number of connections still open.
   */
  closeIdle(minAgeMs = 0): number {
    const now = this.clock.now();
    for (const connection of this.byTcp.values()) {
      if (connection.answering === 0 && (connection.idle || now - connection.openedAt >= minAgeMs)) connection.tcp.destroy();
    }
    return this.open;
  }

  /** closeAll closes every connection at once, answered or not. */
  closeAll(): void {
    for (const connection of this.byTcp.values()) connection.tcp.destroy();
  }

  /** check closes every connection past the bound of its phase. */
  check(): void {
    const now = this.clock.now();
    const { headersMs, requestMs, idleMs } = this.limits;
    for (const connection of this.byTcp.values()) {
      if (connection.answering > 0) {
        if (now - connection.currentSince >= requestMs) this.expire(connection);
      } else if (Number.isNaN(connection.idleSince)) {
        if (now - connection.openedAt >= headersMs) this.expire(connection);
      } else if (now - connection.idleSince >= idleMs) {
        connection.tcp.destroy();
      }
    }
  }

  private expire(connection: Connection): void {
    const socket = connection.http ?? connection.tcp;
    // Like Node's own timeouts: a 408 only on a connection where nothing has been sent yet, for a client that waits for an answer.
    if (connection.http !== undefined && socket.writable && socket.bytesWritten === 0) socket.write(TIMEOUT_RESPONSE);
    socket.destroy();
    connection.tcp.destroy();
  }

  private opened(tcp: Socket, tls: boolean): void {
    const connection: Connection = { tcp, http: tls ? undefined : tcp, openedAt: this.clock.now(), answering: 0, current: undefined, currentSince: NaN, pipelined: undefined, idle: false, idleSince: NaN };
    this.byTcp.set(tcp, connection);
    const peer = tls ? peerOf(tcp) : undefined;
    if (peer === undefined) this.byHttp.set(tcp, connection);
    else this.waitingForTls.set(peer, connection);
    tcp.once('close', () => {
      this.byTcp.delete(tcp);
      if (connection.idle) this.idleConnections--;
      connection.idle = false;
      if (peer !== undefined && this.waitingForTls.get(peer) === connection) this.waitingForTls.delete(peer);
    });
  }

  private secured(socket: Socket): void {
    const peer = peerOf(socket);
    const connection = peer === undefined ? undefined : this.waitingForTls.get(peer);
    if (connection === undefined || peer === undefined) return;
    this.waitingForTls.delete(peer);
    connection.http = socket;
    this.byHttp.set(socket, connection);
  }

  private received(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    if (this.draining) res.setHeader('connection', 'close');
    const connection = this.byHttp.get(req.socket);
    if (connection === undefined) {
      res.on('close', () => this.requests--);
      return;
    }
    const now = this.clock.now();
    if (connection.idle) {
      connection.idle = false;
      this.idleConnections--;
    }
    if (connection.answering++ === 0) {
      connection.current = res;
      connection.currentSince = now;
    } else {
      (connection.pipelined ??= []).push({ res, since: now });
    }
    // on rather than once: a response closes once, and once's wrapper and its removal cost on every request.
    res.on('close', () => {
      this.requests--;
      connection.answering--;
      const next = connection.pipelined?.shift();
      connection.current = next?.res;
      connection.currentSince = next?.since ?? NaN;
      if (connection.answering === 0 && !connection.tcp.destroyed) this.becameIdle(connection);
    });
  }

  private becameIdle(connection: Connection): void {
    connection.idle = true;
    connection.idleSince = this.clock.now();
    if (++this.idleConnections <= this.limits.maxIdle) return;
    // Over the cap: close the connection idle the longest. Only then are the connections scanned.
    let oldest: Connection | undefined;
    for (const candidate of this.byTcp.values()) {
      if (candidate.idle && !candidate.tcp.destroyed && (oldest === undefined || candidate.idleSince < oldest.idleSince)) oldest = candidate;
    }
    if (oldest === undefined) return;
    oldest.idle = false;
    this.idleConnections--;
    oldest.tcp.destroy();
  }
}

/** peerOf names a connection by its peer's address and port, the same on an accepted socket and the TLS socket over it. */
function peerOf(socket: Socket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined || remotePort === undefined ? undefined : `${remoteAddress}|${remotePort}`;
}
