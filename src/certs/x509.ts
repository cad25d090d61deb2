/**
 * X.509 certificates built as DER (RFC 5280) with node-forge's ASN.1 codec and signed with
 * node:crypto, so a CA key may be RSA, ECDSA (P-256, P-384, P-521) or Ed25519: the key types
 * cert-manager issues (`privateKey.algorithm: RSA | ECDSA | Ed25519`). node-forge's own
 * certificate API signs with RSA keys only.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import forge from 'node-forge';
import { ErrorCode, WebhookError } from '../errors.js';

const { asn1 } = forge;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

/** OIDS are the object identifiers this module writes. */
const OIDS = {
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** SignatureAlgorithm is how a key of one type signs: the digest for node:crypto, and the AlgorithmIdentifier written in the certificate. */
interface SignatureAlgorithm {
  readonly digest: string | null;
  readonly oid: string;
  /** nullParameters: RSA's AlgorithmIdentifier carries NULL parameters; ECDSA's and Ed25519's carry none (RFC 5758 3.2, RFC 8410 3). */
  readonly nullParameters: boolean;
}

/** signatureAlgorithm picks the signature for a CA key: SHA-256 with RSA, ECDSA with the hash that matches the curve (RFC 5480 4), or Ed25519. */
export function signatureAlgorithm(key: KeyObject, name: string): SignatureAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { digest: 'sha256', oid: '1.2.840.113549.1.1.11', nullParameters: true };
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return { digest: 'sha256', oid: '1.2.840.10045.4.3.2', nullParameters: false };
      if (curve === 'secp384r1') return { digest: 'sha384', oid: '1.2.840.10045.4.3.3', nullParameters: false };
      if (curve === 'secp521r1') return { digest: 'sha512', oid: '1.2.840.10045.4.3.4', nullParameters: false };
      throw new WebhookError(ErrorCode.CERTIFICATE, `${name}: an ECDSA key on curve ${curve ?? 'unknown'}; certs signs with P-256, P-384 or P-521 (what the API server's Go verifies)`);
    }
    case 'ed25519':
      return { digest: null, oid: '1.3.101.112', nullParameters: false };
    default:
      throw new WebhookError(ErrorCode.CERTIFICATE, `${name}: a ${key.asymmetricKeyType?.toUpperCase() ?? 'key of unknown type'} key; certs signs with RSA, ECDSA or Ed25519 CA keys`);
  }
}

type Asn1 = forge.asn1.Asn1;

const sequence = (items: Asn1[]): Asn1 => asn1.create(U, T.SEQUENCE, true, items);
const oid = (id: string): Asn1 => asn1.create(U, T.OID, false, asn1.oidToDer(id).getBytes());
const octets = (bytes: string): Asn1 => asn1.create(U, T.OCTETSTRING, false, bytes);
const bool = (value: boolean): Asn1 => asn1.create(U, T.BOOLEAN, false, value ? '\xff' : '\x00');
const fromDer = (der: Buffer): Asn1 => asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
const toDer = (node: Asn1): Buffer => Buffer.from(asn1.toDer(node).getBytes(), 'binary');

/** integer writes a non-negative integer given as big-endian bytes, with the leading zero DER needs when the top bit is set. */
function integer(bytes: Buffer): Asn1 {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  const body = (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return asn1.create(U, T.INTEGER, false, body.toString('binary'));
}

/** time writes UTCTime through 2049 and GeneralizedTime from 2050, as RFC 5280 4.1.2.5 requires. */
function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050 ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(date)) : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function algorithmIdentifier(algorithm: SignatureAlgorithm): Asn1 {
  return sequence(algorithm.nullParameters ? [oid(algorithm.oid), asn1.create(U, T.NULL, false, '')] : [oid(algorithm.oid)]);
}

/** commonNameDer is the DER of a Name holding one commonName, as a UTF8String. */
export function commonNameDer(commonName: string): Buffer {
  const atv = sequence([oid(OIDS.commonName), asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(commonName))]);
  return toDer(sequence([asn1.create(U, T.SET, true, [atv])]));
}

/** keyIdentifier is RFC 5280 4.2.1.2 method 1: the SHA-1 of the subjectPublicKey BIT STRING's bits, from a key's SubjectPublicKeyInfo DER. */
export function keyIdentifier(spki: Buffer): Buffer {
  const info = fromDer(spki).value as Asn1[];
  const bits = (info[1]?.value as string | undefined) ?? '';
  // The BIT STRING's first byte counts its unused bits; the key is what follows.
  return createHash('sha1').update(Buffer.from(bits.slice(1), 'binary')).digest();
}

/** ipBytes is an IP address as the 4 or 16 bytes a subjectAltName iPAddress holds (RFC 5280 4.2.1.6), or undefined when it is not one. */
export function ipBytes(ip: string): Buffer | undefined {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const address = ip.replace(/%.*$/, '');
  if (!isIPv6(address)) return undefined;
  const groups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = address.split('::');
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const words = [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const bytes = Buffer.alloc(16);
  words.forEach((word, i) => bytes.writeUInt16BE(word, i * 2));
  return bytes;
}

/** KeyUsage lists the keyUsage bits this module sets. */
export interface KeyUsage {
  readonly digitalSignature?: boolean;
  readonly keyEncipherment?: boolean;
  readonly keyCertSign?: boolean;
  readonly cRLSign?: boolean;
}

/** keyUsageBits writes the keyUsage BIT STRING (RFC 5280 4.2.1.3), without trailing zero bits, as DER wants. */
function keyUsageBits(usage: KeyUsage): Asn1 {
  const byte = (usage.digitalSignature ? 0x80 : 0) | (usage.keyEncipherment ? 0x20 : 0) | (usage.keyCertSign ? 0x04 : 0) | (usage.cRLSign ? 0x02 : 0);
  let unused = 0;
  while (unused < 7 && (byte & (1 << unused)) === 0) unused++;
  return asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + String.fromCharCode(byte));
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return sequence([oid(id), ...(critical ? [bool(true)] : []), octets(asn1.toDer(value).getBytes())]);
}

/** CertificateTemplate is what goes into a certificate; the issuer and subject are DER Names. */
export interface CertificateTemplate {
  readonly serial: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** spki is the subject's public key, as SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
  readonly ca: boolean;
  readonly keyUsage: KeyUsage;
  readonly serverAuth: boolean;
  /** authorityKeyId is the issuer's subjectKeyIdentifier (absent for a self-signed CA). */
  readonly authorityKeyId?: Buffer;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
}

/** issueCertificate writes a template as an X.509 v3 certificate signed by signer, in PEM. */
export function issueCertificate(template: CertificateTemplate, signer: KeyObject, signerName: string): string {
  const algorithm = signatureAlgorithm(signer, signerName);
  const extensions: Asn1[] = [
    extension(OIDS.basicConstraints, true, sequence(template.ca ? [bool(true), integer(Buffer.from([0]))] : [])),
    extension(OIDS.keyUsage, true, keyUsageBits(template.keyUsage)),
  ];
  if (template.serverAuth) extensions.push(extension(OIDS.extKeyUsage, false, sequence([oid(OIDS.serverAuth)])));
  extensions.push(extension(OIDS.subjectKeyIdentifier, false, octets(keyIdentifier(template.spki).toString('binary'))));
  if (template.authorityKeyId !== undefined) {
    extensions.push(extension(OIDS.authorityKeyIdentifier, false, sequence([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, template.authorityKeyId.toString('binary'))])));
  }
  const names = [
    ...(template.dns ?? []).map((dns) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 2, false, dns)),
    ...(template.ips ?? []).map((ip) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 7, false, (ipBytes(ip) ?? Buffer.alloc(0)).toString('binary'))),
  ];
  if (names.length > 0) extensions.push(extension(OIDS.subjectAltName, false, sequence(names)));
  const tbs = sequence([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [integer(Buffer.from([2]))]),
    integer(template.serial),
    algorithmIdentifier(algorithm),
    fromDer(template.issuer),
    sequence([time(template.notBefore), time(template.notAfter)]),
    fromDer(template.subject),
    fromDer(template.spki),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [sequence(extensions)]),
  ]);
  const tbsDer = toDer(tbs);
  const signature = sign(algorithm.digest, tbsDer, signer);
  const der = toDer(sequence([fromDer(tbsDer), algorithmIdentifier(algorithm), asn1.create(U, T.BITSTRING, false, `\x00${signature.toString('binary')}`)]));
  const base64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
}

/** tbsFields returns the DER of the TBSCertificate fields of a PEM certificate: [0] version, [1] serial, [2] signature algorithm, [3] issuer, [4] validity, [5] subject, [6] public key, [7] extensions. */
export function tbsFields(certDer: Buffer): Buffer[] {
  const tbs = (fromDer(certDer).value as Asn1[])[0];
  return ((tbs?.value as Asn1[] | undefined) ?? []).map(toDer);
}

/** CertificateExtensions are the extensions a CA check reads. */
export interface CertificateExtensions {
  /** ca is basicConstraints CA (false when the extension is absent). */
  readonly ca: boolean;
  /** keyCertSign is keyUsage keyCertSign; undefined when the certificate has no keyUsage extension. */
  readonly keyCertSign: boolean | undefined;
  /** subjectKeyId is the subjectKeyIdentifier, if the certificate has one. */
  readonly subjectKeyId: Buffer | undefined;
}

/** readExtensions reads basicConstraints, keyUsage and subjectKeyIdentifier from a certificate's DER, whatever its key type. */
export function readExtensions(certDer: Buffer): CertificateExtensions {
  const tbs = ((fromDer(certDer).value as Asn1[])[0]?.value as Asn1[] | undefined) ?? [];
  const explicit = tbs.find((f) => f.tagClass === asn1.Class.CONTEXT_SPECIFIC && (f.type as number) === 3);
  const list = ((explicit?.value as Asn1[] | undefined)?.[0]?.value as Asn1[] | undefined) ?? [];
  let ca = false;
  let keyCertSign: boolean | undefined;
  let subjectKeyId: Buffer | undefined;
  for (const ext of list) {
    const parts = ext.value as Asn1[];
    const id = asn1.derToOid(forge.util.createBuffer(parts[0]?.value as string));
    const value = asn1.fromDer(forge.util.createBuffer((parts.at(-1)?.value as string | undefined) ?? ''));
    if (id === OIDS.basicConstraints) {
      const first = (value.value as Asn1[])[0];
      ca = first?.type === T.BOOLEAN && first.value !== '\x00';
    } else if (id === OIDS.keyUsage) {
      const bits = value.value as string;
      keyCertSign = ((bits.charCodeAt(1) || 0) & 0x04) !== 0;
    } else if (id === OIDS.subjectKeyIdentifier) {
      subjectKeyId = Buffer.from(value.value as string, 'binary');
    }
  }
  return { ca, keyCertSign, subjectKeyId };
}
