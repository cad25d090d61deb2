/**
 * generateCertificates makes a CA and a serving certificate signed by it: ECDSA P-256 keys (as
 * the chart and the cert-manager component make theirs), or a serving certificate under a CA
 * given as RSA, ECDSA or Ed25519 (x509.ts). Pure apart from randomness: the caller passes the
 * clock and writes the files.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { checkIssued } from './ca.js';
import { commonNameDer, issueCertificate, keyIdentifier, readExtensions, tbsFields } from './x509.js';

/** CertificateRequest says what the serving certificate must cover. */
export interface CertificateRequest {
  /** dns are the DNS subject alternative names; the first is also the common name. */
  readonly dns: readonly string[];
  readonly ips: readonly string[];
  /** days is the serving certificate's validity. */
  readonly days: number;
  /** caDays is the CA's validity; ignored when ca is given. */
  readonly caDays: number;
  readonly now: Date;
  /** ca signs the serving certificate instead of a new CA (rotation under an existing caBundle). */
  readonly ca?: { readonly certPem: string; readonly keyPem: string };
  /** keyAlgorithm is the type of the new keys: `ecdsa` (P-256, the default) or `rsa` (2048 bits). */
  readonly keyAlgorithm?: 'ecdsa' | 'rsa';
}

/** CertificateSet is PEM text for each file the certs command writes. */
export interface CertificateSet {
  readonly caCert: string;
  readonly caKey: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** notAfter is the serving certificate's expiry (cut to the CA's when the CA expires first). */
  readonly notAfter: Date;
}

/** CLOCK_SKEW_MS backdates notBefore so a peer whose clock runs a little behind still accepts the certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** CA_COMMON_NAME is the subject of a CA certs makes, the same as the cert-manager component's CA. */
export const CA_COMMON_NAME = 'lb-probe-webhook CA';

function serialNumber(): Buffer {
  // 16 random bytes with the top bit cleared: a positive serial, as RFC 5280 4.1.2.2 requires.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes;
}

/** newKey is an ECDSA P-256 key pair (small, fast, accepted by every Kubernetes version), or an RSA 2048 one. */
function newKey(algorithm: 'ecdsa' | 'rsa' = 'ecdsa'): { privateKey: KeyObject; spki: Buffer; pem: string } {
  const { privateKey, publicKey } = algorithm === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }), pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/**
 * generateCertificates returns a CA (new, or the one given) and a serving certificate for the
 * request. A given CA must have passed checkCa. It throws LBP_CERTIFICATE rather than return a
 * serving certificate that does not verify against the CA.
 */
export function generateCertificates(request: CertificateRequest): CertificateSet {
  const notBefore = new Date(request.now.getTime() - CLOCK_SKEW_MS);
  let ca: { certPem: string; keyPem: string; key: KeyObject; subject: Buffer; keyId: Buffer; notAfter: Date };
  if (request.ca !== undefined) {
    const cert = new X509Certificate(request.ca.certPem);
    const fields = tbsFields(cert.raw);
    const spki = fields[6] ?? Buffer.alloc(0);
    ca = {
      ...request.ca,
      key: createPrivateKey(request.ca.keyPem),
      // Go's chain building matches the issuer to the CA's subject byte for byte: copy it, never re-encode it.
      subject: fields[5] ?? Buffer.alloc(0),
      // Name the CA's own subjectKeyIdentifier, whichever way its issuer computed it; the RFC 5280 one only when it has none.
      keyId: readExtensions(cert.raw).subjectKeyId ?? keyIdentifier(spki),
      notAfter: cert.validToDate,
    };
  } else {
    const key = newKey(request.keyAlgorithm);
    const subject = commonNameDer(CA_COMMON_NAME);
    const notAfter = new Date(request.now.getTime() + request.caDays * DAY_MS);
    const certPem = issueCertificate(
      { serial: serialNumber(), issuer: subject, subject, notBefore, notAfter, spki: key.spki, ca: true, keyUsage: { digitalSignature: true, keyCertSign: true, cRLSign: true }, serverAuth: false },
      key.privateKey,
      'the new CA key',
    );
    ca = { certPem, keyPem: key.pem, key: key.privateKey, subject, keyId: keyIdentifier(key.spki), notAfter };
  }

  const serving = newKey(request.keyAlgorithm);
  const wanted = new Date(request.now.getTime() + request.days * DAY_MS);
  // A certificate's times have whole seconds.
  const notAfter = new Date(Math.floor((wanted > ca.notAfter ? ca.notAfter : wanted).getTime() / 1000) * 1000);
  const tlsCert = issueCertificate(
    {
      serial: serialNumber(),
      issuer: ca.subject,
      subject: commonNameDer(request.dns[0] ?? request.ips[0] ?? 'lb-probe-webhook'),
      notBefore,
      notAfter,
      spki: serving.spki,
      ca: false,
      // An RSA key also enciphers keys in RSA key exchange (RFC 5280 4.2.1.3); the server offers none, but clients check the bit.
      keyUsage: { digitalSignature: true, keyEncipherment: request.keyAlgorithm === 'rsa' },
      serverAuth: true,
      authorityKeyId: ca.keyId,
      dns: request.dns,
      ips: request.ips,
    },
    ca.key,
    'the CA key',
  );
  const set = { caCert: ca.certPem, caKey: ca.keyPem, tlsCert, tlsKey: serving.pem, notAfter };
  checkIssued(set.tlsCert, set.caCert);
  return set;
}
