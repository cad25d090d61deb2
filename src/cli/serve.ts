/**
 * The serve command: the entry point that reads files, listens and handles signals. Everything it
 * starts is built by buildWebhookApp and buildHealthApp.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { pino } from 'pino';
import { readEnvironment } from '../config.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { buildHealthApp } from '../http/health.js';
import { buildWebhookApp } from '../http/app.js';
import { loadPolicyFile } from '../policy/load.js';
import { integerFlag, parseFlags, requireString } from './args.js';
import type { Io } from './main.js';

/** TlsMaterial is a certificate chain and its private key, checked to belong together. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly notAfter: Date;
}

/** readTlsMaterial reads a certificate and key and checks that the key belongs to the certificate. */
export async function readTlsMaterial(certPath: string, keyPath: string): Promise<TlsMaterial> {
  try {
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error(`the key in ${keyPath} does not belong to the certificate in ${certPath}`);
    return { cert, key, notAfter: new Date(x509.validTo) };
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot use TLS certificate ${certPath} with key ${keyPath}: ${(err as Error).message}`, { cause: err });
  }
}

/** runServe serves until SIGTERM or SIGINT, then stops taking new reviews, finishes those in flight and returns 0. */
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
    },
    false,
  );
  const policyPath = requireString(values.policy, 'policy');
  const certPath = requireString(values['tls-cert'], 'tls-cert');
  const keyPath = requireString(values['tls-key'], 'tls-key');
  const port = integerFlag(values.port, 'port', 0, 65535, 9443);
  const healthPort = integerFlag(values['health-port'], 'health-port', 0, 65535, 8080);
  const host = values.address ?? '0.0.0.0';
  const env = readEnvironment();

  const policy = await loadPolicyFile(policyPath);
  const tls = await readTlsMaterial(certPath, keyPath);
  const logger = pino({ level: env.logLevel, base: { app: 'lb-probe-webhook' } }, io.stdout as NodeJS.WritableStream & pino.DestinationStream);

  let state: 'starting' | 'serving' | 'stopping' = 'starting';
  const webhook = buildWebhookApp({
    policy: () => policy,
    logger,
    https: { https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' } },
  });
  const health = buildHealthApp({ logger, ready: () => (state === 'serving' ? undefined : state) });

  await health.listen({ port: healthPort, host });
  await webhook.listen({ port, host });
  state = 'serving';
  const address = (app: typeof webhook) => {
    const a = app.server.address();
    return typeof a === 'object' && a !== null ? a.port : port;
  };
  logger.info(
    { port: address(webhook), healthPort: address(health), provider: policy.provider, mode: policy.mode, probe: policy.probe, certificateNotAfter: tls.notAfter },
    'serving',
  );

  const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  state = 'stopping';
  logger.info({ signal: signal[0] ?? 'signal' }, 'stopping: finishing reviews in flight');
  await webhook.close();
  await health.close();
  logger.info('stopped');
  return 0;
}
