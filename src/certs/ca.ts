/**
 * Checks on certificate material before anything is signed or written: an existing CA given for
 * renewal must be a usable signer, and every certificate issued must verify against its CA the
 * way the API server verifies it. A failed check is LBP_CERTIFICATE, which the CLI turns into
 * exit 2 with nothing written.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { ErrorCode, WebhookError } from '../errors.js';

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

/** caExtensions reads basicConstraints CA and keyUsage keyCertSign with node-forge (undefined: no keyUsage extension). */
function caExtensions(certPem: string): { ca: boolean; keyCertSign: boolean | undefined } {
  const cert = forge.pki.certificateFromPem(certPem);
  const basic = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
  const keyUsage = cert.getExtension('keyUsage') as { keyCertSign?: boolean } | null;
  return { ca: basic?.cA === true, keyCertSign: keyUsage === null ? undefined : keyUsage.keyCertSign === true };
}

/**
 * checkCa refuses a CA that cannot sign a serving certificate the API server will accept: a file
 * that is not a certificate or not a private key, a key that does not belong to the certificate,
 * a certificate that is not a CA (basicConstraints CA:TRUE) or whose keyUsage lacks keyCertSign,
 * a CA outside its validity at `now`, or a key that is not RSA (node-forge signs with RSA only).
 * A missing keyUsage is accepted, as Go's crypto/x509 (the API server) accepts it.
 */
export function checkCa(ca: CaFiles, now: Date): void {
  const cert = parseCertificate(ca.certPem, ca.certName);
  const key = parsePrivateKey(ca.keyPem, ca.keyName);
  if (!cert.checkPrivateKey(key)) refuse(`${ca.keyName}: this key does not belong to the CA certificate ${ca.certName}`);
  if (key.asymmetricKeyType !== 'rsa') {
    refuse(`${ca.keyName}: the CA key is ${key.asymmetricKeyType?.toUpperCase() ?? 'of an unknown type'}; certs can sign only with an RSA CA key`);
  }
  const extensions = caExtensions(ca.certPem);
  if (!extensions.ca) refuse(`${ca.certName}: not a CA certificate (basicConstraints CA is not true)`);
  if (extensions.keyCertSign === false) refuse(`${ca.certName}: the CA's keyUsage does not allow keyCertSign`);
  // OpenSSL's own judgement (X509_check_ca) as a last word, for anything the two checks above miss.
  if (!cert.ca) refuse(`${ca.certName}: OpenSSL does not accept it as a CA certificate`);
  if (cert.validToDate.getTime() <= now.getTime()) refuse(`${ca.certName}: the CA expired on ${cert.validToDate.toISOString()}`);
  if (cert.validFromDate.getTime() > now.getTime()) refuse(`${ca.certName}: the CA is not valid before ${cert.validFromDate.toISOString()}`);
}

function tbsField(certPem: string, index: number): string {
  const tbs = (forge.asn1.fromDer(forge.pem.decode(certPem)[0]?.body ?? '').value as forge.asn1.Asn1[])[0];
  const field = (tbs?.value as forge.asn1.Asn1[] | undefined)?.[index];
  return field === undefined ? '' : forge.asn1.toDer(field).getBytes();
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
  // TBSCertificate fields: [0] version, [1] serial, [2] signature algorithm, [3] issuer, [4] validity, [5] subject.
  if (tbsField(certPem, 3) !== tbsField(caPem, 5) || !cert.checkIssued(ca)) {
    refuse("the issued certificate's issuer does not match the CA's subject: nothing written");
  }
  if (cert.validToDate > ca.validToDate) refuse('the issued certificate outlives its CA: nothing written');
}
