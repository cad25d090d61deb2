import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';
import { cluster } from '../support/cluster.js';
import { waitFor } from '../support/controlplane.js';
import { ensureNamespace, registerWebhook, unregisterWebhook, type Overlay } from '../support/webhook.js';

const AZ = 'service.beta.kubernetes.io/';
const ALB = 'alb.ingress.kubernetes.io/';
const k = cluster();
const env = { KUBECONFIG: inject('controlPlane').kubeconfig };
const dir = mkdtempSync(join(tmpdir(), 'lbp-audit-'));
const policyFile = join(dir, 'policy.yaml');

function inNamespace(object: Record<string, any>, namespace: string): Record<string, any> {
  object.metadata = { ...object.metadata, namespace };
  delete object.metadata.ownerReferences;
  return object;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('audit against the real API server', () => {
  beforeAll(async () => {
    writeFileSync(policyFile, 'provider: azure\n');
    await ensureNamespace(k.kubectl, 'audit-a');
    await ensureNamespace(k.kubectl, 'audit-b');
    await k.apply([
      inNamespace(fixture('istio-gateway-service.yaml'), 'audit-a'),
      inNamespace(fixture('gateway-infrastructure.yaml'), 'audit-a'),
      inNamespace(fixture('service-user-probe.yaml'), 'audit-b'),
      inNamespace(fixture('service-clusterip.yaml'), 'audit-b'),
    ]);
  });

  it('lists every object the policy would change with what it would add, and exits 1.', async () => {
    const { code, stdout } = await runCli(['audit', '--policy', policyFile], '', env);
    expect(code).toBe(1);
    const rows = stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^NAMESPACE\s+KIND\s+NAME\s+WHERE\s+ANNOTATION$/);
    // The control plane is shared with the other e2e files: look at this file's namespaces.
    expect(rows.slice(1, -1).map((r) => r.split(/\s+/)).filter((r) => r[0]?.startsWith('audit-'))).toEqual([
      ['audit-a', 'Service', 'gateway-istio', 'metadata', `${AZ}port_80_health-probe_protocol=tcp`],
      ['audit-a', 'Service', 'gateway-istio', 'metadata', `${AZ}port_443_health-probe_protocol=tcp`],
      ['audit-b', 'Service', 'gateway-user', 'metadata', `${AZ}port_443_health-probe_protocol=tcp`],
      ['audit-a', 'Gateway', 'gateway', 'spec.infrastructure', `${AZ}port_80_health-probe_protocol=tcp`],
    ]);
    expect(rows.at(-1)).toMatch(/^would change \d+ of \d+ objects$/);
  });

  it('-o json with --namespace reports that namespace only.', async () => {
    const { code, stdout } = await runCli(['audit', '--policy', policyFile, '--namespace', 'audit-b', '-o', 'json'], '', env);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.scanned).toBe(2);
    expect(report.findings).toHaveLength(1);
    expect(report.findings[0]).toMatchObject({ kind: 'Service', namespace: 'audit-b', name: 'gateway-user', fixed: false });
    expect(report.findings[0].changes.map((c: { key: string }) => c.key)).toEqual([`${AZ}port_443_health-probe_protocol`]);
  });

  it('--fix applies exactly the listed annotations with its own field manager, touching nothing else; a second audit finds nothing.', async () => {
    const before = await k.get('service', 'gateway-user', 'audit-b');
    const fixA = await runCli(['audit', '--policy', policyFile, '--fix', '-n', 'audit-a'], '', env);
    expect(fixA.code).toBe(0);
    expect(fixA.stdout.trim().split('\n').at(-1)).toBe('fixed 2 of 2 to change (2 objects scanned)');
    const fixB = await runCli(['audit', '--policy', policyFile, '--fix', '-n', 'audit-b'], '', env);
    expect(fixB.code).toBe(0);
    expect(fixB.stdout.trim().split('\n').at(-1)).toBe('fixed 1 of 1 to change (2 objects scanned)');

    const after = await k.get('service', 'gateway-user', 'audit-b');
    expect(after?.metadata.annotations).toEqual({ ...before?.metadata.annotations, [`${AZ}port_443_health-probe_protocol`]: 'tcp' });
    expect(after?.spec).toEqual(before?.spec);
    expect(after?.metadata.labels).toEqual(before?.metadata.labels);
    const withFields = JSON.parse((await k.kubectl(['get', 'service', 'gateway-user', '-n', 'audit-b', '-o', 'json', '--show-managed-fields'])).stdout);
    const ours = withFields.metadata.managedFields.find((m: { manager: string }) => m.manager === 'lb-probe-webhook');
    expect(ours).toMatchObject({ operation: 'Apply' });
    expect(ours.fieldsV1).toEqual({ 'f:metadata': { 'f:annotations': { [`f:${AZ}port_443_health-probe_protocol`]: {} } } });

    const gateway = await k.get('gateway', 'gateway', 'audit-a');
    expect(gateway?.spec.infrastructure.annotations).toEqual({ [`${AZ}azure-dns-label-name`]: 'shop', [`${AZ}port_80_health-probe_protocol`]: 'tcp' });

    for (const namespace of ['audit-a', 'audit-b']) {
      const again = await runCli(['audit', '--policy', policyFile, '-n', namespace], '', env);
      expect(again.code).toBe(0);
      expect(again.stdout).toBe('nothing to change in 2 objects\n');
    }
  });

  it('without a reachable cluster it exits 2 with a clear message.', async () => {
    const missing = await runCli(['audit', '--policy', policyFile, '--kubeconfig', join(dir, 'nope')], '', env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot load the kubeconfig/);
    const bad = await runCli(['audit', '--policy', policyFile, '-o', 'yaml'], '', env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--output must be one of table, json, got "yaml"/);
  });
});

describe('audit with an AWS ALB policy (aws.alb: true) against the real API server', () => {
  const ns = 'audit-alb';
  const albPolicy = join(dir, 'alb.yaml');
  const keys = [`${ALB}healthcheck-protocol`, `${ALB}healthcheck-port`, `${ALB}healthcheck-path`];
  beforeAll(async () => {
    writeFileSync(albPolicy, 'provider: aws\naws: { alb: true }\n');
    await ensureNamespace(k.kubectl, ns);
    const nginx = inNamespace(fixture('ingress-nginx-controller.yaml'), ns);
    nginx.spec.type = 'NodePort';
    await k.apply([nginx, inNamespace(fixture('service-clusterip.yaml'), ns)]);
  });

  it('lists the NodePort ingress-nginx controller Service with the three ALB health check keys, not the ClusterIP Service no profile recognizes, and exits 1.', async () => {
    const { code, stdout, stderr } = await runCli(['audit', '--policy', albPolicy, '-n', ns], '', env);
    console.log(`audit --policy alb.yaml -n ${ns}: exit ${code}\n${stdout}${stderr}`);
    expect(stdout.trim().split('\n').map((r) => r.split(/\s+/))).toEqual([
      ['NAMESPACE', 'KIND', 'NAME', 'WHERE', 'ANNOTATION'],
      [ns, 'Service', 'ingress-nginx-controller', 'metadata', `${ALB}healthcheck-protocol=HTTP`],
      [ns, 'Service', 'ingress-nginx-controller', 'metadata', `${ALB}healthcheck-port=traffic-port`],
      [ns, 'Service', 'ingress-nginx-controller', 'metadata', `${ALB}healthcheck-path=/healthz`],
      ['would', 'change', '1', 'of', '2', 'objects'],
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(1);
  });

  it('-o json names the profile that applied in each change\'s reason.', async () => {
    const { code, stdout } = await runCli(['audit', '--policy', albPolicy, '-n', ns, '-o', 'json'], '', env);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.scanned).toBe(2);
    expect(report.findings.map((f: { name: string }) => f.name)).toEqual(['ingress-nginx-controller']);
    for (const change of report.findings[0].changes) expect(change.reason).toMatch(/ \(profile ingress-nginx\)$/);
  });

  it('--fix applies the three keys with its own field manager, leaves the type and ports alone, and a second audit finds nothing.', async () => {
    const before = await k.get('service', 'ingress-nginx-controller', ns);
    const fix = await runCli(['audit', '--policy', albPolicy, '-n', ns, '--fix'], '', env);
    console.log(`audit --fix: exit ${fix.code}\n${fix.stdout}${fix.stderr}`);
    expect(fix.code).toBe(0);
    expect(fix.stdout.trim().split('\n').at(-1)).toBe('fixed 1 of 1 to change (2 objects scanned)');

    const after = await k.get('service', 'ingress-nginx-controller', ns);
    expect(after?.metadata.annotations).toEqual({
      ...before?.metadata.annotations,
      [`${ALB}healthcheck-protocol`]: 'HTTP',
      [`${ALB}healthcheck-port`]: 'traffic-port',
      [`${ALB}healthcheck-path`]: '/healthz',
    });
    expect(after?.spec).toEqual(before?.spec);
    const withFields = JSON.parse((await k.kubectl(['get', 'service', 'ingress-nginx-controller', '-n', ns, '-o', 'json', '--show-managed-fields'])).stdout);
    const ours = withFields.metadata.managedFields.find((m: { manager: string }) => m.manager === 'lb-probe-webhook');
    expect(ours).toMatchObject({ operation: 'Apply' });
    expect(ours.fieldsV1).toEqual({ 'f:metadata': { 'f:annotations': Object.fromEntries(keys.map((key) => [`f:${key}`, {}])) } });
    const untouched = await k.get('service', 'gateway-internal', ns);
    expect(Object.keys(untouched?.metadata.annotations ?? {}).filter((key) => key.startsWith(ALB))).toEqual([]);

    const again = await runCli(['audit', '--policy', albPolicy, '-n', ns], '', env);
    expect(again).toEqual({ code: 0, stdout: 'nothing to change in 2 objects\n', stderr: '' });
  });
});

describe('audit --as-webhook, as the heal job runs it, against the real API server', () => {
  const svc = (name: string, namespace: string) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'http', port: 80, appProtocol: 'http' }] },
  });
  const warnPolicy = join(dir, 'warn.yaml');
  // Registrations that no webhook answers (failurePolicy Ignore admits everything unannotated),
  // with each overlay's own namespaceSelector.
  const registrations = { 'opt-in': 'lbp-heal-opt-in', 'cluster-wide': 'lbp-heal-cluster-wide' } as const;
  const names = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .slice(1, -1)
      .map((r) => r.split(/\s+/).slice(0, 3).join('/'))
      .filter((r) => r.startsWith('heal-'));

  beforeAll(async () => {
    writeFileSync(warnPolicy, 'provider: azure\nmode: warn\n');
    await ensureNamespace(k.kubectl, 'heal-in', { 'lb-probe-webhook/enabled': 'true' });
    await ensureNamespace(k.kubectl, 'heal-out');
    await ensureNamespace(k.kubectl, 'heal-off', { 'lb-probe-webhook/enabled': 'false' });
    // Written before the webhook was registered: the webhook never saw it, so the heal job must not touch it.
    await k.apply([svc('old', 'heal-in')]);
    // Both carry whole seconds: register in the next one.
    const second = Math.floor(Date.now() / 1000);
    await waitFor('the next second', 2000, () => Promise.resolve(Math.floor(Date.now() / 1000) > second));
    for (const [overlay, name] of Object.entries(registrations)) {
      await registerWebhook(k.kubectl, k.binDir, overlay as Overlay, { name, url: 'https://127.0.0.1:1/mutate', caBundle: '', failurePolicy: 'Ignore' });
    }
    await k.apply([svc('a', 'heal-in'), svc('b', 'heal-out'), svc('c', 'heal-off')]);
  });

  afterAll(async () => {
    for (const name of Object.values(registrations)) await unregisterWebhook(k.kubectl, name);
  });

  const predating = (name: string) =>
    `lb-probe-webhook audit: 1 object selected by MutatingWebhookConfiguration ${name} was last written before it existed, so the webhook never saw it: left alone (adopt them with audit --fix, without --as-webhook)\n`;

  it('with the opt-in registration lists only the Services of namespaces labelled enabled written since it exists, and names the one before.', async () => {
    const { code, stdout } = await runCli(['audit', '--policy', policyFile, '--as-webhook', registrations['opt-in']], '', env);
    expect([...new Set(names(stdout))]).toEqual(['heal-in/Service/a']);
    expect(code).toBe(1);
    // The control plane is shared with the other e2e files: their objects in labelled namespaces predate it too.
    const inOne = await runCli(['audit', '--policy', policyFile, '-n', 'heal-in', '--as-webhook', registrations['opt-in']], '', env);
    expect(inOne.stderr).toBe(predating(registrations['opt-in']));
    // Without --as-webhook, audit adopts it like any other.
    const plain = await runCli(['audit', '--policy', policyFile, '-n', 'heal-in'], '', env);
    expect([...new Set(names(plain.stdout))].sort()).toEqual(['heal-in/Service/a', 'heal-in/Service/old']);
  });

  it('with the cluster-wide registration lists every namespace but those labelled false.', async () => {
    const { code, stdout } = await runCli(['audit', '--policy', policyFile, '--as-webhook', registrations['cluster-wide']], '', env);
    expect([...new Set(names(stdout))].sort()).toEqual(['heal-in/Service/a', 'heal-out/Service/b']);
    expect(code).toBe(1);
  });

  it('with a policy in warn mode changes nothing, as the webhook would not, where plain audit would.', async () => {
    const asWebhook = await runCli(['audit', '--policy', warnPolicy, '--fix', '--as-webhook', registrations['cluster-wide']], '', env);
    expect(asWebhook.code).toBe(0);
    expect(asWebhook.stdout).toMatch(/^nothing to change in \d+ objects\n$/);
    expect((await k.get('service', 'b', 'heal-out'))?.metadata.annotations?.[`${AZ}port_80_health-probe_protocol`]).toBeUndefined();
    const plain = await runCli(['audit', '--policy', warnPolicy, '-n', 'heal-out'], '', env);
    expect(plain.code).toBe(1);
  });

  it('--fix fixes exactly the Services the registration selects.', async () => {
    const fix = await runCli(['audit', '--policy', policyFile, '--fix', '--as-webhook', registrations['opt-in']], '', env);
    expect(fix.code).toBe(0);
    expect(fix.stdout.trim().split("\n").at(-1)).toBe("fixed 1 of 1 to change (1 object scanned)");
    expect((await k.get('service', 'a', 'heal-in'))?.metadata.annotations?.[`${AZ}port_80_health-probe_protocol`]).toBe('tcp');
    expect((await k.get('service', 'b', 'heal-out'))?.metadata.annotations?.[`${AZ}port_80_health-probe_protocol`]).toBeUndefined();
    expect((await k.get('service', 'c', 'heal-off'))?.metadata.annotations?.[`${AZ}port_80_health-probe_protocol`]).toBeUndefined();
    expect((await k.get('service', 'old', 'heal-in'))?.metadata.annotations?.[`${AZ}port_80_health-probe_protocol`]).toBeUndefined();
  });

  it('naming a registration that does not exist exits 2 with one line naming it.', async () => {
    const { code, stderr } = await runCli(['audit', '--policy', policyFile, '--as-webhook', 'no-such-webhook'], '', env);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/--as-webhook: reading MutatingWebhookConfiguration no-such-webhook: .*404/);
  });
});
