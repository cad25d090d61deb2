import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../../src/certs/generate.js';
import { WebhookError } from '../../src/errors.js';
import { createWebhookServer, type WebhookServer } from '../../src/http/server.js';
import { createLog } from '../../src/log/log.js';
import { checkTlsMaterial, readTlsMaterial, serverTlsOptions, TLS_SERVER_OPTIONS } from '../../src/tls/material.js';
import { ManualClock } from '../support/clock.js';
import { fixture, policy } from '../support/fixtures.js';
import { decodePatch, review } from '../support/reviews.js';
import { runCli } from '../support/cli.js';
import { postJson } from '../support/https.js';
import { connect as tlsConnect, DEFAULT_MIN_VERSION, type ConnectionOptions } from 'node:tls';

const dir = mkdtempSync(join(tmpdir(), 'lbp-tls-'));
let server: WebhookServer;
let url: string;

/** webhook builds the admission server on a manual clock, logging nowhere. */
function webhook(tls: { cert: string | Buffer; key: string | Buffer }): WebhookServer {
  const clock = new ManualClock();
  return createWebhookServer({ policy: () => policy({ provider: 'azure' }), tls, log: createLog({ level: 'silent', destination: { write: () => undefined }, clock }), clock });
}
let ca: string;

beforeAll(async () => {
  const made = await runCli(['certs', '--out', dir, '--dns', 'localhost', '--ip', '127.0.0.1']);
  expect(made.code).toBe(0);
  ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  server = webhook({ cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) });
  url = `https://localhost:${await server.listen(0, '127.0.0.1')}/mutate`;
});

afterAll(async () => {
  await server?.close(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('the webhook over a real TLS socket', () => {
  it('A client trusting the CA from `certs` gets the AdmissionReview with the patch.', async () => {
    const res = await postJson(url, review(fixture('istio-gateway-service.yaml')), ca);
    expect(res.status).toBe(200);
    expect(decodePatch(JSON.parse(res.body))).toEqual([
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { 'service.beta.kubernetes.io/port_80_health-probe_protocol': 'tcp', 'service.beta.kubernetes.io/port_443_health-probe_protocol': 'tcp' },
      },
    ]);
  });

  it('The same certificate is valid for the IP SAN.', async () => {
    const res = await postJson(url.replace('localhost', '127.0.0.1'), review(fixture('istio-gateway-service.yaml')), ca);
    expect(res.status).toBe(200);
  });

  it('A client trusting another CA refuses the server’s certificate.', async () => {
    const other = mkdtempSync(join(tmpdir(), 'lbp-tls-other-'));
    try {
      expect((await runCli(['certs', '--out', other, '--dns', 'localhost'])).code).toBe(0);
      await expect(postJson(url, review(fixture('istio-gateway-service.yaml')), readFileSync(join(other, 'ca.crt'), 'utf8'))).rejects.toThrow(
        /self[- ]signed|unable to verify|certificate/i,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

/** connectTls connects to a loopback port with the given client options and resolves with the negotiated protocol, cipher and server certificate, or the error. */
function connectTls(port: number, trusted: string, options: ConnectionOptions) {
  return new Promise<{ protocol?: string | null; cipher?: string; fingerprint?: string; error?: string }>((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: trusted, servername: 'localhost', ...options });
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name, fingerprint: socket.getPeerX509Certificate()?.fingerprint256 });
      socket.destroy();
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

describe.each([
  ['an ECDSA certificate (what certs makes)', 'ECDSA'],
  ['an RSA certificate', 'RSA'],
] as const)('TLS parameters with %s', (_name, kind) => {
  let port = 0;
  let trusted = '';
  let rsaServer: WebhookServer | undefined;

  beforeAll(async () => {
    if (kind === 'ECDSA') {
      port = Number(new URL(url).port);
      trusted = ca;
      return;
    }
    const rsa = generateCertificates({ dns: ['localhost'], ips: [], days: 1, caDays: 2, now: new Date(), keyAlgorithm: 'rsa' });
    expect(new X509Certificate(rsa.tlsCert).publicKey.asymmetricKeyType).toBe('rsa');
    rsaServer = webhook({ cert: rsa.tlsCert, key: rsa.tlsKey });
    port = await rsaServer.listen(0, '127.0.0.1');
    trusted = rsa.caCert;
  });
  afterAll(async () => {
    await rsaServer?.close(0);
  });

  /** handshake connects to the webhook with the given client options: the protocol and cipher, or the error. */
  const handshake = async (options: ConnectionOptions) => {
    const { protocol, cipher, error } = await connectTls(port, trusted, options);
    return error === undefined ? { protocol, cipher } : { error };
  };

  it.each(
    kind === 'RSA'
      ? [
          ['AES128-SHA (RSA key exchange, CBC, SHA-1)', 'AES128-SHA'],
          ['AES256-GCM-SHA384 (RSA key exchange, no forward secrecy)', 'AES256-GCM-SHA384'],
          ['ECDHE-RSA-AES128-SHA (CBC, SHA-1)', 'ECDHE-RSA-AES128-SHA'],
        ]
      : [['ECDHE-ECDSA-AES128-SHA (CBC, SHA-1)', 'ECDHE-ECDSA-AES128-SHA']],
  )('A TLS 1.2 client offering only %s cannot connect.', async (_cipher, ciphers) => {
    const result = await handshake({ maxVersion: 'TLSv1.2', ciphers });
    expect(result.error).toMatch(/handshake failure|no shared cipher|alert/i);
  });

  it.each([[`ECDHE-${kind}-AES128-GCM-SHA256`], [`ECDHE-${kind}-AES256-GCM-SHA384`], [`ECDHE-${kind}-CHACHA20-POLY1305`]])('A TLS 1.2 client offering only %s connects with it.', async (ciphers) => {
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers })).toEqual({ protocol: 'TLSv1.2', cipher: ciphers });
  });

  it('A TLS 1.3 client connects with TLS 1.3, and a TLS 1.1 client cannot connect.', async () => {
    expect((await handshake({})).protocol).toBe('TLSv1.3');
    expect((await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).error).toBeDefined();
  });

  // Node's own default already refuses TLS 1.1 (and OpenSSL 3 refuses it at its default security
  // level), so no handshake can show that ours does: the setting itself is what is checked.
  it('Sets TLS 1.2 as the minimum itself, in every secure context of the webhook port, whatever Node’s default.', () => {
    expect(DEFAULT_MIN_VERSION).toBe('TLSv1.2');
    expect(TLS_SERVER_OPTIONS.minVersion).toBe('TLSv1.2');
    expect(serverTlsOptions({ cert: 'c', key: 'k' })).toMatchObject({ minVersion: 'TLSv1.2', cert: 'c', key: 'k' });
  });
});

describe('the TLS material module (src/tls/material.ts)', () => {
  const now = new Date();
  const one = generateCertificates({ dns: ['localhost'], ips: [], days: 1, caDays: 2, now });
  const two = generateCertificates({ dns: ['localhost'], ips: [], days: 3, caDays: 4, now });
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads a certificate and the key that belongs to it, with the certificate’s notAfter.', async () => {
    const material = await readTlsMaterial(write('one.crt', one.tlsCert), write('one.key', one.tlsKey));
    expect(material).toEqual({ cert: one.tlsCert, key: one.tlsKey, notAfter: new Date(new X509Certificate(one.tlsCert).validTo) });
  });

  it.each([
    ['a certificate file that does not exist', () => [join(dir, 'missing.crt'), write('k1.key', one.tlsKey)], /^cannot read TLS certificate .*missing\.crt with key .*k1\.key: ENOENT/],
    ['a key file that does not exist', () => [write('c1.crt', one.tlsCert), join(dir, 'missing.key')], /^cannot read TLS certificate .*c1\.crt with key .*missing\.key: ENOENT/],
    ['a certificate that is not PEM', () => [write('c2.crt', 'not a certificate\n'), write('k2.key', one.tlsKey)], /^cannot use TLS certificate and key .*c2\.crt with key .*k2\.key: /],
    ['a certificate cut short', () => [write('c3.crt', one.tlsCert.slice(0, 200)), write('k3.key', one.tlsKey)], /^cannot use TLS certificate and key .*c3\.crt with key .*k3\.key: /],
    ['a key of another certificate', () => [write('c4.crt', one.tlsCert), write('k4.key', two.tlsKey)], /^cannot use TLS certificate and key .*c4\.crt with key .*k4\.key: the key does not belong to the certificate$/],
  ])('refuses %s with LBP_CERTIFICATE, naming both files.', async (_name, paths, message) => {
    const [cert, key] = paths();
    const refused = await readTlsMaterial(cert!, key!).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WebhookError);
    expect({ code: (refused as WebhookError).code, message: (refused as WebhookError).message }).toEqual({ code: 'LBP_CERTIFICATE', message: expect.stringMatching(message) });
  });

  it('says "certificate and key swapped" when the certificate file holds the key and the key file the certificate.', async () => {
    const refused = await readTlsMaterial(write('swapped.crt', one.tlsKey), write('swapped.key', one.tlsCert)).catch((err: unknown) => err);
    expect((refused as WebhookError).message).toMatch(/^cannot use TLS certificate and key .*swapped\.crt with key .*swapped\.key: certificate and key swapped \(the certificate file holds a private key, the key file a certificate\)$/);
  });

  it('names the pair by the source it is given, as the certificate reload does.', () => {
    expect(() => checkTlsMaterial(one.tlsCert, two.tlsKey, 'tls.crt with key tls.key')).toThrow('cannot use TLS certificate and key tls.crt with key tls.key: the key does not belong to the certificate');
  });

  it('builds a swapped-in certificate’s secure context with the same TLS parameters: new connections get the new certificate, and TLS 1.1 and CBC-SHA1 clients still cannot connect.', async () => {
    const trusted = `${one.caCert}${two.caCert}`;
    const swapped = webhook({ cert: one.tlsCert, key: one.tlsKey });
    const port = await swapped.listen(0, '127.0.0.1');
    try {
      expect((await connectTls(port, trusted, {})).fingerprint).toBe(new X509Certificate(one.tlsCert).fingerprint256);
      swapped.rotateCertificate(checkTlsMaterial(two.tlsCert, two.tlsKey, 'two'));
      expect(await connectTls(port, trusted, {})).toEqual({ protocol: 'TLSv1.3', cipher: expect.any(String), fingerprint: new X509Certificate(two.tlsCert).fingerprint256 });
      expect((await connectTls(port, trusted, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).error).toBeDefined();
      expect((await connectTls(port, trusted, { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' })).error).toMatch(/handshake failure|no shared cipher|alert/i);
      expect(await connectTls(port, trusted, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).toMatchObject({ protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    } finally {
      await swapped.close(0);
    }
  });
});
