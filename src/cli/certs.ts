/** The certs command: a CA and a serving certificate for the webhook, written atomically. */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { checkCa } from '../certs/ca.js';
import { generateCertificates } from '../certs/generate.js';
import { isDnsSubdomain } from '../core/names.js';
import { ErrorCode, WebhookError, isWebhookError } from '../errors.js';
import { integerFlag, parseFlags, requireString, usageError } from './args.js';
import { writeFilesAtomically } from './files.js';
import { systemErrorMessage } from './failure.js';
import type { Io } from './io.js';

const FILES = { caCert: 'ca.crt', caKey: 'ca.key', tlsCert: 'tls.crt', tlsKey: 'tls.key' } as const;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** MAX_PEM_BYTES bounds a CA file: a certificate or key is a few KiB, a chain a few tens. */
const MAX_PEM_BYTES = 1024 * 1024;

async function readPem(path: string, flag: string): Promise<string> {
  try {
    // At most one byte past the bound is read, so even /dev/zero given by mistake ends at once.
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(path, { start: 0, end: MAX_PEM_BYTES })) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    if (bytes.length > MAX_PEM_BYTES) throw new WebhookError(ErrorCode.CERTIFICATE, `--${flag} ${path}: larger than ${MAX_PEM_BYTES} bytes; not a PEM file`);
    return bytes.toString('utf8');
  } catch (err: unknown) {
    if (isWebhookError(err)) throw err;
    throw new WebhookError(ErrorCode.CERTIFICATE, `--${flag} ${path}: cannot read: ${systemErrorMessage(err)}`, { cause: err });
  }
}

async function readCa(certPath: string | undefined, keyPath: string | undefined, now: Date): Promise<{ certPem: string; keyPem: string } | undefined> {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw usageError('--ca-cert and --ca-key go together');
  const ca = { certPem: await readPem(certPath, 'ca-cert'), keyPem: await readPem(keyPath, 'ca-key') };
  checkCa({ ...ca, certName: `--ca-cert ${certPath}`, keyName: `--ca-key ${keyPath}` }, now);
  return ca;
}

/** runCerts parses the certs flags, generates the certificates and writes ca.crt, ca.key, tls.crt and tls.key into --out. */
export async function runCerts(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    argv,
    {
      out: { type: 'string' },
      dns: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
      days: { type: 'string' },
      'ca-days': { type: 'string' },
      'ca-cert': { type: 'string' },
      'ca-key': { type: 'string' },
      'if-missing': { type: 'boolean' },
    },
    false,
  );
  const out = requireString(values.out, 'out');
  const dns = values.dns ?? [];
  const ips = values.ip ?? [];
  if (dns.length === 0) throw usageError('at least one --dns is required');
  for (const name of dns) {
    const bare = name.startsWith('*.') ? name.slice(2) : name;
    if (!isDnsSubdomain(bare)) throw usageError(`--dns ${JSON.stringify(name)} is not a DNS name`);
  }
  for (const ip of ips) if (isIP(ip) === 0) throw usageError(`--ip ${JSON.stringify(ip)} is not an IP address`);
  const caDays = integerFlag(values['ca-days'], 'ca-days', 1, 36500, 3650);
  const days = integerFlag(values.days, 'days', 1, 36500, 365);
  if (days > caDays) throw usageError(`--days ${days} is longer than the CA's --ca-days ${caDays}`);

  const paths = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, join(out, f)])) as Record<keyof typeof FILES, string>;
  if (values['if-missing'] === true && (await exists(paths.tlsCert)) && (await exists(paths.tlsKey))) {
    io.stderr.write(`certs: ${paths.tlsCert} exists; kept (--if-missing)\n`);
    return 0;
  }
  const now = new Date();
  const ca = await readCa(values['ca-cert'], values['ca-key'], now);
  let set;
  try {
    set = generateCertificates({ dns, ips, days, caDays, now, ca });
  } catch (err: unknown) {
    if (isWebhookError(err)) throw err;
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot issue the certificate: ${(err as Error).message}`, { cause: err });
  }
  try {
    await writeFilesAtomically([
      { path: paths.caCert, content: set.caCert, mode: 0o644 },
      { path: paths.caKey, content: set.caKey, mode: 0o600 },
      { path: paths.tlsCert, content: set.tlsCert, mode: 0o644 },
      { path: paths.tlsKey, content: set.tlsKey, mode: 0o600 },
    ]);
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `--out ${out}: cannot write the certificates, nothing written: ${systemErrorMessage(err)}`, { cause: err });
  }
  const cut = set.notAfter.getTime() < now.getTime() + days * 86_400_000 - 60_000 ? ", cut to the CA's expiry" : '';
  io.stderr.write(`certs: wrote ${Object.values(paths).join(', ')} for ${[...dns, ...ips].join(', ')}, valid until ${set.notAfter.toISOString()}${cut}\n`);
  return 0;
}
