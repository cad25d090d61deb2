/**
 * buildHealthApp returns the plain-HTTP health server: GET /healthz (the process answers) and
 * GET /readyz (the webhook can serve reviews), and GET /metrics when given a registry. Kept apart from the TLS port so kubelet probes need
 * no certificate.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { healthServerFactory } from './server.js';

/** HealthAppOptions configures buildHealthApp. */
export interface HealthAppOptions {
  readonly logger: Logger;
  /** ready returns undefined when ready, else the reason it is not. */
  readonly ready: () => string | undefined;
  /** metrics, when given, is served at GET /metrics in the Prometheus text format. */
  readonly metrics?: Registry;
}

/** HEALTH_BODY_LIMIT: the health port serves only GETs; a body is read (and refused) up to this size. */
const HEALTH_BODY_LIMIT = 16 * 1024;

/** buildHealthApp builds the health server; it never listens. Its server has the webhook port's timeouts (server.ts). */
export function buildHealthApp(options: HealthAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: HEALTH_BODY_LIMIT,
    serverFactory: healthServerFactory(),
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
