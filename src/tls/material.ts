/**
 * The webhook port's TLS in one place: the certificate and key pair, read and checked to belong
 * together, and the protocol settings every secure context of that port is built with, at start
 * and at each certificate reload alike.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorCode, WebhookError } from '../errors.js';

/**
 * TLS_SERVER_OPTIONS: TLS 1.2 with ECDHE key exchange and AEAD ciphers only (AES-GCM,
 * ChaCha20-Poly1305), as the Kubernetes API server's secure defaults
 * (k8s.io/component-base/cli/flag ciphers.go, the "secure" list); TLS 1.3 keeps OpenSSL's suites,
 * which are all AEAD with forward secrecy. Node's default list also offers RSA key exchange and
 * CBC-SHA1 suites such as AES128-SHA.
 */
export const TLS_SERVER_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
} as const;

/** TlsPair is a PEM certificate chain and its private key. */
export interface TlsPair {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** TlsMaterial is a certificate chain and its private key, checked to belong together. */
export interface TlsMaterial extends TlsPair {
  readonly cert: string;
  readonly key: string;
  readonly notAfter: Date;
}

/** serverTlsOptions returns the secure-context options of the webhook port for a pair: TLS_SERVER_OPTIONS with its certificate and key. */
export function serverTlsOptions(pair: TlsPair): typeof TLS_SERVER_OPTIONS & TlsPair {
  return { ...TLS_SERVER_OPTIONS, cert: pair.cert, key: pair.key };
}

/** PEM_CERTIFICATE and PEM_KEY find the PEM blocks of a certificate and of a private key (PKCS#8, PKCS#1, SEC 1). */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/** checkTlsMaterial parses a PEM certificate and key and checks that the key belongs to the certificate; source names them in the error. */
export function checkTlsMaterial(cert: string, key: string, source: string): TlsMaterial {
  if (PEM_KEY.test(cert) && !PEM_CERTIFICATE.test(cert) && PEM_CERTIFICATE.test(key)) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot use TLS certificate and key ${source}: certificate and key swapped (the certificate file holds a private key, the key file a certificate)`);
  }
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
    return { cert, key, notAfter: new Date(x509.validTo) };
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot use TLS certificate and key ${source}: ${(err as Error).message}`, { cause: err });
  }
}

/** readTlsMaterial reads a certificate and key and checks them with checkTlsMaterial; a file that cannot be read is an LBP_CERTIFICATE error too. */
export async function readTlsMaterial(certPath: string, keyPath: string, source = `${certPath} with key ${keyPath}`): Promise<TlsMaterial> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.CERTIFICATE, `cannot read TLS certificate ${source}: ${(err as Error).message}`, { cause: err });
  }
  return checkTlsMaterial(cert, key, source);
}
