import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { runCli } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-certs-'));
const DAY = 86_400_000;

/** forgeCa writes a CA certificate and key made with node-forge, with the validity and extensions given. */
function forgeCa(name: string, options: { from: number; to: number; ca?: boolean; keyCertSign?: boolean | undefined }): { cert: string; key: string } {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() + options.from);
  cert.validity.notAfter = new Date(Date.now() + options.to);
  const subject = [{ name: 'commonName', value: name }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const extensions: object[] = [{ name: 'basicConstraints', cA: options.ca ?? true, critical: true }];
  if (options.keyCertSign !== undefined) extensions.push({ name: 'keyUsage', keyCertSign: options.keyCertSign, digitalSignature: true, critical: true });
  cert.setExtensions(extensions);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const files = { cert: join(tmp, `${name}.crt`), key: join(tmp, `${name}.key`) };
  writeFileSync(files.cert, forge.pki.certificateToPem(cert));
  writeFileSync(files.key, forge.pki.privateKeyToPem(keys.privateKey));
  return files;
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

const ca: Record<string, { cert: string; key: string }> = {};

beforeAll(async () => {
  for (const name of ['first', 'second']) {
    const out = join(tmp, name);
    expect((await runCli(['certs', '--out', out, '--dns', 'localhost'])).code).toBe(0);
    ca[name] = { cert: join(out, 'ca.crt'), key: join(out, 'ca.key') };
  }
  // A CA as an operator makes one with openssl: UTF8String names, its own subjectKeyIdentifier.
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'openssl-ca.key', '-out', 'openssl-ca.crt', '-days', '30',
    '-subj', '/O=Example Ops/CN=Example Webhook CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ca['openssl'] = { cert: join(tmp, 'openssl-ca.crt'), key: join(tmp, 'openssl-ca.key') };
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec-ca.key');
  openssl('req', '-x509', '-key', 'ec-ca.key', '-out', 'ec-ca.crt', '-days', '30', '-subj', '/CN=EC CA', '-addext', 'basicConstraints=critical,CA:TRUE');
  ca['ec'] = { cert: join(tmp, 'ec-ca.crt'), key: join(tmp, 'ec-ca.key') };
  ca['leaf'] = { cert: join(tmp, 'first', 'tls.crt'), key: join(tmp, 'first', 'tls.key') };
  ca['expired'] = forgeCa('expired', { from: -30 * DAY, to: -1 * DAY, keyCertSign: true });
  ca['future'] = forgeCa('future', { from: 2 * DAY, to: 30 * DAY, keyCertSign: true });
  ca['notCa'] = forgeCa('not-ca', { from: -DAY, to: 30 * DAY, ca: false });
  ca['noCertSign'] = forgeCa('no-cert-sign', { from: -DAY, to: 30 * DAY, keyCertSign: false });
  ca['noKeyUsage'] = forgeCa('no-key-usage', { from: -DAY, to: 30 * DAY, keyCertSign: undefined });
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('certs --ca-cert --ca-key (renewal under an existing CA)', () => {
  it.each([
    ['a CA key from another CA', 'first', 'second', /--ca-key .*second\/ca\.key: this key does not belong to the CA certificate --ca-cert .*first\/ca\.crt$/],
    ['an EC key for an RSA CA', 'first', 'ec', /--ca-key .*ec-ca\.key: this key does not belong to the CA certificate/],
    ['an EC CA (node-forge signs with RSA only)', 'ec', 'ec', /--ca-key .*ec-ca\.key: the CA key is EC; certs can sign only with an RSA CA key$/],
    ['a serving certificate given as the CA', 'leaf', 'leaf', /--ca-cert .*first\/tls\.crt: not a CA certificate \(basicConstraints CA is not true\)$/],
    ['a certificate with basicConstraints CA false', 'notCa', 'notCa', /not-ca\.crt: not a CA certificate/],
    ['a CA whose keyUsage lacks keyCertSign', 'noCertSign', 'noCertSign', /no-cert-sign\.crt: the CA's keyUsage does not allow keyCertSign$/],
    ['an expired CA', 'expired', 'expired', /expired\.crt: the CA expired on \d{4}-\d\d-\d\dT/],
    ['a CA not yet valid', 'future', 'future', /future\.crt: the CA is not valid before \d{4}-/],
    ['a certificate where the key is expected', 'first', 'CERT-AS-KEY', /--ca-key .*first\/ca\.crt: not a PEM private key \(found CERTIFICATE\)$/],
    ['a key where the certificate is expected', 'KEY-AS-CERT', 'first', /--ca-cert .*first\/ca\.key: not a PEM certificate \(found RSA PRIVATE KEY\)$/],
    ['a directory where the certificate is expected', 'DIR', 'first', /--ca-cert .*: cannot read: EISDIR/],
    ['a missing key file', 'first', 'MISSING', /--ca-key .*missing\.key: cannot read: ENOENT/],
    ['an endless file where the key is expected', 'first', 'ZERO', /--ca-key \/dev\/zero: larger than 1048576 bytes; not a PEM file$/],
  ])('%s is refused with exit 2, one line naming the file, and nothing written.', async (_name, certFrom, keyFrom, message) => {
    const certPath = certFrom === 'KEY-AS-CERT' ? (ca['first']?.key as string) : certFrom === 'DIR' ? tmp : (ca[certFrom]?.cert as string);
    const keyPath = keyFrom === 'CERT-AS-KEY' ? (ca['first']?.cert as string) : keyFrom === 'MISSING' ? join(tmp, 'missing.key') : keyFrom === 'ZERO' ? '/dev/zero' : (ca[keyFrom]?.key as string);
    // An existing certificate directory, as at renewal: a refusal must leave it exactly as it was.
    const out = join(tmp, `refused-${Math.random().toString(36).slice(2)}`);
    mkdirSync(out);
    writeFileSync(join(out, 'tls.crt'), 'previous certificate');
    const { code, stdout, stderr } = await runCli(['certs', '--out', out, '--dns', 'localhost', '--ca-cert', certPath, '--ca-key', keyPath]);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^lb-probe-webhook certs: /);
    expect(lines[0]).toMatch(message);
    expect(readdirSync(out)).toEqual(['tls.crt']);
    expect(readFileSync(join(out, 'tls.crt'), 'utf8')).toBe('previous certificate');
  });

  it.each(['first', 'openssl', 'noKeyUsage'])('under the %s CA, the new serving certificate verifies with openssl and Node, and ca.crt is kept byte for byte.', async (name) => {
    const given = ca[name] as { cert: string; key: string };
    const out = join(tmp, `renewed-${name}`);
    const { code, stderr } = await runCli(['certs', '--out', out, '--dns', 'webhook.example.svc', '--ca-cert', given.cert, '--ca-key', given.key]);
    expect({ code, stderr }).toMatchObject({ code: 0, stderr: expect.stringMatching(/^certs: wrote .* valid until /) as unknown });
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).toBe(readFileSync(given.cert, 'utf8'));
    expect(openssl('verify', '-CAfile', given.cert, join(out, 'tls.crt')).trim()).toBe(`${join(out, 'tls.crt')}: OK`);
    const caCert = new X509Certificate(readFileSync(given.cert));
    const cert = new X509Certificate(readFileSync(join(out, 'tls.crt')));
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
  });

  it('a CA expiring before --days cuts the serving certificate to the CA and says so.', async () => {
    const short = forgeCa('short', { from: -DAY, to: 10 * DAY, keyCertSign: true });
    const out = join(tmp, 'short-out');
    const { code, stderr } = await runCli(['certs', '--out', out, '--dns', 'localhost', '--days', '365', '--ca-cert', short.cert, '--ca-key', short.key]);
    expect(code).toBe(0);
    expect(stderr).toMatch(/cut to the CA's expiry\n$/);
    expect(new X509Certificate(readFileSync(join(out, 'tls.crt'))).validToDate.getTime()).toBeLessThanOrEqual(Date.now() + 10 * DAY);
  });
});
