import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { generateCertificates } from '../../src/certs/generate.js';
import { WebhookError } from '../../src/errors.js';
import { buildWebhookApp } from '../../src/http/app.js';
import { checkTlsMaterial, readTlsMaterial, serverTlsOptions } from '../../src/tls/material.js';
import { fixture, policy } from '../support/fixtures.js';
import { decodePatch, review } from '../support/reviews.js';
import { runCli } from '../support/cli.js';
import { postJson } from '../support/https.js';
import { connect as tlsConnect, type ConnectionOptions, type Server as TlsServer } from 'node:tls';

const dir = mkdtempSync(join(tmpdir(), 'lbp-tls-'));
let app: FastifyInstance;
let url: string;
let ca: string;

beforeAll(async () => {
  const made = await runCli(['certs', '--out', dir, '--dns', 'localhost', '--ip', '127.0.0.1']);
  expect(made.code).toBe(0);
  ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  app = buildWebhookApp({
    policy: () => policy({ provider: 'azure' }),
    logger: pino({ level: 'silent' }),
    tls: { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  url = `https://localhost:${typeof address === 'object' && address ? address.port : 0}/mutate`;
});

afterAll(async () => {
  await app?.close();
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
  let rsaApp: FastifyInstance | undefined;

  beforeAll(async () => {
    if (kind === 'ECDSA') {
      port = Number(new URL(url).port);
      trusted = ca;
      return;
    }
    const rsa = generateCertificates({ dns: ['localhost'], ips: [], days: 1, caDays: 2, now: new Date(), keyAlgorithm: 'rsa' });
    expect(new X509Certificate(rsa.tlsCert).publicKey.asymmetricKeyType).toBe('rsa');
    rsaApp = buildWebhookApp({ policy: () => policy({ provider: 'azure' }), logger: pino({ level: 'silent' }), tls: { cert: rsa.tlsCert, key: rsa.tlsKey } });
    await rsaApp.listen({ port: 0, host: '127.0.0.1' });
    port = (rsaApp.server.address() as AddressInfo).port;
    trusted = rsa.caCert;
  });
  afterAll(async () => {
    await rsaApp?.close();
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

  it('names the pair by the source it is given, as the certificate reload does.', () => {
    expect(() => checkTlsMaterial(one.tlsCert, two.tlsKey, 'tls.crt with key tls.key')).toThrow('cannot use TLS certificate and key tls.crt with key tls.key: the key does not belong to the certificate');
  });

  it('builds a swapped-in certificate’s secure context with the same TLS parameters: new connections get the new certificate, and TLS 1.1 and CBC-SHA1 clients still cannot connect.', async () => {
    const trusted = `${one.caCert}${two.caCert}`;
    const swapped = buildWebhookApp({ policy: () => policy({ provider: 'azure' }), logger: pino({ level: 'silent' }), tls: { cert: one.tlsCert, key: one.tlsKey } });
    await swapped.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (swapped.server.address() as AddressInfo).port;
      expect((await connectTls(port, trusted, {})).fingerprint).toBe(new X509Certificate(one.tlsCert).fingerprint256);
      (swapped.server as unknown as TlsServer).setSecureContext(serverTlsOptions(checkTlsMaterial(two.tlsCert, two.tlsKey, 'two')));
      expect(await connectTls(port, trusted, {})).toEqual({ protocol: 'TLSv1.3', cipher: expect.any(String), fingerprint: new X509Certificate(two.tlsCert).fingerprint256 });
      expect((await connectTls(port, trusted, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).error).toBeDefined();
      expect((await connectTls(port, trusted, { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' })).error).toMatch(/handshake failure|no shared cipher|alert/i);
      expect(await connectTls(port, trusted, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).toMatchObject({ protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    } finally {
      await swapped.close();
    }
  });
});
