/**
 * The serve command: the entry point that reads files, listens and handles signals. Everything it
 * starts is built by buildWebhookApp and buildHealthApp.
 *
 * Lifecycle: policy and certificate are validated before anything listens; then both files are
 * polled and swapped in place when they change (a file that does not validate is refused and the
 * last good one keeps serving). On SIGTERM or SIGINT /readyz fails at once; the webhook keeps
 * answering for --shutdown-delay while endpoints drain, then stops accepting connections, finishes
 * the reviews in flight, and the process exits 0 within --shutdown-grace.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { readEnvironment } from '../config.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { buildHealthApp } from '../http/health.js';
import { buildWebhookApp } from '../http/app.js';
import { RequestGate } from '../http/server.js';
import { WebhookMetrics } from '../metrics/metrics.js';
import { loadPolicyFile } from '../policy/load.js';
import { CertificateSource, PolicySource } from '../runtime/reload.js';
import { watchFiles } from '../runtime/watch.js';
import { readTlsMaterial, serverTlsOptions } from '../tls/material.js';
import { durationFlag, integerFlag, parseFlags, requireString } from './args.js';
import type { Io } from './io.js';

/** CLOSE_IDLE_AGE_MS: when stopping, a connection without a request is closed once it is this old. */
const CLOSE_IDLE_AGE_MS = 1000;
/** LOG_FLUSH_MS bounds how long a log line may wait in the buffer. */
const LOG_FLUSH_MS = 250;
/** LOG_BUFFER_BYTES: log lines are written in batches of this size (about twenty-five review lines), or every LOG_FLUSH_MS; below sonic-boom's 16 KiB maximum write. */
const LOG_BUFFER_BYTES = 8 * 1024;
/**
 * LOG_MAX_PENDING_BYTES bounds the log lines waiting for stdout, about 3,500 review lines. When
 * nothing reads stdout (a stalled container runtime), lines beyond it are dropped and counted in
 * log_lines_dropped_total: reviews keep being answered, and memory stays inside its budget.
 */
const LOG_MAX_PENDING_BYTES = 1024 * 1024;

/** bufferLines hands every line to a sonic-boom in contentMode buffer as a Buffer of its own. */
function bufferLines(sonic: pino.DestinationStream): pino.DestinationStream {
  const sink = sonic as unknown as { write(chunk: Buffer): boolean };
  return { write: (line: string) => void sink.write(Buffer.from(line)) };
}

function boundPort(app: FastifyInstance, fallback: number): number {
  const address = app.server.address();
  return typeof address === 'object' && address !== null ? address.port : fallback;
}

/** runServe serves until SIGTERM or SIGINT, then drains and returns 0. */
export async function runServe(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    argv,
    {
      policy: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      port: { type: 'string' },
      'health-port': { type: 'string' },
      address: { type: 'string' },
      'reload-interval': { type: 'string' },
      'shutdown-delay': { type: 'string' },
      'shutdown-grace': { type: 'string' },
    },
    false,
  );
  const policyPath = requireString(values.policy, 'policy');
  const certPath = requireString(values['tls-cert'], 'tls-cert');
  const keyPath = requireString(values['tls-key'], 'tls-key');
  const port = integerFlag(values.port, 'port', 0, 65535, 9443);
  const healthPort = integerFlag(values['health-port'], 'health-port', 0, 65535, 8080);
  const host = values.address ?? '0.0.0.0';
  const reloadMs = durationFlag(values['reload-interval'], 'reload-interval', 100, 3_600_000, 5000);
  const delayMs = durationFlag(values['shutdown-delay'], 'shutdown-delay', 0, 300_000, 5000);
  const graceMs = durationFlag(values['shutdown-grace'], 'shutdown-grace', 0, 300_000, 20_000);
  const env = readEnvironment();

  // Listen for the stop signals before anything starts, so a signal during start-up is a clean stop too.
  const stopSignal = Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]) as Promise<[NodeJS.Signals]>;
  const initialPolicy = await loadPolicyFile(policyPath);
  const tlsSource = `${certPath} with key ${keyPath}`;
  const tls = await readTlsMaterial(certPath, keyPath, tlsSource);
  // On the real stdout, log lines are buffered up to 8 KiB and written asynchronously, and the
  // buffer is flushed every LOG_FLUSH_MS and at exit: one write per ten-odd review lines under
  // load instead of one each, and no line waits longer than that when traffic is low.
  // The buffer holds each line as its own Buffer (contentMode buffer): in utf8 mode sonic-boom
  // measures the whole pending batch as a string on every write, a cost that grows with the batch.
  const buffered = io.stdout === process.stdout ? pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, maxLength: LOG_MAX_PENDING_BYTES, contentMode: 'buffer' }) : undefined;
  const destination: pino.DestinationStream = buffered === undefined ? io.stdout : bufferLines(buffered);
  const flushTimer = buffered === undefined ? undefined : setInterval(() => buffered.flush(), LOG_FLUSH_MS).unref();
  const logger = pino({ level: env.logLevel, base: { app: 'lb-probe-webhook' } }, destination);
  const metrics = new WebhookMetrics();
  metrics.certificateInUse(tls.notAfter);
  buffered?.on('drop', () => metrics.logLineDropped());

  const policy = new PolicySource(initialPolicy, policyPath, logger, metrics);
  let state: 'starting' | 'serving' | 'stopping' = 'starting';
  const gate = new RequestGate();
  const webhook = buildWebhookApp({ policy: () => policy.current(), logger, metrics, tls, gate });
  const health = buildHealthApp({ logger, ready: () => (state === 'serving' ? undefined : state), metrics: metrics.registry });
  const certificate = new CertificateSource(tlsSource, (m) => (webhook.server as unknown as TlsServer).setSecureContext(serverTlsOptions(m)), logger, metrics);

  try {
    await health.listen({ port: healthPort, host });
    await webhook.listen({ port, host });
  } catch (err: unknown) {
    await Promise.allSettled([health.close(), webhook.close()]);
    clearInterval(flushTimer);
    throw new WebhookError(ErrorCode.LISTEN, `cannot listen: ${(err as Error).message}`, { cause: err });
  }
  // A file that cannot be read is a failed reload too: counted where operators alert, once per episode (watch.ts).
  const watches = [
    await watchFiles({ paths: [policyPath], intervalMs: reloadMs, onChange: ([text]) => void policy.update(text ?? ''), onError: (err) => policy.unreadable(err) }),
    await watchFiles({ paths: [certPath, keyPath], intervalMs: reloadMs, onChange: ([cert, key]) => void certificate.update(cert ?? '', key ?? ''), onError: (err) => certificate.unreadable(err) }),
  ];
  state = 'serving';
  logger.info(
    {
      port: boundPort(webhook, port),
      healthPort: boundPort(health, healthPort),
      provider: initialPolicy.provider,
      mode: initialPolicy.mode,
      probe: initialPolicy.probe,
      certificateNotAfter: tls.notAfter,
      reloadMs,
    },
    'serving',
  );

  const [signal] = await stopSignal;
  state = 'stopping';
  logger.info({ signal, delayMs, graceMs }, 'stopping: /readyz fails now; reviews are still answered while endpoints drain');
  for (const watch of watches) watch.stop();
  // Every answer from now on says Connection: close, so keep-alive clients reconnect (to another
  // replica once the endpoints have drained) instead of reusing a connection about to be closed.
  gate.drain();
  await sleep(delayMs);
  const forced = setTimeout(() => {
    logger.warn('shutdown grace period over: closing the connections still open');
    webhook.server.closeAllConnections();
  }, graceMs);
  const closed = webhook.close();
  // Not accepting any more: close every connection with no request being answered (idle after an
  // answer at once; one in the TLS handshake or still sending headers once it is a second old);
  // the others close after their answer, which says Connection: close.
  logger.info({ open: gate.closeIdle(CLOSE_IDLE_AGE_MS), inFlight: gate.inFlight }, 'stopped accepting connections');
  const sweep = setInterval(() => gate.closeIdle(CLOSE_IDLE_AGE_MS), CLOSE_IDLE_AGE_MS / 4);
  await closed;
  clearInterval(sweep);
  clearTimeout(forced);
  await health.close();
  logger.info('stopped');
  clearInterval(flushTimer);
  buffered?.flushSync();
  return 0;
}
