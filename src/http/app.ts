/**
 * buildWebhookApp returns the admission Fastify instance; it never listens. The entry point
 * (cli/serve.ts) passes the TLS material, the logger and the policy source, and starts it.
 *
 * Outcome → HTTP status:
 * | outcome                                         | status | body                              |
 * |-------------------------------------------------|--------|-----------------------------------|
 * | a review, mutated or not                        | 200    | AdmissionReview, allowed: true    |
 * | body not JSON, empty, or not an AdmissionReview | 400    | { code, message }                 |
 * | content type other than application/json        | 415    | { code, message }                 |
 * | body over bodyLimit                             | 413    | { code, message }                 |
 * | unknown path or method                          | 404    | { code, message }                 |
 * | a bug                                           | 500    | { code, message }                 |
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { decide, userMessages } from '../core/decide.js';
import { ErrorCode, isWebhookError, WebhookError, type ErrorKind } from '../errors.js';
import type { Policy } from '../policy/schema.js';
import type { WebhookMetrics } from './metrics.js';
import { decodeReview, encodeResponse } from './review.js';

/**
 * DEFAULT_BODY_LIMIT: an AdmissionReview carries the object and, on UPDATE, the old object. etcd
 * refuses requests over 1.5 MiB by default, so two objects plus JSON overhead stay well under 7 MiB.
 */
export const DEFAULT_BODY_LIMIT = 7 * 1024 * 1024;

/** WebhookAppOptions configures buildWebhookApp. */
export interface WebhookAppOptions {
  /** policy returns the policy in force; called once per review, so a reload takes effect on the next one. */
  readonly policy: () => Policy;
  readonly logger: Logger;
  /** https is the TLS configuration; absent for plain HTTP (tests with inject). */
  readonly https?: FastifyServerOptions & { https: object };
  readonly bodyLimit?: number;
  /** now returns a monotonic time in milliseconds; injected for tests. */
  readonly now?: () => number;
  /** metrics records reviews, errors and requests in flight; optional. */
  readonly metrics?: WebhookMetrics;
}

const FASTIFY_CODES: Record<string, ErrorKind> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCode.BODY_TOO_LARGE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCode.BODY_NOT_JSON,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCode.BODY_NOT_JSON,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCode.BODY_NOT_JSON,
};

/** toWebhookError maps anything thrown while handling a request to the catalogue: the one place errors become responses. */
export function toWebhookError(err: unknown): WebhookError {
  if (isWebhookError(err)) return err;
  const fastifyCode = (err as FastifyError | undefined)?.code;
  const kind = fastifyCode === undefined ? undefined : FASTIFY_CODES[fastifyCode];
  if (kind !== undefined) return new WebhookError(kind, (err as Error).message, { cause: err });
  if (err instanceof SyntaxError) return new WebhookError(ErrorCode.BODY_NOT_JSON, `body is not valid JSON: ${err.message}`, { cause: err });
  const status = (err as FastifyError | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new WebhookError({ code: ErrorCode.REVIEW_INVALID.code, status }, (err as Error).message, { cause: err });
  }
  return new WebhookError(ErrorCode.INTERNAL, 'internal error', { cause: err });
}

/** buildWebhookApp builds the admission server: POST /mutate. */
export function buildWebhookApp(options: WebhookAppOptions): FastifyInstance {
  const now = options.now ?? (() => performance.now());
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Every review logs its own uid; a child logger per request would only add an allocation.
    childLoggerFactory: (logger) => logger,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // The API server waits at most timeoutSeconds (≤ 30 s); a client slower than that is not one.
    requestTimeout: 30_000,
    connectionTimeout: 30_000,
    // While closing, requests on connections already open are still answered: close() waits for them.
    return503OnClosing: false,
    ...options.https,
  }) as unknown as FastifyInstance;

  // Only application/json is an AdmissionReview; Fastify would otherwise also parse text/plain.
  app.removeContentTypeParser('text/plain');

  const { metrics } = options;
  if (metrics !== undefined) {
    // A request ends either with a response or with an abort; counted once whichever comes.
    const open = new WeakSet<object>();
    const finish = (request: object): void => {
      if (open.delete(request)) metrics.requestFinished();
    };
    app.addHook('onRequest', (request, _reply, done) => {
      open.add(request);
      metrics.requestStarted();
      done();
    });
    app.addHook('onResponse', (request, _reply, done) => {
      finish(request);
      done();
    });
    app.addHook('onRequestAbort', (request, done) => {
      finish(request);
      done();
    });
  }

  app.setErrorHandler((err, request, reply) => {
    const mapped = toWebhookError(err);
    metrics?.error(mapped.code);
    const level = mapped.status >= 500 ? 'error' : 'warn';
    request.log[level]({ code: mapped.code, err: mapped.status >= 500 ? err : undefined, msg: mapped.message }, 'request refused');
    void reply.code(mapped.status).send({ code: mapped.code, message: mapped.message });
  });
  app.setNotFoundHandler((request, reply) => {
    metrics?.error(ErrorCode.NOT_FOUND.code);
    void reply
      .code(ErrorCode.NOT_FOUND.status)
      .send({ code: ErrorCode.NOT_FOUND.code, message: `no route ${request.method} ${request.url}; the webhook serves POST /mutate` });
  });

  app.post('/mutate', async (request, reply) => {
    const started = now();
    const review = decodeReview(request.body);
    const decision = decide({ object: review.object, operation: review.operation, policy: options.policy(), namespace: review.namespace });
    const durationMs = Math.round((now() - started) * 1000) / 1000;
    request.log.info(
      {
        uid: review.uid,
        kind: review.kind.kind,
        namespace: review.namespace,
        name: review.name,
        operation: review.operation,
        dryRun: review.dryRun,
        decision: decision.outcome,
        probe: decision.probe,
        changes: decision.changes.length,
        warnings: decision.warnings.length,
        durationMs,
      },
      'review',
    );
    if (decision.patch.length > 0 || decision.notes.length > 0) {
      request.log.debug({ uid: review.uid, patch: decision.patch, notes: decision.notes }, 'review detail');
    }
    const messages = userMessages(decision);
    metrics?.review({
      // A bounded label set: the kind comes from the request, and any client can send one.
      kind: review.kind.kind === 'Service' || review.kind.kind === 'Gateway' ? review.kind.kind : 'other',
      operation: review.operation,
      decision: decision.outcome,
      durationMs,
      patched: decision.patch.length > 0,
      warnings: messages.length,
    });
    return reply.send(encodeResponse(review.uid, decision.patch, messages));
  });
  return app;
}
