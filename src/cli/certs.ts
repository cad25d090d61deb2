/** The certs command: a CA and a serving certificate for the webhook, written atomically. */
import { access, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generateCertificates } from '../certs/generate.js';
import { isDnsSubdomain } from '../core/names.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { integerFlag, parseFlags, requireString, usageError } from './args.js';
import { writeFilesAtomically } from './files.js';
import type { Io } from './main.js';

const FILES = { caCert: 'ca.crt', caKey: 'ca.key', tlsCert: 'tls.crt', tlsKey: 'tls.key' } as const;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function readCa(certPath: string | undefined, keyPath: string | undefined): Promise<{ certPem: string; keyPem: string } | undefined> {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw usageError('--ca-cert and --ca-key go together');
  try {
    return { certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot read the CA: ${(err as Error).message}`, { cause: err });
  }
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
  let set;
  try {
    set = generateCertificates({ dns, ips, days, caDays, now: new Date(), ca: await readCa(values['ca-cert'], values['ca-key']) });
  } catch (err: unknown) {
    if (err instanceof WebhookError) throw err;
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot issue the certificate: ${(err as Error).message}`, { cause: err });
  }
  await writeFilesAtomically([
    { path: paths.caCert, content: set.caCert, mode: 0o644 },
    { path: paths.caKey, content: set.caKey, mode: 0o600 },
    { path: paths.tlsCert, content: set.tlsCert, mode: 0o644 },
    { path: paths.tlsKey, content: set.tlsKey, mode: 0o600 },
  ]);
  io.stderr.write(`certs: wrote ${Object.values(paths).join(', ')} for ${[...dns, ...ips].join(', ')}\n`);
  return 0;
}
