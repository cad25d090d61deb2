/**
 * buildWebhookApp returns the admission Fastify instance; it never listens (server.ts builds the
 * server under it and starts it). The route only decodes, reviews and encodes.
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
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AdmissionAnswer, AdmissionRequest } from '../admission/review.js';
import { ErrorCode, isWebhookError, WebhookError, type ErrorKind } from '../errors.js';
import { DEFAULT_BODY_LIMIT } from './bodies.js';
import { decodeReview, encodeAnswer } from './review.js';

/** RefusalRecorder counts what the app refuses and the clients that hang up (WebhookMetrics is one). */
export interface RefusalRecorder {
  error(code: string): void;
  aborted(): void;
}

/** WebhookAppOptions configures buildWebhookApp. */
export interface WebhookAppOptions {
  /** review answers one decoded request under the policy in force (the seam of admission/review.ts, with its wrappers). */
  readonly review: (request: AdmissionRequest) => AdmissionAnswer;
  readonly logger: Logger;
  readonly bodyLimit?: number;
  /** refusals counts refused requests and hang-ups; optional. */
  readonly refusals?: RefusalRecorder;
  /** serverFactory builds the TLS server under the app (server.ts); absent for an app only used through inject (tests). */
  readonly serverFactory?: (handler: (req: IncomingMessage, res: ServerResponse) => void) => HttpsServer;
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

/** buildWebhookApp builds the admission server: POST /mutate. */
export function buildWebhookApp(options: WebhookAppOptions): FastifyInstance {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Every review logs its own uid; a child logger per request would only add an allocation.
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    // While closing, requests on connections already open are still answered: close() waits for them.
    return503OnClosing: false,
    // The server is TLS, built by the factory (server.ts); this tells Fastify so, for the address it logs.
    ...(options.serverFactory !== undefined && { https: true, serverFactory: options.serverFactory }),
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

  const { refusals } = options;
  app.setErrorHandler((err, request, reply) => {
    if (isClientGone(err, request.raw)) {
      refusals?.aborted();
      request.log.info({ reason: (err as Error).message }, 'client closed the connection before the answer');
      void reply.code(400).send({ code: ErrorCode.CLIENT_GONE.code, message: 'the client closed the connection' });
      return;
    }
    const mapped = toWebhookError(err);
    refusals?.error(mapped.code);
    const level = mapped.status >= 500 ? 'error' : 'warn';
    request.log[level]({ code: mapped.code, reason: mapped.message, err: mapped.status >= 500 ? err : undefined }, 'request refused');
    void reply.code(mapped.status).send({ code: mapped.code, message: mapped.message });
  });
  app.setNotFoundHandler((request, reply) => {
    refusals?.error(ErrorCode.NOT_FOUND.code);
    void reply
      .code(ErrorCode.NOT_FOUND.status)
      .send({ code: ErrorCode.NOT_FOUND.code, message: `no route ${request.method} ${request.url}; the webhook serves POST /mutate` });
  });

  // Decode, review, encode: everything else (the decision, its log line, its metrics) is behind review.
  app.post('/mutate', (request, reply) => reply.type('application/json').send(encodeAnswer(options.review(decodeReview(request.body)))));
  return app;
}
