/**
 * buildHealthApp returns the plain-HTTP health server: GET /healthz (the process answers) and
 * GET /readyz (the webhook can serve reviews), and GET /metrics when given a registry. Kept apart
 * from the TLS port so kubelet probes need no certificate.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** HealthAppOptions configures buildHealthApp. */
export interface HealthAppOptions {
  readonly logger: Logger;
  /** ready returns undefined when ready, else the reason it is not. */
  readonly ready: () => string | undefined;
  /** metrics, when given, is served at GET /metrics in the Prometheus text format. */
  readonly metrics?: Registry;
  /** serverFactory builds the HTTP server under the app (server.ts); absent for an app only used through inject (tests). */
  readonly serverFactory?: (handler: (req: IncomingMessage, res: ServerResponse) => void) => HttpServer;
}

/** HEALTH_BODY_LIMIT: the health port serves only GETs; a body is read (and refused) up to this size. */
const HEALTH_BODY_LIMIT = 16 * 1024;

/** buildHealthApp builds the health app; it never listens (server.ts builds its server, with the webhook port's bounds, and starts it). */
export function buildHealthApp(options: HealthAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: HEALTH_BODY_LIMIT,
    ...(options.serverFactory !== undefined && { serverFactory: options.serverFactory }),
  }) as unknown as FastifyInstance;
  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reason = options.ready();
    if (reason === undefined) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reason });
  });
  const { metrics } = options;
  if (metrics !== undefined) {
    app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  }
  return app;
}
