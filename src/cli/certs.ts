/**
 * The certs command: a CA and a serving certificate for the webhook, written atomically. It never
 * replaces a CA or a key by a different one without --force, because a cluster's caBundle trusts
 * the CA in ca.crt: a new one breaks every call to the webhook until the caBundle is updated.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { checkCa, misfit } from '../certs/ca.js';
import { generateCertificates, type CertificateSet } from '../certs/generate.js';
import { isDnsSubdomain } from '../core/names.js';
import { ErrorCode, WebhookError, isWebhookError } from '../errors.js';
import { integerFlag, usageError, type ParsedArgs } from './args.js';
import { writeFilesAtomically } from './files.js';
import { systemErrorMessage } from './failure.js';
import type { Io } from './io.js';

const FILES = { caCert: 'ca.crt', caKey: 'ca.key', tlsCert: 'tls.crt', tlsKey: 'tls.key' } as const;
type FileKey = keyof typeof FILES;

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

/** readExisting reads what --out already holds: each of the four files' text, or undefined when it is not there. */
async function readExisting(paths: Record<FileKey, string>): Promise<Partial<Record<FileKey, string>>> {
  const found: Partial<Record<FileKey, string>> = {};
  for (const key of Object.keys(FILES) as FileKey[]) {
    try {
      found[key] = await readFile(paths[key], 'utf8');
    } catch (err: unknown) {
      // A path that cannot exist (a file where --out names a directory) holds nothing either; writing will say why.
      if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) continue;
      throw new WebhookError(ErrorCode.CERTIFICATE, `${paths[key]}: cannot read: ${systemErrorMessage(err)}`, { cause: err });
    }
  }
  return found;
}

interface Signer {
  readonly certPem: string;
  readonly keyPem: string;
  /** source names where the CA was read, for messages. */
  readonly source: string;
}

async function readCa(certPath: string | undefined, keyPath: string | undefined, now: Date): Promise<Signer | undefined> {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw usageError('--ca-cert and --ca-key go together');
  const ca = { certPem: await readPem(certPath, 'ca-cert'), keyPem: await readPem(keyPath, 'ca-key') };
  checkCa({ ...ca, certName: `--ca-cert ${certPath}`, keyName: `--ca-key ${keyPath}` }, now);
  return { ...ca, source: certPath };
}

function issue(request: Parameters<typeof generateCertificates>[0]): CertificateSet {
  try {
    return generateCertificates(request);
  } catch (err: unknown) {
    if (isWebhookError(err)) throw err;
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot issue the certificate: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * runCerts writes ca.crt, ca.key, tls.crt and tls.key into --out, all or none. A CA or key that
 * exists and would change is refused without --force; the serving pair may be replaced when the
 * CA stays the same (renewal with --ca-cert/--ca-key). With --if-missing an existing serving
 * certificate that still fits the flags is kept, and one that does not (other names or IPs,
 * expired, another CA) is renewed under the CA beside it, and said so.
 */
export async function runCerts(args: ParsedArgs, io: Io): Promise<number> {
  const say = (line: string) => io.stderr.write(`lb-probe-webhook certs: ${line}\n`);
  const out = args.required('out');
  const dns = args.strings('dns');
  const ips = args.strings('ip');
  if (dns.length === 0) throw usageError('at least one --dns is required');
  for (const name of dns) {
    const bare = name.startsWith('*.') ? name.slice(2) : name;
    if (!isDnsSubdomain(bare)) throw usageError(`--dns ${JSON.stringify(name)} is not a DNS name`);
  }
  for (const ip of ips) if (isIP(ip) === 0) throw usageError(`--ip ${JSON.stringify(ip)} is not an IP address`);
  const caDays = integerFlag(args.string('ca-days'), 'ca-days', 1, 36500, 0);
  const days = integerFlag(args.string('days'), 'days', 1, 36500, 0);
  if (days > caDays) throw usageError(`--days ${days} is longer than the CA's --ca-days ${caDays}`);
  const force = args.boolean('force');
  const ifMissing = args.boolean('if-missing');

  const paths = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, join(out, f)])) as Record<FileKey, string>;
  const now = new Date();
  const given = await readCa(args.string('ca-cert'), args.string('ca-key'), now);
  const existing = await readExisting(paths);
  const names = [...dns, ...ips].join(', ');

  let signer = given;
  let renewal = '';
  if (ifMissing && existing.caCert !== undefined && existing.caKey !== undefined && given === undefined) {
    const ca = { certPem: existing.caCert, keyPem: existing.caKey };
    checkCa({ ...ca, certName: paths.caCert, keyName: paths.caKey }, now);
    signer = { ...ca, source: paths.caCert };
  }
  if (ifMissing && existing.tlsCert !== undefined && existing.tlsKey !== undefined) {
    const why = misfit(existing.tlsCert, signer?.certPem ?? existing.caCert, { dns, ips }, now);
    if (why === undefined) {
      say(`${paths.tlsCert} is for ${names} and valid; kept (--if-missing)`);
      return 0;
    }
    if (signer === undefined && !force) {
      throw new WebhookError(
        ErrorCode.CERTIFICATE,
        `${paths.tlsCert} does not fit: ${why}; there is no ${paths.caKey} to renew it under (give --ca-cert and --ca-key, or --force for a new CA)`,
      );
    }
    renewal = ` (${paths.tlsCert} did not fit: ${why})`;
  }

  const set = issue({ dns, ips, days, caDays, now, ...(signer !== undefined && { ca: signer }) });
  const contents: Record<FileKey, string> = { caCert: set.caCert, caKey: set.caKey, tlsCert: set.tlsCert, tlsKey: set.tlsKey };
  const sameCa = existing.caCert !== undefined && existing.caCert === set.caCert && (existing.caKey === undefined || existing.caKey === set.caKey);
  if (!force) {
    // The serving pair is renewed under a CA that stays; anything else already there and different is someone's CA or key.
    const replaced = (Object.keys(FILES) as FileKey[]).filter((k) => existing[k] !== undefined && existing[k] !== contents[k] && !(sameCa && (k === 'tlsCert' || k === 'tlsKey')));
    if (replaced.length > 0) {
      const what = replaced.includes('caCert') || replaced.includes('caKey') ? 'the CA that the caBundle of clusters trusts' : 'a serving certificate and key made under another CA';
      throw new WebhookError(
        ErrorCode.CERTIFICATE,
        `${replaced.map((k) => paths[k]).join(', ')} ${replaced.length === 1 ? 'exists' : 'exist'}: this would replace ${what}, so nothing was written; ` +
          `renew under it (--ca-cert ${paths.caCert} --ca-key ${paths.caKey}), keep what fits (--if-missing), or replace it (--force)`,
      );
    }
  }
  const unchanged = (Object.keys(FILES) as FileKey[]).filter((k) => existing[k] === contents[k]);
  try {
    await writeFilesAtomically(
      (Object.keys(FILES) as FileKey[])
        .filter((k) => !unchanged.includes(k))
        .map((k) => ({ path: paths[k], content: contents[k], mode: k === 'caKey' || k === 'tlsKey' ? 0o600 : 0o644 })),
    );
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `--out ${out}: cannot write the certificates, nothing written: ${systemErrorMessage(err)}`, { cause: err });
  }
  const written = (Object.keys(FILES) as FileKey[]).filter((k) => !unchanged.includes(k)).map((k) => paths[k]);
  const cut = set.notAfter.getTime() < now.getTime() + days * 86_400_000 - 60_000 ? ", cut to the CA's expiry" : '';
  const under = signer === undefined ? 'a new CA' : `the CA in ${signer.source}`;
  say(`wrote ${written.join(', ')} for ${names}, under ${under}, valid until ${set.notAfter.toISOString()}${cut}${renewal}`);
  return 0;
}
