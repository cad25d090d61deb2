/**
 * The serve command: it parses the flags and the environment, makes sure the process runs with
 * the memory flags (runtime/memory.ts), and wires what the other modules build: the log, the
 * metrics, the policy and certificate sources, the webhook and health servers (http/server.ts),
 * the file watches and the lifecycle (runtime/lifecycle.ts), which runs the stop on SIGTERM or
 * SIGINT. Policy and certificate are validated before anything listens.
 */
import { once } from 'node:events';
import { systemClock } from '../clock.js';
import { readEnvironment } from '../config.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { createHealthServer, createWebhookServer } from '../http/server.js';
import { createLog } from '../log/log.js';
import { WebhookMetrics } from '../metrics/metrics.js';
import { loadPolicyFile } from '../policy/load.js';
import { Lifecycle } from '../runtime/lifecycle.js';
import { ensureMemoryFlags } from '../runtime/memory.js';
import { CertificateSource, PolicySource } from '../runtime/reload.js';
import { watchFiles } from '../runtime/watch.js';
import { readTlsMaterial } from '../tls/material.js';
import { durationFlag, integerFlag, parseFlags, requireString, usageError } from './args.js';
import type { Io } from './io.js';

/** listenError names the flag of the port, or the address, a server could not listen on. */
function listenError(err: unknown, flag: string, host: string, port: number): WebhookError {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  const why =
    code === 'EADDRINUSE'
      ? `${where} is already in use`
      : code === 'EACCES'
        ? `not allowed to listen on ${where}`
        : code === 'EADDRNOTAVAIL'
          ? `${host} is not an address of this machine (--address)`
          : `cannot listen on ${where}: ${(err as Error).message}`;
  return new WebhookError(ErrorCode.LISTEN, `--${flag} ${port}: ${why}`, { cause: err });
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
  if (port !== 0 && port === healthPort) throw usageError(`--port and --health-port must differ, both are ${port}`);
  const host = values.address ?? '0.0.0.0';
  const reloadMs = durationFlag(values['reload-interval'], 'reload-interval', 100, 3_600_000, 5000);
  const delayMs = durationFlag(values['shutdown-delay'], 'shutdown-delay', 0, 300_000, 5000);
  const graceMs = durationFlag(values['shutdown-grace'], 'shutdown-grace', 0, 300_000, 20_000);
  const env = readEnvironment();
  ensureMemoryFlags(process);

  // Listen for the stop signals before anything starts, so a signal during start-up is a clean stop too.
  const stopSignal = Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]) as Promise<[NodeJS.Signals]>;
  const clock = systemClock;
  const initialPolicy = await loadPolicyFile(policyPath);
  const tlsSource = `${certPath} with key ${keyPath}`;
  const tls = await readTlsMaterial(certPath, keyPath, tlsSource);
  const metrics = new WebhookMetrics();
  metrics.certificateInUse(tls.notAfter);
  const log = createLog({ level: env.logLevel, destination: io.stdout === process.stdout ? 1 : io.stdout, clock, bindings: { app: 'lb-probe-webhook' }, onDrop: () => metrics.logLineDropped() });
  const { logger } = log;
  const policy = new PolicySource(initialPolicy, policyPath, logger, metrics);
  const lifecycle = new Lifecycle({ clock, logger, delayMs, graceMs });
  const webhook = createWebhookServer({ policy: () => policy.current(), tls, log, clock, metrics });
  const health = createHealthServer({ logger, ready: lifecycle.ready, metrics: metrics.registry, clock });
  const certificate = new CertificateSource(tlsSource, (material) => webhook.rotateCertificate(material), logger, metrics);

  const listen = (server: { listen(at: number, on: string): Promise<number> }, flag: string, at: number) =>
    server.listen(at, host).catch((err: unknown) => Promise.reject(listenError(err, flag, host, at)));
  let bound: { health: number; webhook: number };
  try {
    bound = { health: await listen(health, 'health-port', healthPort), webhook: await listen(webhook, 'port', port) };
  } catch (err: unknown) {
    await Promise.allSettled([health.close(), webhook.close(0)]);
    log.close();
    throw err;
  }
  // A file that cannot be read is a failed reload too: counted where operators alert, once per episode (watch.ts).
  const watches = [
    await watchFiles({ paths: [policyPath], intervalMs: reloadMs, clock, onChange: ([text]) => void policy.update(text ?? ''), onError: (err) => policy.unreadable(err) }),
    await watchFiles({ paths: [certPath, keyPath], intervalMs: reloadMs, clock, onChange: ([cert, key]) => void certificate.update(cert ?? '', key ?? ''), onError: (err) => certificate.unreadable(err) }),
  ];
  lifecycle.serving();
  logger.info(
    {
      url: `https://${host}:${bound.webhook}/mutate`,
      healthUrl: `http://${host}:${bound.health}`,
      port: bound.webhook,
      healthPort: bound.health,
      provider: initialPolicy.provider,
      mode: initialPolicy.mode,
      probe: initialPolicy.probe,
      certificateNotAfter: tls.notAfter,
      reloadMs,
    },
    'serving',
  );
  const [signal] = await stopSignal;
  await lifecycle.stop(signal, { webhook, health, watches });
  log.close();
  return 0;
}
