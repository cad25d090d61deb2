import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { parse, parseAllDocuments } from 'yaml';
import { FIXTURES, fixture, fixturePath } from '../support/fixtures.js';
import { runCli, startServeOnLoopback, stopProcess, type startServe } from '../support/cli.js';
import { postJson } from '../support/https.js';
import { decodePatch, review } from '../support/reviews.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-cli-'));
const AZ = 'service.beta.kubernetes.io/';
const azurePolicy = join(tmp, 'azure.yaml');
const awsPolicy = join(tmp, 'aws.yaml');
const allFixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).map((f) => join(FIXTURES, f));

beforeAll(() => {
  writeFileSync(azurePolicy, 'provider: azure\n');
  writeFileSync(awsPolicy, 'provider: aws\nprobe: readiness\n');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function annotationsOf(yamlText: string, index = 0): Record<string, string> | undefined {
  const doc = parseAllDocuments(yamlText)[index];
  return (doc?.toJS() as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations;
}

describe('render', () => {
  it('Azure: the Istio-generated Service comes out with a TCP probe per http/https port, comments kept.', async () => {
    const { code, stdout, stderr } = await runCli(['render', '--policy', azurePolicy, fixturePath('istio-gateway-service.yaml')]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(annotationsOf(stdout)).toEqual({ [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' });
    expect(stdout.startsWith("# The Service Istio's Gateway API controller generates")).toBe(true);
  });

  it('AWS readiness: a Load Balancer Controller Service gets the HTTP health check on status-port.', async () => {
    const { code, stdout } = await runCli(['render', '--policy', awsPolicy, fixturePath('service-aws-nlb.yaml')]);
    expect(code).toBe(0);
    expect(annotationsOf(stdout)).toEqual({
      'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'http',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port': 'status-port',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': '/healthz/ready',
    });
  });

  it('AWS readiness: an in-tree Service is left byte for byte, with the warning on stderr.', async () => {
    const { code, stdout, stderr } = await runCli(['render', '--policy', awsPolicy, fixturePath('istio-gateway-service.yaml')]);
    expect(code).toBe(0);
    expect(stdout).toBe(readFileSync(fixturePath('istio-gateway-service.yaml'), 'utf8'));
    expect(stderr).toMatch(/^lb-probe-webhook render: \S+istio-gateway-service.yaml:3: Service istio-ingress\/gateway-istio: AWS: for a readiness check, set loadBalancerClass service\.k8s\.aws\/nlb/);
  });

  it.each([['azure', azurePolicy], ['aws', awsPolicy]])('%s: a second render of its own output changes nothing, and check then finds nothing.', async (_name, policyFile) => {
    const first = await runCli(['render', '--policy', policyFile, ...allFixtures]);
    expect(first.code).toBe(0);
    const second = await runCli(['render', '--policy', policyFile], first.stdout);
    expect(second.stdout).toBe(first.stdout);
    const check = await runCli(['check', '--policy', policyFile], first.stdout);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/^0 changes in 0 of \d+ objects the policy handles(, \d+ warnings)?\n$/);
  });

  it('Documents the policy leaves alone are copied byte for byte, and every document stays.', async () => {
    const input = readFileSync(fixturePath('istio-chart-service.yaml'), 'utf8') + '---\n' + readFileSync(fixturePath('service-clusterip.yaml'), 'utf8');
    const { stdout } = await runCli(['render', '--policy', azurePolicy], input);
    expect(stdout).toBe(input);
  });

  it('A List is rendered item by item.', async () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [fixture('service-clusterip.yaml'), fixture('istio-gateway-service.yaml')] };
    const { stdout } = await runCli(['render', '--policy', azurePolicy], JSON.stringify(list));
    const out = parse(stdout) as { items: { metadata: { annotations?: object } }[] };
    expect(out.items[0]?.metadata.annotations).toBeUndefined();
    expect(out.items[1]?.metadata.annotations).toEqual({ [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' });
  });

  it('Invalid YAML is exit 2 with the line, and nothing on stdout.', async () => {
    const input = readFileSync(fixturePath('istio-gateway-service.yaml'), 'utf8') + '---\nkind: [Service\n';
    const { code, stdout, stderr } = await runCli(['render', '--policy', azurePolicy], input);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^lb-probe-webhook render: <stdin>: invalid input \(1 problem\)\n {2}<stdin>:\d+: /);
  });
});

describe('check', () => {
  it('Lists each change with file, line, object, key, value and reason, and exits 1.', async () => {
    const { code, stdout } = await runCli(['check', '--policy', azurePolicy, fixturePath('istio-gateway-service.yaml'), fixturePath('service-user-probe.yaml')]);
    expect(code).toBe(1);
    expect(stdout.split('\n')).toEqual([
      `${fixturePath('istio-gateway-service.yaml')}:3: Service istio-ingress/gateway-istio: add metadata.annotations[${AZ}port_80_health-probe_protocol]="tcp": Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)`,
      `${fixturePath('istio-gateway-service.yaml')}:3: Service istio-ingress/gateway-istio: add metadata.annotations[${AZ}port_443_health-probe_protocol]="tcp": Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)`,
      `${fixturePath('service-user-probe.yaml')}:2: Service istio-ingress/gateway-user: add metadata.annotations[${AZ}port_443_health-probe_protocol]="tcp": Azure probes port 443 (https) over TCP instead of GET / (appProtocol https)`,
      '3 changes in 2 of 2 objects the policy handles',
      '',
    ]);
  });

  it('Exits 0 when the objects it handles need nothing.', async () => {
    const rendered = await runCli(['render', '--policy', azurePolicy, fixturePath('istio-gateway-service.yaml')]);
    const { code, stdout } = await runCli(['check', '--policy', azurePolicy], rendered.stdout);
    expect({ code, stdout }).toEqual({ code: 0, stdout: '0 changes in 0 of 1 object the policy handles\n' });
  });

  it.each([
    ['With aws.alb, check counts the NodePort ingress-nginx controller Service it annotates among the objects the policy handles', 'provider: aws\naws: { alb: true }\n', 3, '3 changes in 1 of 1 object the policy handles'],
    ['Without aws.alb (azure), check leaves the NodePort controller Service out of the count', 'provider: azure\n', 0, '0 changes in 0 of 0 objects the policy handles'],
  ])('%s; Services no profile recognizes are never counted.', async (_name, policyText, changes, summary) => {
    const file = join(tmp, `alb-${changes}.yaml`);
    writeFileSync(file, policyText);
    const [controller, admission] = [fixture('ingress-nginx-controller.yaml', 0), fixture('ingress-nginx-controller.yaml', 1)];
    (controller['spec'] as Record<string, unknown>)['type'] = 'NodePort';
    const input = [controller, admission, fixture('service-clusterip.yaml')].map((o) => JSON.stringify(o)).join('\n---\n');
    const { code, stdout } = await runCli(['check', '--policy', file, '--allow-empty'], input);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe(summary);
    expect(lines.slice(0, -1)).toHaveLength(changes);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^<stdin>:1: Service ingress-nginx\/ingress-nginx-controller: add metadata\.annotations\[alb\.ingress\.kubernetes\.io\/healthcheck-/);
    expect(code).toBe(changes > 0 ? 1 : 0);
  });

  it('Reports what enforcement would change even in warn mode.', async () => {
    const warn = join(tmp, 'warn.yaml');
    writeFileSync(warn, 'provider: azure\nmode: warn\n');
    expect((await runCli(['check', '--policy', warn, fixturePath('istio-gateway-service.yaml')])).code).toBe(1);
    const rendered = await runCli(['render', '--policy', warn, fixturePath('istio-gateway-service.yaml')]);
    expect(rendered.stdout).toBe(readFileSync(fixturePath('istio-gateway-service.yaml'), 'utf8'));
  });
});

describe('errors', () => {
  it.each([
    ['a broken policy', ['check', '--policy', 'BROKEN', fixturePath('istio-gateway-service.yaml')], /invalid policy \(3 problems\)\n {2}.*broken\.yaml:1: provider: unknown provider "openstack".*\n {2}.*:2: mode: must be one of "enforce", "warn", got "always"\n {2}.*:3: bogus: unknown key/],
    ['an unknown provider', ['render', '--policy', 'UNKNOWN'], /unknown provider "gce"; one of "azure", "aws"/],
    ['a missing policy file', ['render', '--policy', '/nonexistent/policy.yaml'], /^lb-probe-webhook render: \/nonexistent\/policy.yaml: cannot read the policy: ENOENT: no such file or directory\n$/],
    ['a missing --policy', ['check', fixturePath('istio-gateway-service.yaml')], /^lb-probe-webhook check: --policy is required \(`lb-probe-webhook check --help` lists its flags\)\n$/],
    ['an unknown flag', ['render', '--policy', 'AZURE', '--dry-run'], /^lb-probe-webhook render: unknown flag --dry-run/],
    ['an unknown command', ['mutate'], /^lb-probe-webhook: unknown command "mutate"/],
    ['a missing manifest', ['check', '--policy', 'AZURE', '/nonexistent.yaml'], /^lb-probe-webhook check: \/nonexistent.yaml: cannot read: ENOENT: no such file or directory\n$/],
    ['no command (the usage goes to stderr)', [], /^lb-probe-webhook adds the cloud load-balancer health-probe annotations[^]*\nUsage:\n {2}lb-probe-webhook COMMAND \[flags\]\n/],
  ])('%s is exit 2 with a clear message.', async (_name, args, message) => {
    const broken = join(tmp, 'broken.yaml');
    const unknown = join(tmp, 'unknown.yaml');
    writeFileSync(broken, 'provider: openstack\nmode: always\nbogus: 1\n');
    writeFileSync(unknown, 'provider: gce\n');
    const resolved = args.map((a) => (a === 'BROKEN' ? broken : a === 'UNKNOWN' ? unknown : a === 'AZURE' ? azurePolicy : a));
    const { code, stdout, stderr } = await runCli(resolved);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
  });
});

describe('certs', () => {
  it('Writes ca.crt, ca.key, tls.crt and tls.key, keys private, the serving certificate signed by the CA for every name.', async () => {
    const out = join(tmp, 'certs');
    const { code } = await runCli(['certs', '--out', out, '--dns', 'webhook.lb-probe-webhook.svc', '--dns', 'localhost', '--ip', '127.0.0.1', '--days', '30']);
    expect(code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(statSync(join(out, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'ca.key')).mode & 0o777).toBe(0o600);
    const caCert = new X509Certificate(readFileSync(join(out, 'ca.crt')));
    const cert = new X509Certificate(readFileSync(join(out, 'tls.crt')));
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:webhook.lb-probe-webhook.svc, DNS:localhost, IP Address:127.0.0.1');
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThan(31);
  });

  it('--ca-cert and --ca-key sign a new serving certificate under the existing CA, so the caBundle stays.', async () => {
    const first = join(tmp, 'ca-first');
    const second = join(tmp, 'ca-second');
    await runCli(['certs', '--out', first, '--dns', 'localhost']);
    const { code } = await runCli(['certs', '--out', second, '--dns', 'localhost', '--ca-cert', join(first, 'ca.crt'), '--ca-key', join(first, 'ca.key')]);
    expect(code).toBe(0);
    expect(readFileSync(join(second, 'ca.crt'), 'utf8')).toBe(readFileSync(join(first, 'ca.crt'), 'utf8'));
    const caCert = new X509Certificate(readFileSync(join(first, 'ca.crt')));
    expect(new X509Certificate(readFileSync(join(second, 'tls.crt'))).verify(caCert.publicKey)).toBe(true);
    expect(readFileSync(join(second, 'tls.crt'), 'utf8')).not.toBe(readFileSync(join(first, 'tls.crt'), 'utf8'));
  });

  it('--if-missing keeps existing certificates.', async () => {
    const out = join(tmp, 'keep');
    await runCli(['certs', '--out', out, '--dns', 'localhost']);
    const before = readFileSync(join(out, 'tls.crt'), 'utf8');
    const { code, stderr } = await runCli(['certs', '--out', out, '--dns', 'localhost', '--if-missing']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/kept \(--if-missing\)/);
    expect(readFileSync(join(out, 'tls.crt'), 'utf8')).toBe(before);
  });

  it.each([
    [['--out', 'X'], /at least one --dns is required/],
    [['--out', 'X', '--dns', 'bad_name'], /--dns "bad_name" is not a DNS name/],
    [['--out', 'X', '--dns', 'localhost', '--ip', '999.1.1.1'], /--ip "999.1.1.1" is not an IP address/],
    [['--out', 'X', '--dns', 'localhost', '--days', '0'], /--days must be a whole number from 1 to 36500/],
    [['--out', 'X', '--dns', 'localhost', '--days', '400', '--ca-days', '300'], /--days 400 is longer than the CA's --ca-days 300/],
    [['--out', 'X', '--dns', 'localhost', '--ca-cert', 'X'], /--ca-cert and --ca-key go together/],
  ])('Bad flags %j are exit 2 and write nothing.', async (args, message) => {
    const out = join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const { code, stderr } = await runCli(['certs', ...args.map((a) => (a === 'X' ? out : a))]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(() => readdirSync(out)).toThrow();
  });
});

describe('serve', () => {
  const certs = join(tmp, 'serve-certs');
  let server: Awaited<ReturnType<typeof startServe>>;
  let url: string;

  beforeAll(async () => {
    expect((await runCli(['certs', '--out', certs, '--dns', 'localhost', '--ip', '127.0.0.1'])).code).toBe(0);
    server = await startServeOnLoopback({ policy: azurePolicy, cert: join(certs, 'tls.crt'), key: join(certs, 'tls.key') });
    url = `https://localhost:${server.port}/mutate`;
  });
  afterAll(async () => {
    if (server) await stopProcess(server.child);
  });

  function get(path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.healthPort, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
        .on('error', reject)
        .end();
    });
  }

  it('answers a real AdmissionReview over TLS with the patch that adds the Azure TCP probe of the http port.', async () => {
    const ca = readFileSync(join(certs, 'ca.crt'), 'utf8');
    const object = fixture('kserve-inference-gateway.yaml', 1);
    const res = await postJson(url, review(object), ca);
    expect(res.status).toBe(200);
    expect(decodePatch(JSON.parse(res.body))).toEqual([{ op: 'add', path: '/metadata/annotations', value: { [`${AZ}port_80_health-probe_protocol`]: 'tcp' } }]);
    // Log lines are flushed every 250 ms.
    for (let i = 0; i < 40 && !server.logs.some((l) => l.msg === 'review'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(server.logs.filter((l) => l.msg === 'review').at(-1)).toMatchObject({ kind: 'Service', namespace: 'kserve', decision: 'patched', operation: 'CREATE' });
  });

  it('refuses a malformed review with 400 and keeps serving.', async () => {
    const ca = readFileSync(join(certs, 'ca.crt'), 'utf8');
    const bad = await postJson(url, '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}', ca);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'LBP_REVIEW_INVALID' });
    const good = await postJson(url, review(fixture('istio-gateway-service.yaml')), ca);
    expect(good.status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });

  it('serves /healthz and /readyz on the plain-HTTP health port.', async () => {
    expect(await get('/healthz')).toEqual({ status: 200, body: '{"status":"ok"}' });
    expect(await get('/readyz')).toEqual({ status: 200, body: '{"status":"ready"}' });
  });

  it.each([
    ['a broken policy', 'provider: azure\nprobe: sometimes\n', /invalid policy \(1 problem\)\n {2}.*:2: probe: must be one of/],
    ['an unknown provider', 'provider: vsphere\n', /unknown provider "vsphere"/],
  ])('does not start with %s: exit 2 and the message.', async (_name, text, message) => {
    const file = join(tmp, `serve-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    const { code, stderr } = await runCli(['serve', '--policy', file, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--port', '0', '--health-port', '0']);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it.each([
    ['--reload-interval', '2h', /--reload-interval must be a duration like 500ms, 30s or 1m, from 100ms to 1h, got "2h"/],
    ['--shutdown-delay', '1h', /--shutdown-delay must be a duration like 500ms, 30s or 1m, from 0s to 5m, got "1h"/],
    ['--port', '70000', /--port must be a whole number from 0 to 65535/],
  ])('refuses %s %s with exit 2.', async (flag, value, message) => {
    const { code, stderr } = await runCli(['serve', '--policy', azurePolicy, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), flag, value]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it.each([
    ['--port', (taken: number) => ['--health-port', '0', '--port', String(taken)]],
    ['--health-port', (taken: number) => ['--port', '0', '--health-port', String(taken)]],
  ])('does not start when %s is a port in use: exit 2, one line naming the flag and the address.', async (flag, ports) => {
    const { code, stderr } = await runCli(['serve', '--policy', azurePolicy, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--address', '127.0.0.1', ...ports(server.port)]);
    expect(code).toBe(2);
    expect(stderr).toBe(`lb-probe-webhook serve: ${flag} ${server.port}: 127.0.0.1:${server.port} is already in use\n`);
  });

  it('does not start with the same --port and --health-port: exit 2 naming both.', async () => {
    const { code, stderr } = await runCli(['serve', '--policy', azurePolicy, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--port', '8443', '--health-port', '8443']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^lb-probe-webhook serve: --port and --health-port must differ, both are 8443/);
  });

  it('does not start with the certificate and the key swapped, and says so in one line.', async () => {
    const { code, stderr } = await runCli(['serve', '--policy', azurePolicy, '--tls-cert', join(certs, 'tls.key'), '--tls-key', join(certs, 'tls.crt'), '--port', '0', '--health-port', '0']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^lb-probe-webhook serve: cannot use TLS certificate and key .*: certificate and key swapped \(the certificate file holds a private key, the key file a certificate\)\n$/);
  });

  it('does not start with an invalid LOG_LEVEL: one line, not an internal error.', async () => {
    const { code, stderr } = await runCli(['serve', '--policy', azurePolicy, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--port', '0', '--health-port', '0'], '', { LOG_LEVEL: 'loud' });
    expect(code).toBe(2);
    expect(stderr).toBe('lb-probe-webhook serve: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n');
  });

  it('logs where it serves, https for the webhook port and http for the health port.', () => {
    const listening = server.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at ')).map((l) => l.msg);
    expect(listening).toEqual([`Server listening at http://127.0.0.1:${server.healthPort}`, `Server listening at https://127.0.0.1:${server.port}`]);
    expect(server.logs.find((l) => l.msg === 'serving')).toMatchObject({ url: `https://127.0.0.1:${server.port}/mutate`, healthUrl: `http://127.0.0.1:${server.healthPort}` });
  });

  it('does not start with a key that does not belong to the certificate.', async () => {
    const other = join(tmp, 'serve-other');
    await runCli(['certs', '--out', other, '--dns', 'localhost']);
    const { code, stderr } = await runCli(['serve', '--policy', azurePolicy, '--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(other, 'tls.key'), '--port', '0', '--health-port', '0']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/does not belong to the certificate/);
  });

  it('exits 0 on SIGTERM.', async () => {
    const started = await startServeOnLoopback({ policy: azurePolicy, cert: join(certs, 'tls.crt'), key: join(certs, 'tls.key') });
    const code = await stopProcess(started.child);
    expect({ code, stderr: started.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(started.logs.map((l) => l.msg)).toContain('stopped');
  });
});
