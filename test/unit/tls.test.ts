import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp } from '../../src/http/app.js';
import { fixture, policy } from '../support/fixtures.js';
import { decodePatch, review } from '../support/reviews.js';
import { runCli } from '../support/cli.js';
import { postJson } from '../support/https.js';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

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

describe('TLS parameters', () => {
  const port = () => Number(new URL(url).port);
  /** handshake connects with the given client options and resolves with the negotiated protocol and cipher, or the error. */
  const handshake = (options: ConnectionOptions) =>
    new Promise<{ protocol?: string | null; cipher?: string; error?: string }>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: port(), ca, servername: 'localhost', ...options });
      socket.once('secureConnect', () => {
        resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name });
        socket.destroy();
      });
      socket.once('error', (err) => resolve({ error: err.message }));
    });

  it.each([
    ['AES128-SHA (RSA key exchange, CBC, SHA-1)', 'AES128-SHA'],
    ['AES256-GCM-SHA384 (RSA key exchange, no forward secrecy)', 'AES256-GCM-SHA384'],
    ['ECDHE-RSA-AES128-SHA (CBC, SHA-1)', 'ECDHE-RSA-AES128-SHA'],
  ])('A TLS 1.2 client offering only %s cannot connect.', async (_name, ciphers) => {
    const result = await handshake({ maxVersion: 'TLSv1.2', ciphers });
    expect(result.error).toMatch(/handshake failure|no shared cipher|alert/i);
  });

  it.each([['ECDHE-RSA-AES128-GCM-SHA256'], ['ECDHE-RSA-AES256-GCM-SHA384'], ['ECDHE-RSA-CHACHA20-POLY1305']])('A TLS 1.2 client offering only %s connects with it.', async (ciphers) => {
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers })).toEqual({ protocol: 'TLSv1.2', cipher: ciphers });
  });

  it('A TLS 1.3 client connects with TLS 1.3, and a TLS 1.1 client cannot connect.', async () => {
    expect((await handshake({})).protocol).toBe('TLSv1.3');
    expect((await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).error).toBeDefined();
  });
});
