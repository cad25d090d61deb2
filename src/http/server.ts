/**
 * The servers of `serve`, built apart from starting them. createWebhookServer returns the HTTPS
 * admission server with listen, rotateCertificate, drain and close; createHealthServer the plain
 * HTTP one for probes and metrics. Under each Fastify app is a Node server made here, so that every
 * phase of a connection has a bound (a ConnectionTracker, connections.ts) and the webhook port's
 * memory has one too (BodyAdmission, bodies.ts). Nothing outside reaches into these servers.
 *
 * Node's own settings that stay: headersTimeout (the one bound the tracker cannot enforce, a
 * second request's head on a kept-alive connection, checked every CHECK_INTERVAL_MS; Node's
 * default interval of 30 s made a 30 s deadline act as 30 to 60 s) and maxConnections. Node's
 * requestTimeout and keepAliveTimeout are off: the tracker enforces both on the injected clock.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { withReviewLog, REVIEW_MESSAGE } from '../admission/logged.js';
import { withMetrics } from '../admission/measured.js';
import { review } from '../admission/review.js';
import { systemClock, type Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import type { WebhookMetrics } from '../metrics/metrics.js';
import type { Policy } from '../policy/schema.js';
import { serverTlsOptions, type TlsPair } from '../tls/material.js';
import { buildWebhookApp } from './app.js';
import { BodyAdmission, type BodyBudgetOptions } from './bodies.js';
import { CHECK_INTERVAL_MS, ConnectionTracker, HEADERS_TIMEOUT_MS, type ConnectionLimits } from './connections.js';
import { buildHealthApp } from './health.js';

/** CLOSE_IDLE_AGE_MS: when stopping, a connection without a request is closed once it is this old (a second to deliver the request it was opened for). */
export const CLOSE_IDLE_AGE_MS = 1000;

const NODE_HTTP_OPTIONS = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  requestTimeout: 0,
  keepAliveTimeout: 0,
  connectionsCheckingInterval: CHECK_INTERVAL_MS,
} as const;

/** WebhookServerOptions is what the admission server is built from. */
export interface WebhookServerOptions {
  /** policy returns the policy in force; called once per review, so a reload takes effect on the next one. */
  readonly policy: () => Policy;
  readonly tls: TlsPair;
  readonly log: Log;
  readonly clock?: Clock;
  readonly metrics?: WebhookMetrics;
  /** limits and budgets override the connection bounds and body budgets (tests). */
  readonly limits?: Partial<ConnectionLimits>;
  readonly budgets?: BodyBudgetOptions;
  /** collect runs after each large body's answer (a full garbage collection unless a test gives its own). */
  readonly collect?: () => void;
}

/** ServerState is what a server reports of its connections and requests. */
export interface ServerState {
  /** inFlight is the number of requests received and not yet answered or aborted. */
  readonly inFlight: number;
  /** open is the number of connections open. */
  readonly open: number;
  /** idle is the number of connections idle after an answer. */
  readonly idle: number;
  /** waiting is the number of requests waiting for room in a body budget. */
  readonly waiting: number;
  /** bodyBytes is the number of request body bytes in work now, by budget. */
  readonly bodyBytes: { readonly small: number; readonly large: number };
}

/** WebhookServer is the admission server, built and not yet listening. */
export interface WebhookServer {
  /** listen starts accepting on host:port and returns the port bound (port 0 picks one). */
  listen(port: number, host: string): Promise<number>;
  /** rotateCertificate serves a new certificate and key to new connections; open ones finish on the old. */
  rotateCertificate(pair: TlsPair): void;
  /** drain makes every answer from now on say `Connection: close`, so keep-alive clients reconnect (elsewhere, once endpoints are updated). */
  drain(): void;
  /**
   * close stops accepting, closes every connection without a request being answered (one still
   * in its handshake or head once it is CLOSE_IDLE_AGE_MS old), lets the others finish their
   * answer, and after graceMs closes those still open. It resolves once every connection is closed.
   */
  close(graceMs: number): Promise<void>;
  readonly state: ServerState;
  /** app is the Fastify instance, for inject in tests. */
  readonly app: FastifyInstance;
}

/** WebhookHttpsServer is Node's HTTPS server that calls onClose the moment it stops accepting, so that stopping can close idle connections right then. */
class WebhookHttpsServer extends HttpsServer {
  onClose: () => void = () => undefined;

  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.onClose();
    return this;
  }
}

function boundPort(app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port;
}

/** createWebhookServer builds the admission server: the review seam with its log line and metrics, behind a connection tracker and body admission. */
export function createWebhookServer(options: WebhookServerOptions): WebhookServer {
  const clock = options.clock ?? systemClock;
  const { log, metrics } = options;
  const { logger } = log;
  const tracker = new ConnectionTracker(clock, options.limits);
  const bodies = new BodyAdmission(options.budgets, options.collect);
  const state: ServerState = {
    get inFlight() { return tracker.inFlight; },
    get open() { return tracker.open; },
    get idle() { return tracker.idleCount; },
    get waiting() { return bodies.waiting; },
    get bodyBytes() { return bodies.bodyBytes; },
  };
  metrics?.observeServer(state);
  const measured = metrics === undefined ? review : withMetrics(review, metrics, clock);
  const reviewer = withReviewLog(measured, { line: log.infoLine(REVIEW_MESSAGE), logger, clock });
  let server: WebhookHttpsServer | undefined;
  const app = buildWebhookApp({
    review: (request) => reviewer(request, options.policy()),
    logger,
    ...(options.budgets?.bodyLimit !== undefined && { bodyLimit: options.budgets.bodyLimit }),
    ...(metrics !== undefined && { refusals: metrics }),
    serverFactory: (handler) => {
      server = new WebhookHttpsServer({ ...serverTlsOptions(options.tls), ...NODE_HTTP_OPTIONS });
      tracker.attach(server, (req, res) => bodies.admit(req, res, handler), true);
      return server;
    },
  });
  return {
    app,
    state,
    async listen(port, host) {
      await app.listen({ port, host });
      return boundPort(app);
    },
    rotateCertificate(pair) {
      server?.setSecureContext(serverTlsOptions(pair));
    },
    drain() {
      tracker.drain();
    },
    async close(graceMs) {
      if (server?.listening !== true) {
        await app.close();
        tracker.stop();
        return;
      }
      const forced = clock.setTimeout(() => {
        logger.warn({ open: tracker.open, inFlight: tracker.inFlight }, 'shutdown grace period over: closing the connections still open');
        tracker.closeAll();
      }, graceMs);
      let cancelSweep = (): void => undefined;
      server.onClose = () => {
        // Not accepting any more: close every connection with no request being answered now, and
        // the younger ones once they are CLOSE_IDLE_AGE_MS old; the others close after their answer.
        logger.info({ open: tracker.closeIdle(CLOSE_IDLE_AGE_MS), inFlight: tracker.inFlight }, 'stopped accepting connections');
        cancelSweep = clock.setInterval(() => void tracker.closeIdle(CLOSE_IDLE_AGE_MS), CLOSE_IDLE_AGE_MS / 4);
      };
      try {
        await app.close();
      } finally {
        cancelSweep();
        forced();
        tracker.stop();
      }
    },
  };
}

/** HealthServerOptions is what the health server is built from. */
export interface HealthServerOptions {
  readonly logger: Log['logger'];
  /** ready returns undefined when ready, else the reason it is not. */
  readonly ready: () => string | undefined;
  /** metrics, when given, is served at GET /metrics. */
  readonly metrics?: Registry;
  readonly clock?: Clock;
  readonly limits?: Partial<ConnectionLimits>;
}

/** HealthServer is the plain-HTTP health server, built and not yet listening. */
export interface HealthServer {
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
  readonly state: Pick<ServerState, 'inFlight' | 'open' | 'idle'>;
  readonly app: FastifyInstance;
}

/** createHealthServer builds the health server, with the webhook port's connection bounds. */
export function createHealthServer(options: HealthServerOptions): HealthServer {
  const tracker = new ConnectionTracker(options.clock ?? systemClock, options.limits);
  const app = buildHealthApp({
    logger: options.logger,
    ready: options.ready,
    ...(options.metrics !== undefined && { metrics: options.metrics }),
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const server = createHttpServer(NODE_HTTP_OPTIONS);
      tracker.attach(server, handler, false);
      return server;
    },
  });
  return {
    app,
    state: {
      get inFlight() { return tracker.inFlight; },
      get open() { return tracker.open; },
      get idle() { return tracker.idleCount; },
    },
    async listen(port, host) {
      await app.listen({ port, host });
      return boundPort(app);
    },
    async close() {
      try {
        await app.close();
      } finally {
        tracker.stop();
      }
    },
  };
}
