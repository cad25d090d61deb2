/**
 * Checks on certificate material before anything is signed or written: an existing CA given for
 * renewal must be a usable signer, and every certificate issued must verify against its CA the
 * way the API server verifies it. A failed check is LBP_CERTIFICATE, which the CLI turns into
 * exit 2 with nothing written.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ErrorCode, WebhookError } from '../errors.js';
import { ipBytes, readExtensions, signatureAlgorithm, tbsFields } from './x509.js';

/** CaFiles is an existing CA as PEM text, with the names it was read from for messages. */
export interface CaFiles {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certName: string;
  readonly keyName: string;
}

function refuse(message: string, cause?: unknown): never {
  throw new WebhookError(ErrorCode.CERTIFICATE, message, { cause });
}

const PEM_LABEL = /-----BEGIN ([A-Z0-9 ]+)-----/;

function pemLabel(text: string): string | undefined {
  return PEM_LABEL.exec(text)?.[1];
}

function parseCertificate(pem: string, name: string): X509Certificate {
  const label = pemLabel(pem);
  if (label !== 'CERTIFICATE') {
    refuse(`${name}: not a PEM certificate (${label === undefined ? 'no PEM block found' : `found ${label}`})`);
  }
  try {
    return new X509Certificate(pem);
  } catch (err: unknown) {
    return refuse(`${name}: not a readable certificate: ${(err as Error).message}`, err);
  }
}

function parsePrivateKey(pem: string, name: string): KeyObject {
  const label = pemLabel(pem);
  if (label === undefined || !label.endsWith('PRIVATE KEY')) {
    refuse(`${name}: not a PEM private key (${label === undefined ? 'no PEM block found' : `found ${label}`})`);
  }
  if (label === 'ENCRYPTED PRIVATE KEY') refuse(`${name}: the private key is encrypted; give an unencrypted key`);
  try {
    return createPrivateKey(pem);
  } catch (err: unknown) {
    return refuse(`${name}: not a readable private key: ${(err as Error).message}`, err);
  }
}

/**
 * checkCa refuses a CA that cannot sign a serving certificate the API server will accept: a file
 * that is not a certificate or not a private key, a key that does not belong to the certificate,
 * a certificate that is not a CA (basicConstraints CA:TRUE) or whose keyUsage lacks keyCertSign,
 * a CA outside its validity at `now`, or a key that certs cannot sign with (RSA, ECDSA on P-256,
 * P-384 or P-521, and Ed25519 are accepted: every key type cert-manager issues).
 * A missing keyUsage is accepted, as Go's crypto/x509 (the API server) accepts it.
 */
export function checkCa(ca: CaFiles, now: Date): void {
  const cert = parseCertificate(ca.certPem, ca.certName);
  const key = parsePrivateKey(ca.keyPem, ca.keyName);
  if (!cert.checkPrivateKey(key)) refuse(`${ca.keyName}: this key does not belong to the CA certificate ${ca.certName}`);
  signatureAlgorithm(key, ca.keyName);
  const extensions = readExtensions(cert.raw);
  if (!extensions.ca) refuse(`${ca.certName}: not a CA certificate (basicConstraints CA is not true)`);
  if (extensions.keyCertSign === false) refuse(`${ca.certName}: the CA's keyUsage does not allow keyCertSign`);
  // OpenSSL's own judgement (X509_check_ca) as a last word, for anything the two checks above miss.
  if (!cert.ca) refuse(`${ca.certName}: OpenSSL does not accept it as a CA certificate`);
  if (cert.validToDate.getTime() <= now.getTime()) refuse(`${ca.certName}: the CA expired on ${cert.validToDate.toISOString()}`);
  if (cert.validFromDate.getTime() > now.getTime()) refuse(`${ca.certName}: the CA is not valid before ${cert.validFromDate.toISOString()}`);
}

/**
 * checkIssued refuses a serving certificate that would not verify under its CA: the signature,
 * the issuer name byte for byte against the CA's subject (Go's chain building matches raw names),
 * and the validity inside the CA's.
 */
export function checkIssued(certPem: string, caPem: string): void {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  if (!cert.verify(ca.publicKey)) refuse('the issued certificate does not verify against the CA: nothing written');
  // TBSCertificate fields: [3] issuer, [5] subject.
  if (!(tbsFields(cert.raw)[3] ?? Buffer.alloc(0)).equals(tbsFields(ca.raw)[5] ?? Buffer.alloc(1)) || !cert.checkIssued(ca)) {
    refuse("the issued certificate's issuer does not match the CA's subject: nothing written");
  }
  if (cert.validToDate > ca.validToDate) refuse('the issued certificate outlives its CA: nothing written');
}

/** ipKey is an IP address in one canonical form (its bytes in hex), so `::1` and `0:0:0:0:0:0:0:1` compare equal. */
function ipKey(ip: string): string {
  return ipBytes(ip)?.toString('hex') ?? ip;
}

/** subjectNames lists a certificate's DNS and IP subject alternative names, as Node prints them. */
function subjectNames(cert: X509Certificate): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dns.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ips.push(entry.slice(11));
  }
  return { dns, ips };
}

/**
 * misfit says why an existing serving certificate no longer does for a request (other DNS names
 * or IP addresses, expired, or not issued by the CA beside it), or returns undefined when it still
 * does: `certs --if-missing` renews the first and keeps the second, never silently keeps a misfit.
 */
export function misfit(certPem: string, caPem: string | undefined, wanted: { readonly dns: readonly string[]; readonly ips: readonly string[] }, now: Date): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err: unknown) {
    return `it is not a readable certificate (${(err as Error).message})`;
  }
  const has = subjectNames(cert);
  const same = (a: readonly string[], b: readonly string[], key: (s: string) => string = (s) => s.toLowerCase()) =>
    a.length === b.length && [...a].map(key).sort().join(',') === [...b].map(key).sort().join(',');
  if (!same(has.dns, wanted.dns) || !same(has.ips, wanted.ips, ipKey)) {
    const list = (names: { readonly dns: readonly string[]; readonly ips: readonly string[] }) => [...names.dns, ...names.ips].join(', ') || 'no names';
    return `it is for ${list(has)}, and the flags ask for ${list(wanted)}`;
  }
  if (cert.validToDate.getTime() <= now.getTime()) return `it expired on ${cert.validToDate.toISOString()}`;
  if (caPem !== undefined) {
    try {
      checkIssued(certPem, caPem);
    } catch {
      return 'it was not issued by the CA beside it';
    }
  }
  return undefined;
}
