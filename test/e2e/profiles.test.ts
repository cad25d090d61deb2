/**
 * Workload profiles on the real control plane: the built CLI's `serve`, registered with the
 * project's own kustomize manifests, mutating chart-shaped Services the real kube-apiserver stores.
 * Under Azure with probe readiness each profile gets its own readiness endpoint; under AWS with
 * aws.alb and the aws-alb component, the NodePort Services of recognized workloads reach the
 * webhook and get the ALB health check, and other NodePort Services never reach it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { fixture } from '../support/fixtures.js';
import { cluster } from '../support/cluster.js';
import { waitFor } from '../support/controlplane.js';
import { ensureNamespace, registerWebhook, startWebhook, unregisterWebhook, waitUntilMutating, type RunningWebhook } from '../support/webhook.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AZ = 'service.beta.kubernetes.io/';
const ALB = 'alb.ingress.kubernetes.io/';
const k = cluster();

/** placed returns a fixture document renamed into a namespace, as a plain object to edit. */
function placed(file: string, index: number, namespace: string, name: string, type?: string): Record<string, any> {
  const object = fixture(file, index) as Record<string, any>;
  object.metadata = { ...object.metadata, namespace, name };
  if (type !== undefined) object.spec.type = type;
  return object;
}

/** annotations returns the stored Service's annotations, without kubectl's last-applied-configuration. */
async function annotations(name: string, namespace: string): Promise<Record<string, string>> {
  const stored = ((await k.get('service', name, namespace))?.metadata.annotations ?? {}) as Record<string, string>;
  return Object.fromEntries(Object.entries(stored).filter(([key]) => key !== 'kubectl.kubernetes.io/last-applied-configuration'));
}

/** kustomize renders an overlay, with components when given, through kubectl's built-in kustomize. */
function kustomize(components: readonly string[]): Record<string, any>[] {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-alb-'));
  try {
    const rel = (path: string) => relative(dir, join(ROOT, path));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${rel('manifests/overlays/opt-in')}]\ncomponents: [${components.map((c) => rel(`manifests/components/${c}`)).join(', ')}]\n`,
    );
    const out = spawnSync(join(k.binDir, 'kubectl'), ['kustomize', dir], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(out.stderr);
    return parseAllDocuments(out.stdout).map((d) => d.toJS() as Record<string, any>);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('profiles under Azure with probe readiness (opt-in overlay)', () => {
  const ns = 'profiles-azure';
  let webhook: RunningWebhook;
  let registration: string;
  beforeAll(async () => {
    webhook = await startWebhook('provider: azure\nprobe: readiness\n');
    await ensureNamespace(k.kubectl, ns, { 'lb-probe-webhook/enabled': 'true' });
    registration = await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-e2e-profiles-azure' });
    await waitUntilMutating(k.kubectl, ns);
  });
  afterAll(async () => {
    await unregisterWebhook(k.kubectl, registration);
    await webhook?.stop();
  });

  it('The ingress-nginx chart’s controller Service is stored with GET /healthz on its http port for both traffic ports, and the log names the profile.', async () => {
    const { stderr } = await k.apply(placed('ingress-nginx-controller.yaml', 0, ns, 'nginx'));
    expect(await annotations('nginx', ns)).toMatchObject({
      [`${AZ}port_80_health-probe_protocol`]: 'http',
      [`${AZ}port_80_health-probe_port`]: 'http',
      [`${AZ}port_80_health-probe_request-path`]: '/healthz',
      [`${AZ}port_443_health-probe_protocol`]: 'http',
      [`${AZ}port_443_health-probe_port`]: 'http',
      [`${AZ}port_443_health-probe_request-path`]: '/healthz',
    });
    expect(stderr).toContain('Warning: lb-probe-webhook: Azure probes port 443 (https) with GET :http/healthz instead of GET / (profile ingress-nginx)');
    expect((await webhook.settledReviews('nginx')).map((l) => [l['decision'], l['profile']])).toEqual([['patched', 'ingress-nginx']]);
  });

  it('The HAProxy chart’s controller Service is stored with TCP probes: its health endpoint is no Service port.', async () => {
    await k.apply(placed('haproxy-ingress-controller.yaml', 0, ns, 'haproxy'));
    const stored = await annotations('haproxy', ns);
    expect(Object.fromEntries(Object.entries(stored).filter(([key]) => key.startsWith(AZ)))).toEqual({
      [`${AZ}port_80_health-probe_protocol`]: 'tcp',
      [`${AZ}port_443_health-probe_protocol`]: 'tcp',
    });
    expect((await webhook.settledReviews('haproxy')).map((l) => l['profile'])).toEqual(['haproxy-ingress']);
  });

  it('The classic Istio gateway Service is stored with its status port’s /healthz/ready probe.', async () => {
    await k.apply(placed('istio-classic-ingressgateway.yaml', 0, ns, 'istio-classic'));
    expect(await annotations('istio-classic', ns)).toMatchObject({
      [`${AZ}port_80_health-probe_port`]: 'status-port',
      [`${AZ}port_80_health-probe_request-path`]: '/healthz/ready',
    });
  });
});

describe('AWS ALB backends (aws.alb: true, opt-in overlay with the aws-alb component)', () => {
  const ns = 'profiles-alb';
  let webhook: RunningWebhook;
  const name = 'lbp-e2e-profiles-alb';
  beforeAll(async () => {
    webhook = await startWebhook('provider: aws\naws: { alb: true }\n');
    await ensureNamespace(k.kubectl, ns, { 'lb-probe-webhook/enabled': 'true' });
    const config = kustomize(['aws-alb']).find((d) => d.kind === 'MutatingWebhookConfiguration')!;
    config.metadata.name = name;
    for (const entry of config.webhooks) entry.clientConfig = { url: webhook.url, caBundle: webhook.caBundle };
    const applied = await k.kubectl(['apply', '-f', '-'], JSON.stringify(config));
    if (applied.code !== 0) throw new Error(applied.stderr);
    // The registration reaches the API server's admission chain a moment after it is written.
    await waitFor('the aws-alb registration in effect', 30_000, async () => {
      const probe = placed('ingress-nginx-controller.yaml', 0, ns, 'registration-probe', 'NodePort');
      const result = await k.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(probe));
      return result.code === 0 && result.stdout.includes(`${ALB}healthcheck-path`);
    });
  });
  afterAll(async () => {
    await unregisterWebhook(k.kubectl, name);
    await webhook?.stop();
  });

  it('The component changes nothing but the registration’s matchConditions.', () => {
    const strip = (docs: Record<string, any>[]) =>
      docs.map((d) => (d.kind === 'MutatingWebhookConfiguration' ? { ...d, webhooks: d.webhooks.map(({ matchConditions: _m, ...w }: Record<string, any>) => w) } : d));
    const plain = kustomize([]);
    const widened = kustomize(['aws-alb']);
    expect(strip(widened)).toEqual(strip(plain));
    const conditions = (docs: Record<string, any>[]): unknown[] => docs.find((d) => d.kind === 'MutatingWebhookConfiguration')?.webhooks[0].matchConditions as unknown[];
    expect(conditions(widened)).not.toEqual(conditions(plain));
    expect(conditions(widened)).toHaveLength(1);
  });

  it('A NodePort ingress-nginx controller Service is stored with the ALB health check on traffic-port /healthz.', async () => {
    const { stderr } = await k.apply(placed('ingress-nginx-controller.yaml', 0, ns, 'nginx', 'NodePort'));
    expect(await annotations('nginx', ns)).toEqual({
      [`${ALB}healthcheck-protocol`]: 'HTTP',
      [`${ALB}healthcheck-port`]: 'traffic-port',
      [`${ALB}healthcheck-path`]: '/healthz',
    });
    expect(stderr).toContain('Warning: lb-probe-webhook: AWS ALB checks the ingress-nginx backend with GET :traffic-port/healthz instead of GET / on the traffic port (profile ingress-nginx)');
    const stored = await k.get('service', 'nginx', ns);
    expect(stored?.spec.type).toBe('NodePort');
  });

  it('A ClusterIP classic Istio gateway Service is stored with the ALB health check on its status port.', async () => {
    await k.apply(placed('istio-classic-ingressgateway.yaml', 0, ns, 'istio-classic', 'ClusterIP'));
    expect(await annotations('istio-classic', ns)).toEqual({
      [`${ALB}healthcheck-protocol`]: 'HTTP',
      [`${ALB}healthcheck-port`]: 'status-port',
      [`${ALB}healthcheck-path`]: '/healthz/ready',
    });
  });

  it.each([
    ['a NodePort Service no profile recognizes', () => placed('service-user-probe.yaml', 0, ns, 'plain-nodeport', 'NodePort')],
    ['the ingress-nginx admission webhook Service (same labels, no http port)', () => placed('ingress-nginx-controller.yaml', 1, ns, 'nginx-admission')],
    ['a NodePort HAProxy controller Service (ALB could check it only with GET /)', () => placed('haproxy-ingress-controller.yaml', 0, ns, 'haproxy-nodeport', 'NodePort')],
  ])('%s is stored untouched and never reaches the webhook.', async (_name, make) => {
    const object = make();
    await k.apply(object);
    const stored = await annotations(object.metadata.name, ns);
    expect(Object.keys(stored).filter((key) => key.startsWith(ALB))).toEqual([]);
    expect(await webhook.settledReviews(object.metadata.name)).toEqual([]);
  });
});
