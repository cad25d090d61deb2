/**
 * generateCertificates makes a CA and a serving certificate signed by it, with node-forge. Pure
 * apart from randomness: the caller passes the clock and writes the files.
 */
import forge from 'node-forge';
import { checkIssued } from './ca.js';

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

function serialNumber(): string {
  // 16 random bytes with the top bit cleared: a positive serial, as RFC 5280 4.1.2.2 requires.
  const bytes = forge.random.getBytesSync(16);
  return (bytes.charCodeAt(0) & 0x7f).toString(16).padStart(2, '0') + forge.util.bytesToHex(bytes.slice(1));
}

function keyPair(): forge.pki.rsa.KeyPair {
  return forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

function newCertificate(publicKey: forge.pki.PublicKey, now: Date, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  return cert;
}

function caKeyIdentifier(caCert: forge.pki.Certificate): string {
  // Name the CA's own subjectKeyIdentifier, whichever way its issuer computed it; a new one only when it has none.
  const ski = caCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  return ski?.subjectKeyIdentifier !== undefined ? forge.util.hexToBytes(ski.subjectKeyIdentifier) : caCert.generateSubjectKeyIdentifier().getBytes();
}

/**
 * generateCertificates returns a CA (new, or the one given) and a serving certificate for the
 * request. A given CA must have passed checkCa. It throws LBP_CERTIFICATE rather than return a
 * serving certificate that does not verify against the CA.
 */
export function generateCertificates(request: CertificateRequest): CertificateSet {
  let caCert: forge.pki.Certificate;
  let caKey: forge.pki.rsa.PrivateKey;
  if (request.ca !== undefined) {
    caCert = forge.pki.certificateFromPem(request.ca.certPem);
    caKey = forge.pki.privateKeyFromPem(request.ca.keyPem);
  } else {
    const keys = keyPair();
    caKey = keys.privateKey;
    caCert = newCertificate(keys.publicKey, request.now, request.caDays);
    const subject = [{ name: 'commonName', value: 'lb-probe-webhook CA' }];
    caCert.setSubject(subject);
    caCert.setIssuer(subject);
    caCert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true, pathLenConstraint: 0 },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    caCert.sign(caKey, forge.md.sha256.create());
  }

  const keys = keyPair();
  const cert = newCertificate(keys.publicKey, request.now, request.days);
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setSubject([{ name: 'commonName', value: request.dns[0] ?? request.ips[0] ?? 'lb-probe-webhook' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caKeyIdentifier(caCert) },
    {
      name: 'subjectAltName',
      altNames: [...request.dns.map((value) => ({ type: 2, value })), ...request.ips.map((ip) => ({ type: 7, ip }))],
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());

  const set = {
    caCert: request.ca?.certPem ?? forge.pki.certificateToPem(caCert),
    caKey: request.ca?.keyPem ?? forge.pki.privateKeyToPem(caKey),
    tlsCert: forge.pki.certificateToPem(cert),
    tlsKey: forge.pki.privateKeyToPem(keys.privateKey),
    notAfter: cert.validity.notAfter,
  };
  checkIssued(set.tlsCert, set.caCert);
  return set;
}
