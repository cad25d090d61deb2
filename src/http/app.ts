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
 * | Content-Encoding other than identity            | 415    | { code, message }                 |
 * | body over bodyLimit                             | 413    | { code, message }                 |
 * | unknown path or method                          | 404    | { code, message }                 |
 * | a bug                                           | 500    | { code, message }                 |
 * | the client hung up before the answer            | none   | counted in requests_aborted_total |
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { decide, userMessages } from '../decision/decide.js';
import { ErrorCode, isWebhookError, WebhookError, type ErrorKind } from '../errors.js';
import type { WebhookMetrics } from '../metrics/metrics.js';
import type { Policy } from '../policy/schema.js';
import type { TlsPair } from '../tls/material.js';
import { decodeReview, encodeResponse, type AdmissionRequest } from './review.js';
import { DEFAULT_BODY_LIMIT, RequestGate, webhookServerFactory } from './server.js';

export { DEFAULT_BODY_LIMIT } from './server.js';

/** WebhookAppOptions configures buildWebhookApp. */
export interface WebhookAppOptions {
  /** policy returns the policy in force; called once per review, so a reload takes effect on the next one. */
  readonly policy: () => Policy;
  readonly logger: Logger;
  /** tls is the serving certificate and key; absent for an app only used through inject (tests). */
  readonly tls?: TlsPair;
  /** gate bounds the body bytes in work and tracks requests and connections on the real server (server.ts); one is made when absent. */
  readonly gate?: RequestGate;
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

/**
 * isClientGone tells whether a request failed because its client hung up (reset, or closed while
 * the body was arriving): not a refusal, since nobody is there to be answered.
 */
function isClientGone(err: unknown, raw: { readonly destroyed: boolean; readonly complete: boolean }): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ECONNABORTED' || (raw.destroyed && !raw.complete);
}

/**
 * reviewLine renders the one info line per review in pino's JSON format, the user-controlled
 * strings escaped by JSON.stringify: built directly rather than through pino's generic object
 * serialisation, it is the cheapest part of the hot path that still says everything.
 */
function reviewLine(prefix: string, review: AdmissionRequest, outcome: string, probe: string | undefined, profile: string | undefined, changes: number, warnings: number, durationMs: number): string {
  return (
    `{"level":30,"time":${Date.now()}${prefix},"uid":${JSON.stringify(review.uid)},"kind":${JSON.stringify(review.kind.kind)}` +
    `${review.namespace === undefined ? '' : `,"namespace":${JSON.stringify(review.namespace)}`}${review.name === undefined ? '' : `,"name":${JSON.stringify(review.name)}`}` +
    `,"operation":"${review.operation}","dryRun":${review.dryRun},"decision":"${outcome}"${probe === undefined ? '' : `,"probe":${JSON.stringify(probe)}`}${profile === undefined ? '' : `,"profile":${JSON.stringify(profile)}`}` +
    `,"changes":${changes},"warnings":${warnings},"durationMs":${durationMs},"msg":"review"}\n`
  );
}

/** buildWebhookApp builds the admission server: POST /mutate. */
export function buildWebhookApp(options: WebhookAppOptions): FastifyInstance {
  const now = options.now ?? (() => performance.now());
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const gate = options.gate ?? new RequestGate({ bodyLimit });
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Every review logs its own uid; a child logger per request would only add an allocation.
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    // While closing, requests on connections already open are still answered: close() waits for them.
    return503OnClosing: false,
    // The timeouts, TLS settings and body budget of the real server live in server.ts.
    ...(options.tls !== undefined && { serverFactory: webhookServerFactory(options.tls, gate) }),
  }) as unknown as FastifyInstance;

  // Only application/json is an AdmissionReview; Fastify would otherwise also parse text/plain.
  app.removeContentTypeParser('text/plain');
  // The API server sends the body as it is; a compressed one would be parsed as garbage.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (request, body, done) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      done(new WebhookError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `Content-Encoding ${JSON.stringify(encoding).slice(0, 64)} is not supported; the body must be sent as it is (identity)`), undefined);
      return;
    }
    void parseJson(request, body as string, done);
  });

  const { metrics } = options;
  metrics?.observeGate(gate);

  app.setErrorHandler((err, request, reply) => {
    if (isClientGone(err, request.raw)) {
      metrics?.aborted();
      request.log.info({ reason: (err as Error).message }, 'client closed the connection before the answer');
      void reply.code(400).send({ code: ErrorCode.CLIENT_GONE.code, message: 'the client closed the connection' });
      return;
    }
    const mapped = toWebhookError(err);
    metrics?.error(mapped.code);
    const level = mapped.status >= 500 ? 'error' : 'warn';
    request.log[level]({ code: mapped.code, reason: mapped.message, err: mapped.status >= 500 ? err : undefined }, 'request refused');
    void reply.code(mapped.status).send({ code: mapped.code, message: mapped.message });
  });
  app.setNotFoundHandler((request, reply) => {
    metrics?.error(ErrorCode.NOT_FOUND.code);
    void reply
      .code(ErrorCode.NOT_FOUND.status)
      .send({ code: ErrorCode.NOT_FOUND.code, message: `no route ${request.method} ${request.url}; the webhook serves POST /mutate` });
  });

  const logger = options.logger;
  const stream = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
  const prefix = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '';
  app.post('/mutate', async (request, reply) => {
    const started = now();
    const review = decodeReview(request.body);
    const decision = decide({ object: review.object, operation: review.operation, policy: options.policy(), namespace: review.namespace });
    const durationMs = Math.round((now() - started) * 1000) / 1000;
    if (stream !== undefined && logger.isLevelEnabled('info')) {
      stream.write(reviewLine(prefix, review, decision.outcome, decision.probe, decision.profile, decision.changes.length, decision.warnings.length, durationMs));
    }
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
