import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { parseAllDocuments } from 'yaml';
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
  // A curve Go's crypto/x509 (the API server) does not verify with.
  openssl('ecparam', '-name', 'secp256k1', '-genkey', '-noout', '-out', 'k1-ca.key');
  openssl('req', '-x509', '-key', 'k1-ca.key', '-out', 'k1-ca.crt', '-days', '30', '-subj', '/CN=K1 CA', '-addext', 'basicConstraints=critical,CA:TRUE');
  ca['k1'] = { cert: join(tmp, 'k1-ca.crt'), key: join(tmp, 'k1-ca.key') };
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
    ['a key from another CA (openssl RSA for an ECDSA CA)', 'first', 'openssl', /--ca-key .*openssl-ca\.key: this key does not belong to the CA certificate/],
    ['a CA key on a curve the API server cannot verify', 'k1', 'k1', /--ca-key .*k1-ca\.key: an ECDSA key on curve secp256k1; certs signs with P-256, P-384 or P-521 \(what the API server's Go verifies\)$/],
    ['a serving certificate given as the CA', 'leaf', 'leaf', /--ca-cert .*first\/tls\.crt: not a CA certificate \(basicConstraints CA is not true\)$/],
    ['a certificate with basicConstraints CA false', 'notCa', 'notCa', /not-ca\.crt: not a CA certificate/],
    ['a CA whose keyUsage lacks keyCertSign', 'noCertSign', 'noCertSign', /no-cert-sign\.crt: the CA's keyUsage does not allow keyCertSign$/],
    ['an expired CA', 'expired', 'expired', /expired\.crt: the CA expired on \d{4}-\d\d-\d\dT/],
    ['a CA not yet valid', 'future', 'future', /future\.crt: the CA is not valid before \d{4}-/],
    ['a certificate where the key is expected', 'first', 'CERT-AS-KEY', /--ca-key .*first\/ca\.crt: not a PEM private key \(found CERTIFICATE\)$/],
    ['a key where the certificate is expected', 'KEY-AS-CERT', 'first', /--ca-cert .*first\/ca\.key: not a PEM certificate \(found PRIVATE KEY\)$/],
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

  it.each(['first', 'openssl', 'noKeyUsage', 'ec'])('under the %s CA, the new serving certificate verifies with openssl and Node, and ca.crt is kept byte for byte.', async (name) => {
    const given = ca[name] as { cert: string; key: string };
    const out = join(tmp, `renewed-${name}`);
    const { code, stderr } = await runCli(['certs', '--out', out, '--dns', 'webhook.example.svc', '--ca-cert', given.cert, '--ca-key', given.key]);
    expect({ code, stderr }).toMatchObject({ code: 0, stderr: expect.stringMatching(new RegExp(`^lb-probe-webhook certs: wrote .* for webhook\\.example\\.svc, under the CA in ${given.cert}, valid until `)) as unknown });
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

describe('certs never replaces a CA or key silently', () => {
  const files = (out: string) => Object.fromEntries(['ca.crt', 'ca.key', 'tls.crt', 'tls.key'].map((f) => [f, readFileSync(join(out, f), 'utf8')]));

  it('a second run into the same directory is refused, exit 2 with one line, and every file stays; --force replaces them.', async () => {
    const out = join(tmp, 'twice');
    expect((await runCli(['certs', '--out', out, '--dns', 'localhost'])).code).toBe(0);
    const before = files(out);
    const second = await runCli(['certs', '--out', out, '--dns', 'localhost']);
    expect(second).toEqual({
      code: 2,
      stdout: '',
      stderr:
        `lb-probe-webhook certs: ${out}/ca.crt, ${out}/ca.key, ${out}/tls.crt, ${out}/tls.key exist: this would replace the CA that the caBundle of clusters trusts, so nothing was written; ` +
        `renew under it (--ca-cert ${out}/ca.crt --ca-key ${out}/ca.key), keep what fits (--if-missing), or replace it (--force)\n`,
    });
    expect(files(out)).toEqual(before);
    const forced = await runCli(['certs', '--out', out, '--dns', 'localhost', '--force']);
    expect(forced.code).toBe(0);
    expect(files(out)['ca.crt']).not.toBe(before['ca.crt']);
  });

  it('renewing in place under the CA already there replaces only the serving pair.', async () => {
    const out = join(tmp, 'in-place');
    expect((await runCli(['certs', '--out', out, '--dns', 'localhost'])).code).toBe(0);
    const before = files(out);
    const renewed = await runCli(['certs', '--out', out, '--dns', 'localhost', '--ca-cert', join(out, 'ca.crt'), '--ca-key', join(out, 'ca.key')]);
    expect(renewed.stderr).toMatch(new RegExp(`^lb-probe-webhook certs: wrote ${out}/tls.crt, ${out}/tls.key for localhost, under the CA in ${out}/ca.crt, valid until `));
    const after = files(out);
    expect([after['ca.crt'], after['ca.key']]).toEqual([before['ca.crt'], before['ca.key']]);
    expect(after['tls.key']).not.toBe(before['tls.key']);
    expect(openssl('verify', '-CAfile', join(out, 'ca.crt'), join(out, 'tls.crt')).trim()).toBe(`${join(out, 'tls.crt')}: OK`);
  });

  it('a CA from elsewhere into a directory with another CA is refused without --force.', async () => {
    const out = join(tmp, 'other-ca');
    expect((await runCli(['certs', '--out', out, '--dns', 'localhost'])).code).toBe(0);
    const before = files(out);
    const given = ca['openssl'] as { cert: string; key: string };
    const result = await runCli(['certs', '--out', out, '--dns', 'localhost', '--ca-cert', given.cert, '--ca-key', given.key]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/exist: this would replace the CA that the caBundle of clusters trusts, so nothing was written/);
    expect(files(out)).toEqual(before);
  });

  it('--if-missing keeps a certificate that fits the flags, and renews under the same CA one whose names or IPs changed, saying why.', async () => {
    const out = join(tmp, 'if-missing');
    expect((await runCli(['certs', '--out', out, '--dns', 'localhost', '--ip', '127.0.0.1'])).code).toBe(0);
    const before = files(out);
    // Same names in another order, and the IP written another way: it still fits.
    const kept = await runCli(['certs', '--out', out, '--ip', '127.0.0.1', '--dns', 'localhost', '--if-missing']);
    expect(kept).toEqual({ code: 0, stdout: '', stderr: `lb-probe-webhook certs: ${out}/tls.crt is for localhost, 127.0.0.1 and valid; kept (--if-missing)\n` });
    expect(files(out)).toEqual(before);
    const renewed = await runCli(['certs', '--out', out, '--dns', 'localhost', '--dns', 'webhook.example.svc', '--ip', '::1', '--if-missing']);
    expect(renewed.code).toBe(0);
    expect(renewed.stderr).toMatch(
      new RegExp(
        `^lb-probe-webhook certs: wrote ${out}/tls.crt, ${out}/tls.key for localhost, webhook.example.svc, ::1, under the CA in ${out}/ca.crt, valid until \\S+ ` +
          `\\(${out}/tls.crt did not fit: it is for localhost, 127.0.0.1, and the flags ask for localhost, webhook.example.svc, ::1\\)\\n$`,
      ),
    );
    const after = files(out);
    expect(after['ca.crt']).toBe(before['ca.crt']);
    expect(new X509Certificate(after['tls.crt'] as string).subjectAltName).toBe('DNS:localhost, DNS:webhook.example.svc, IP Address:0:0:0:0:0:0:0:1');
    expect(openssl('verify', '-CAfile', join(out, 'ca.crt'), join(out, 'tls.crt')).trim()).toBe(`${join(out, 'tls.crt')}: OK`);
  });

  it('--if-missing with a certificate that does not fit and no CA key to renew it under is reported, exit 2, nothing written.', async () => {
    const out = join(tmp, 'no-ca-key');
    expect((await runCli(['certs', '--out', out, '--dns', 'localhost'])).code).toBe(0);
    rmSync(join(out, 'ca.key'));
    const before = readFileSync(join(out, 'tls.crt'), 'utf8');
    const result = await runCli(['certs', '--out', out, '--dns', 'webhook.example.svc', '--if-missing']);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `lb-probe-webhook certs: ${out}/tls.crt does not fit: it is for localhost, and the flags ask for webhook.example.svc; there is no ${out}/ca.key to renew it under (give --ca-cert and --ca-key, or --force for a new CA)\n`,
    });
    expect(readFileSync(join(out, 'tls.crt'), 'utf8')).toBe(before);
  });
});

describe('certs under the CA the project’s cert-manager manifests make', () => {
  /** caSpec reads the CA Certificate (isCA: true) of the kustomize cert-manager component. */
  const component = parseAllDocuments(readFileSync(new URL('../../manifests/components/cert-manager/certificate.yaml', import.meta.url), 'utf8')).map((d) => d.toJS() as Record<string, any>);
  const caSpec = component.find((o) => o['kind'] === 'Certificate' && o['spec'].isCA === true)?.['spec'];
  const serving = component.find((o) => o['kind'] === 'Certificate' && o['spec'].isCA !== true)?.['spec'];

  it('the chart’s cert-manager CA asks for the same key as the kustomize component’s.', () => {
    const template = readFileSync(new URL('../../charts/lb-probe-webhook/templates/certificate.yaml', import.meta.url), 'utf8');
    const chartCa = template.slice(template.indexOf('isCA: true'), template.indexOf('issuerRef'));
    expect(chartCa).toContain(`algorithm: ${caSpec.privateKey.algorithm}\n    size: ${caSpec.privateKey.size}\n`);
    expect(chartCa).toContain(`commonName: ${caSpec.commonName}\n`);
  });

  /**
   * cmCa makes, with openssl, the CA cert-manager's selfSigned issuer makes for such a spec
   * (cert-manager pkg/util/pki: CN only, isCA, key usages cert sign plus the defaults digital
   * signature and key encipherment, the key in its default PKCS#1 / SEC 1 encoding): the files
   * of Secret lb-probe-webhook-ca (tls.crt, tls.key) as `kubectl get secret` would give them.
   */
  function cmCa(name: string, privateKey: { algorithm: string; size?: number }, hours: number): { cert: string; key: string } {
    const keyArgs: Record<string, string[]> = {
      ECDSA: ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:P-${privateKey.size ?? 256}`],
      RSA: ['-newkey', `rsa:${privateKey.size ?? 2048}`],
      Ed25519: ['-newkey', 'ed25519'],
    };
    const args = keyArgs[privateKey.algorithm];
    if (args === undefined) throw new Error(`the manifest asks for a key algorithm this test does not know: ${privateKey.algorithm}`);
    openssl('req', '-x509', ...args, '-nodes', '-keyout', `${name}.pkcs8.key`, '-out', `${name}.crt`, '-days', String(Math.ceil(hours / 24)), '-subj', `/CN=${caSpec.commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign');
    // cert-manager's default encoding is PKCS#1 (SEC 1 for ECDSA); Ed25519 keys have only PKCS#8.
    openssl('pkey', '-in', `${name}.pkcs8.key`, ...(privateKey.algorithm === 'Ed25519' ? [] : ['-traditional']), '-out', `${name}.key`);
    return { cert: join(tmp, `${name}.crt`), key: join(tmp, `${name}.key`) };
  }

  it.each([
    ['the component’s own spec', () => caSpec.privateKey as { algorithm: string; size?: number }],
    ['RSA 2048 (cert-manager’s default)', () => ({ algorithm: 'RSA', size: 2048 })],
    ['ECDSA P-384', () => ({ algorithm: 'ECDSA', size: 384 })],
    ['Ed25519', () => ({ algorithm: 'Ed25519' })],
  ])('under a cert-manager CA with %s, certs renews the serving certificate for the component’s DNS names, and openssl and Node verify it.', async (_name, key) => {
    const privateKey: { algorithm: string; size?: number } = key();
    const made = cmCa(`cm-${privateKey.algorithm}-${privateKey.size ?? 0}`, privateKey, Number(String(caSpec.duration).replace(/h$/, '')));
    expect(readFileSync(made.key, 'utf8')).toMatch(privateKey.algorithm === 'ECDSA' ? /^-----BEGIN EC PRIVATE KEY-----/ : /^-----BEGIN (RSA )?PRIVATE KEY-----/);
    const out = join(tmp, `cm-out-${privateKey.algorithm}-${privateKey.size ?? 0}`);
    const args = ['certs', '--out', out, ...serving.dnsNames.flatMap((d: string) => ['--dns', d]), '--ca-cert', made.cert, '--ca-key', made.key];
    const { code, stderr } = await runCli(args);
    expect({ code, stderr }).toMatchObject({ code: 0, stderr: expect.stringMatching(/^lb-probe-webhook certs: wrote /) as unknown });
    expect(openssl('verify', '-CAfile', made.cert, join(out, 'tls.crt')).trim()).toBe(`${join(out, 'tls.crt')}: OK`);
    const cert = new X509Certificate(readFileSync(join(out, 'tls.crt')));
    expect(cert.checkIssued(new X509Certificate(readFileSync(made.cert)))).toBe(true);
    expect(cert.subjectAltName).toBe(serving.dnsNames.map((d: string) => `DNS:${d}`).join(', '));
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).toBe(readFileSync(made.cert, 'utf8'));
  });
});
