import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parsePolicy } from '../../src/policy/parse.js';
import { fixture } from '../support/fixtures.js';
import { removeTempDir, tempDir, waitFor } from '../support/controlplane.js';
import { cluster } from '../support/cluster.js';
import { ensureNamespace, probeService, startWebhook, waitUntilMutating, type RunningWebhook } from '../support/webhook.js';
import { CHART, ensureHelm, helmRunner, helmTemplate, key, kustomizeRender, normalise, valuesFile, type Helm, type K8sObject } from '../support/helm.js';

const AZ = 'service.beta.kubernetes.io/';
const ALB = 'alb.ingress.kubernetes.io/';
const k = cluster();
let helm: Helm;
let helm3: Helm;
let home: string;
let rulecheck: string;

/**
 * Rendering is one way to install: the namespace selection, the certificate source, monitoring,
 * and ALB backends (policy provider aws with aws.alb: true; kustomize: the aws-alb component).
 */
interface Rendering {
  readonly mode: 'opt-in' | 'cluster-wide';
  readonly certManager: boolean;
  readonly monitoring: boolean;
  readonly alb: boolean;
}

const RENDERINGS: readonly Rendering[] = [
  { mode: 'opt-in', certManager: false, monitoring: false, alb: false },
  { mode: 'cluster-wide', certManager: false, monitoring: true, alb: false },
  { mode: 'opt-in', certManager: true, monitoring: true, alb: false },
  { mode: 'cluster-wide', certManager: true, monitoring: false, alb: false },
  { mode: 'opt-in', certManager: false, monitoring: false, alb: true },
];
const describeRendering = (r: Rendering) =>
  `${r.mode}, ${r.certManager ? 'cert-manager' : 'chart-generated certificate'}, ${r.monitoring ? 'with' : 'without'} monitoring${r.alb ? ', ALB backends' : ''}`;
const renderingFile = (prefix: string, r: Rendering) => `${prefix}-${r.mode}-${r.certManager}-${r.monitoring}-${r.alb}`;

/** ALB_POLICY is the policy values that make the webhook write the ALB health check on Services of any type. */
const ALB_POLICY = { provider: 'aws', aws: { alb: true } };

function chartValues(r: Rendering): Record<string, unknown> {
  return {
    mode: r.mode,
    certManager: { enabled: r.certManager },
    namespace: { create: true },
    monitoring: { serviceMonitor: { enabled: r.monitoring }, prometheusRule: { enabled: r.monitoring } },
    ...(r.alb && { policy: ALB_POLICY }),
  };
}

/** kustomizeComponents are the kustomize components that give the same objects as the chart with r. */
const kustomizeComponents = (r: Rendering) => [
  ...(r.certManager ? ['cert-manager'] : []),
  ...(r.monitoring ? ['monitoring'] : []),
  ...(r.alb ? ['aws-alb'] : []),
];

/** matchConditionsOf returns the matchConditions of a rendering's webhook, whitespace collapsed. */
const matchConditionsOf = (objects: K8sObject[]): unknown => normalise(objects).find((o) => o.kind === 'MutatingWebhookConfiguration')?.webhooks[0].matchConditions;

async function run(result: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string): Promise<string> {
  const out = await result;
  if (out.code !== 0) throw new Error(`${what}: exit ${out.code}: ${out.stderr}`);
  return out.stdout;
}

beforeAll(async () => {
  const tools = ensureHelm();
  rulecheck = tools.rulecheck;
  home = tempDir('lbp-helm-');
  helm = helmRunner(tools.helm, inject('controlPlane').kubeconfig, home);
  helm3 = helmRunner(tools.helm3, inject('controlPlane').kubeconfig, join(home, 'v3'));
  // The CRDs of the chart's optional objects, so the API server can validate those objects too.
  for (const dir of [tools.prometheusCrds, tools.certManagerCrds]) await run(k.kubectl(['apply', '--server-side', '-f', dir]), `CRDs in ${dir}`);
  await run(
    k.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com',
      'crd/certificates.cert-manager.io', 'crd/issuers.cert-manager.io']),
    'waiting for the CRDs',
  );
});
afterAll(() => {
  if (home) removeTempDir(home);
});

describe('helm lint', () => {
  it.each(RENDERINGS)('passes with --strict (mode $mode, certManager $certManager, monitoring $monitoring, alb $alb).', async (r) => {
    const result = await helm(['lint', '--strict', CHART, '-f', valuesFile(home, renderingFile('lint', r), chartValues(r))]);
    console.log(`helm lint --strict (${describeRendering(r)}):\n${result.stdout.trim()}`);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });
});

describe('helm template', () => {
  beforeAll(async () => {
    await ensureNamespace(k.kubectl, 'lbp-render');
  });

  it.each(RENDERINGS)('renders objects that the API server accepts in a server-side dry-run apply (mode $mode, certManager $certManager, monitoring $monitoring, alb $alb).', async (r) => {
    const objects = await helmTemplate(helm, home, 'lb-probe-webhook', 'lbp-render', chartValues(r));
    const applied = await run(
      k.kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=lbp-helm-test', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects })),
      'dry-run apply',
    );
    const lines = applied.trim().split('\n');
    console.log(`dry-run (${describeRendering(r)}): ${lines.length} of ${objects.length} objects accepted\n  ${lines.join('\n  ')}`);
    expect(lines).toHaveLength(objects.length);
    for (const line of lines) expect(line).toMatch(/ serverside-applied \(server dry run\)$/);
    const kinds = objects.map((o) => o.kind as string);
    expect(kinds.filter((kind) => ['ServiceMonitor', 'PrometheusRule'].includes(kind)).length).toBe(r.monitoring ? 2 : 0);
    expect(kinds.filter((kind) => ['Certificate', 'Issuer'].includes(kind)).length).toBe(r.certManager ? 4 : 0);
  });

  it('renders, without cert-manager, a Secret whose CA is the caBundle and has signed the serving certificate for the Service name, and keeps that CA with its key in a Secret of its own.', async () => {
    const objects = await helmTemplate(helm, home, 'lb-probe-webhook', 'lbp-render', chartValues(RENDERINGS[0]!));
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'lb-probe-webhook-tls');
    const ca = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'lb-probe-webhook-ca');
    const config = objects.find((o) => o.kind === 'MutatingWebhookConfiguration');
    expect(config?.webhooks[0].clientConfig.caBundle).toBe(secret?.data['ca.crt']);
    expectServingPair(secret!, 'lb-probe-webhook.lbp-render.svc');
    expect(ca?.type).toBe('kubernetes.io/tls');
    expect(ca?.data['tls.crt']).toBe(secret?.data['ca.crt']);
    const caCert = new X509Certificate(Buffer.from(ca?.data['tls.crt'] as string, 'base64'));
    expect(caCert.ca).toBe(true);
    expect(caCert.checkPrivateKey(createPrivateKey(Buffer.from(ca?.data['tls.key'] as string, 'base64')))).toBe(true);
  });

  it('puts the scheduling, image and disruption values into the objects, which the API server accepts.', async () => {
    const objects = await helmTemplate(helm, home, 'lbp-pods', 'lbp-render', {
      replicaCount: 3,
      image: { repository: 'registry.example/lbp', tag: '1.2.3', pullPolicy: 'Always' },
      priorityClassName: 'system-cluster-critical',
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
      resources: { requests: { cpu: '100m', memory: '96Mi' }, limits: { memory: '256Mi' } },
      podDisruptionBudget: { minAvailable: '50%' },
      topologySpread: [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }],
    });
    await run(k.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects })), 'dry-run apply');
    const deployment = objects.find((o) => o.kind === 'Deployment');
    const pod = deployment?.spec.template.spec;
    expect(deployment?.spec.replicas).toBe(3);
    expect(pod.containers[0]).toMatchObject({ image: 'registry.example/lbp:1.2.3', imagePullPolicy: 'Always', resources: { limits: { memory: '256Mi' } } });
    expect(pod).toMatchObject({ priorityClassName: 'system-cluster-critical', nodeSelector: { 'kubernetes.io/os': 'linux' }, tolerations: [{ key: 'dedicated' }] });
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: deployment?.spec.selector.matchLabels } },
    ]);
    expect(objects.find((o) => o.kind === 'PodDisruptionBudget')?.spec.minAvailable).toBe('50%');
  });

  it.each([
    ['provider aws with aws.alb: true', 'with the aws-alb component', ALB_POLICY],
    ['provider aws with aws.alb: false', 'alone', { provider: 'aws', aws: { alb: false } }],
    ['provider aws without aws.alb', 'alone', { provider: 'aws', probe: 'readiness' }],
    ['provider azure with aws.alb: true (read only under provider aws)', 'alone', { provider: 'azure', aws: { alb: true } }],
  ])('with %s, registers the webhook with the matchConditions of the kustomize overlay %s, and the webhook handles ALB backends exactly then.', async (_name, overlay, policy) => {
    const alb = overlay !== 'alone';
    const chart = await helmTemplate(helm, home, 'lb-probe-webhook', 'lbp-render', { policy });
    expect(matchConditionsOf(chart)).toEqual(matchConditionsOf(kustomizeRender(k.binDir, 'opt-in', alb ? ['aws-alb'] : [])));
    const served = parsePolicy(chart.find((o) => o.kind === 'ConfigMap')?.data['policy.yaml'] as string);
    expect(served.boundProvider.anyServiceType).toBe(alb);
  });

  it('with a development URL, points the webhook configuration at it with the given caBundle.', async () => {
    const objects = await helmTemplate(helm, home, 'lb-probe-webhook', 'lbp-render', {
      webhook: { url: 'https://127.0.0.1:9443/mutate', caBundle: Buffer.from('CA').toString('base64') },
    });
    const config = objects.find((o) => o.kind === 'MutatingWebhookConfiguration');
    expect(config?.webhooks[0].clientConfig).toEqual({ url: 'https://127.0.0.1:9443/mutate', caBundle: Buffer.from('CA').toString('base64') });
  });
});

/** expectServingPair checks a kubernetes.io/tls Secret: ca.crt signed tls.crt, tls.key belongs to it, and it names host. */
function expectServingPair(secret: K8sObject, host: string): void {
  const pem = (name: string) => Buffer.from(secret.data[name] as string, 'base64');
  const ca = new X509Certificate(pem('ca.crt'));
  const cert = new X509Certificate(pem('tls.crt'));
  expect(ca.ca).toBe(true);
  expect(cert.verify(ca.publicKey)).toBe(true);
  expect(cert.checkIssued(ca)).toBe(true);
  expect(cert.checkPrivateKey(createPrivateKey(pem('tls.key')))).toBe(true);
  expect(cert.checkHost(host)).toBe(host);
}

describe('the alerts', () => {
  it.each([
    ['the kustomize component', () => Promise.resolve(kustomizeRender(k.binDir, 'opt-in', ['monitoring']))],
    ['the chart with other thresholds', () =>
      helmTemplate(helm, home, 'lbp', 'monitoring', {
        monitoring: { prometheusRule: { enabled: true, certificateExpiryDays: 14, errorRatio: 0.2, latencyP99Seconds: 0.25 } },
      })],
  ])('of %s load in Prometheus, each with a summary that says what to do.', async (_name, render) => {
    const rule = (await render()).find((o) => o.kind === 'PrometheusRule');
    const file = join(home, `rules-${Date.now()}.yaml`);
    writeFileSync(file, stringify(rule?.spec));
    const checked = spawnSync(rulecheck, [file], { encoding: 'utf8' });
    console.log(`rulecheck: ${checked.stdout.trim()}${checked.stderr.trim()}`);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    const rules = (rule?.spec.groups as { rules: K8sObject[] }[]).flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert as string)).toEqual([
      'LbProbeWebhookCertificateExpiresSoon',
      'LbProbeWebhookPolicyReloadFailed',
      'LbProbeWebhookErrors',
      'LbProbeWebhookNoReplicaReady',
      'LbProbeWebhookSlowReviews',
      'LbProbeWebhookHealFailing',
    ]);
    for (const r of rules) expect(r.annotations.summary).toMatch(/: (renew|fix|find|check) /);
  });
});

describe('the chart and the kustomize overlays', () => {
  it.each(RENDERINGS)('render the same objects (mode $mode, certManager $certManager, monitoring $monitoring, alb $alb).', async (r) => {
    const chart = normalise(await helmTemplate(helm, home, 'lb-probe-webhook', 'lb-probe-webhook', chartValues(r)));
    const kustomize = normalise(kustomizeRender(k.binDir, r.mode, kustomizeComponents(r)));
    // Only the chart can make the CA and the serving certificate itself; with kustomize the user (or cert-manager) does.
    const extra = r.certManager ? [] : ['Secret/lb-probe-webhook/lb-probe-webhook-ca', 'Secret/lb-probe-webhook/lb-probe-webhook-tls'];
    expect(chart.map(key)).toEqual([...kustomize.map(key), ...extra].sort());
    const policyText = (objects: K8sObject[]) => objects.find((o) => o.kind === 'ConfigMap')?.data['policy.yaml'] as string;
    // With ALB the kustomize user edits the base policy the same way: provider aws, aws.alb true.
    const kustomizePolicy = r.alb ? stringify({ ...(parse(policyText(kustomize)) as object), ...ALB_POLICY }) : policyText(kustomize);
    expect(parsePolicy(policyText(chart))).toEqual(parsePolicy(kustomizePolicy));
    const comparable = (objects: K8sObject[]) =>
      objects.filter((o) => !extra.includes(key(o))).map((o) => (o.kind === 'ConfigMap' ? { ...o, data: undefined } : o));
    expect(comparable(chart)).toEqual(comparable(kustomize));
  });
});

describe('helm install', () => {
  it.each([
    [{ policy: { provider: 'gce' } }, "at '/policy/provider'"],
    [{ policy: { probe: 'http' } }, "at '/policy/probe'"],
    [{ policy: { readiness: { port: 'Status_Port' } } }, "at '/policy/readiness/port'"],
    [{ mode: 'everywhere' }, "at '/mode'"],
  ])('refuses %j with the schema message naming the field, and installs nothing.', async (values, field) => {
    const result = await helm(['install', 'lbp-bad', CHART, '--namespace', 'lbp-render', '-f', valuesFile(home, 'bad', values)]);
    console.log(`helm install with ${JSON.stringify(values)}: exit ${result.code}\n${result.stderr.trim()}`);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toContain(field);
    expect((await helm(['status', 'lbp-bad', '--namespace', 'lbp-render'])).code).not.toBe(0);
    expect(await k.get('mutatingwebhookconfiguration', 'lbp-bad-lb-probe-webhook')).toBeUndefined();
  });

  it.each([
    ['provider custom without templates', { provider: 'custom' }],
    ['custom templates with provider azure', { provider: 'azure', custom: { tcp: { perPort: { 'example.com/p-{port}': 'tcp' } } } }],
    ['an unknown policy key', { provider: 'azure', probes: 'tcp' }],
    ['a rule without a probe', { provider: 'azure', rules: [{ match: { namespaces: ['a'] } }] }],
    ['maxInfrastructureAnnotations over 16', { provider: 'azure', gateway: { maxInfrastructureAnnotations: 17 } }],
    ['a path without its slash', { provider: 'azure', readiness: { path: 'healthz' } }],
    ['aws.alb that is not a boolean', { provider: 'aws', aws: { alb: 'yes' } }],
  ])('refuses, like the webhook, a policy with %s.', async (_name, policy) => {
    expect(() => parsePolicy(stringify(policy))).toThrow();
    const result = await helm(['template', 'lbp-bad', CHART, '-f', valuesFile(home, 'bad-policy', { policy })]);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.code).not.toBe(0);
  });

  it.each([
    ['provider custom with a template', { provider: 'custom', custom: { readiness: { perService: { 'example.com/probe': '{readinessPath}' } } } }],
    ['rules by namespace and label', { provider: 'aws', probe: 'readiness', readiness: { port: 15021 }, rules: [{ match: { namespaces: ['team-*'], labels: { a: 'b' } }, probe: 'none' }] }],
    ['AWS target type ip', { provider: 'aws', aws: { defaultTargetType: 'ip' } }],
    ['AWS ALB backends', ALB_POLICY],
  ])('accepts a valid policy with %s.', async (_name, policy) => {
    const result = await helm(['template', 'lbp-good', CHART, '-f', valuesFile(home, 'good-policy', { policy })]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    if (!('aws' in policy)) expect(() => parsePolicy(stringify(policy))).not.toThrow();
  });
});

describe('helm install on the control plane, then a Service in a selected namespace', () => {
  const release = 'lbp';
  const namespace = 'lbp-helm';
  const fullname = 'lbp-lb-probe-webhook';
  let webhook: RunningWebhook | undefined;
  let installedSecret: K8sObject;

  const secret = async () => (await k.get('secret', `${fullname}-tls`, namespace))!;
  const webhookConfig = async () => (await k.get('mutatingwebhookconfiguration', fullname))!;

  beforeAll(async () => {
    await ensureNamespace(k.kubectl, namespace);
    await ensureNamespace(k.kubectl, 'lbp-helm-apps', { 'lb-probe-webhook/enabled': 'true' });
    await ensureNamespace(k.kubectl, 'lbp-helm-other');
  });
  afterAll(async () => {
    await helm(['uninstall', release, '--namespace', namespace]);
    await webhook?.stop();
  });

  it('installs the chart, with a generated serving certificate that the caBundle verifies.', async () => {
    const out = await run(helm(['install', release, CHART, '--namespace', namespace]), 'helm install');
    console.log(`helm install ${release}:\n${out.trim()}`);
    expect(out).toContain('STATUS: deployed');
    expect(out).toContain(`kubectl -n ${namespace} rollout status deployment/${fullname}`);
    installedSecret = await secret();
    expectServingPair(installedSecret, `${fullname}.${namespace}.svc`);
    expect((await webhookConfig()).webhooks[0].clientConfig).toMatchObject({ caBundle: installedSecret.data['ca.crt'], service: { name: fullname, namespace } });
  });

  it('upgrades to a development URL for a webhook process on this machine, keeping the certificate.', async () => {
    const policy = (await k.get('configmap', `${fullname}-policy`, namespace))?.data['policy.yaml'] as string;
    expect(parse(policy)).toMatchObject({ provider: 'azure', probe: 'tcp' });
    webhook = await startWebhook(policy);
    const out = await run(
      helm(['upgrade', release, CHART, '--namespace', namespace, '--reuse-values', '--set', `webhook.url=${webhook.url}`, '--set', `webhook.caBundle=${webhook.caBundle}`]),
      'helm upgrade',
    );
    expect(out).toContain('REVISION: 2');
    expect((await secret()).data).toEqual(installedSecret.data);
    expect((await webhookConfig()).webhooks[0].clientConfig).toEqual({ url: webhook.url, caBundle: webhook.caBundle });
  });

  it("mutates a LoadBalancer Service created in a labelled namespace through the chart's webhook configuration.", async () => {
    await waitUntilMutating(k.kubectl, 'lbp-helm-apps');
    const { stderr } = await k.apply(probeService('istio-gateway', 'lbp-helm-apps'));
    const stored = await k.get('service', 'istio-gateway', 'lbp-helm-apps');
    console.log(`Service lbp-helm-apps/istio-gateway stored with annotations ${JSON.stringify(stored?.metadata.annotations)}\n${stderr.trim()}`);
    expect(stored?.metadata.annotations).toMatchObject({ [`${AZ}port_80_health-probe_protocol`]: 'tcp' });
    expect(stderr).toContain('Warning: lb-probe-webhook: Azure probes port 80 (http) over TCP');
    expect((await webhook!.settledReviews('istio-gateway')).map((l) => l['decision'])).toEqual(['patched']);
  });

  it('leaves the same Service in a namespace without the label alone (mode opt-in).', async () => {
    await k.apply(probeService('istio-gateway', 'lbp-helm-other'));
    const stored = await k.get('service', 'istio-gateway', 'lbp-helm-other');
    expect(Object.keys(stored?.metadata.annotations ?? {}).filter((a) => a.startsWith(AZ))).toEqual([]);
    expect(await webhook!.settledReviews('istio-gateway')).toHaveLength(1);
  });

  it('upgrades back to the in-cluster Service with the same certificate, and the caBundle is its CA again.', async () => {
    const out = await run(helm(['upgrade', release, CHART, '--namespace', namespace, '--reset-values']), 'helm upgrade');
    expect(out).toContain('REVISION: 3');
    const kept = await secret();
    console.log(`after two upgrades the serving certificate is ${kept.data['tls.crt'] === installedSecret.data['tls.crt'] ? 'the same' : 'DIFFERENT'}`);
    expect(kept.data).toEqual(installedSecret.data);
    expect((await webhookConfig()).webhooks[0].clientConfig).toMatchObject({ caBundle: installedSecret.data['ca.crt'], service: { name: fullname } });
  });
});

describe("the chart's own CA, kept in Secret <name>-ca, across upgrades", () => {
  const release = 'lbp-ca';
  const namespace = 'lbp-helm-ca';
  const fullname = 'lbp-ca-lb-probe-webhook';
  const get = async (name: string) => k.get('secret', name, namespace);
  const caBundle = async () => (await k.get('mutatingwebhookconfiguration', fullname))!.webhooks[0].clientConfig.caBundle as string;
  const cert = (b64: string) => new X509Certificate(Buffer.from(b64, 'base64'));
  const upgrade = (...set: string[]) => helm(['upgrade', release, CHART, '--namespace', namespace, '--reuse-values', ...set.flatMap((v) => ['--set', v])]);

  beforeAll(async () => {
    await ensureNamespace(k.kubectl, namespace);
    // A CA of 400 days under a serving certificate of ten years: the serving certificate must end with the CA.
    await run(helm(['install', release, CHART, '--namespace', namespace, '--set', 'tls.caValidityDays=400', '--set', 'heal.enabled=false']), 'helm install');
  });
  afterAll(async () => {
    await helm(['uninstall', release, '--namespace', namespace]);
  });

  it('signs the serving certificate with the kept CA and never past the CA expiry, and records that expiry on the CA Secret.', async () => {
    const ca = (await get(`${fullname}-ca`))!;
    const tls = (await get(`${fullname}-tls`))!;
    expect(tls.data['ca.crt']).toBe(ca.data['tls.crt']);
    expect(cert(tls.data['tls.crt']).checkIssued(cert(ca.data['tls.crt']))).toBe(true);
    expect(cert(tls.data['tls.crt']).validToDate.getTime()).toBeLessThanOrEqual(cert(ca.data['tls.crt']).validToDate.getTime());
    expect(Math.abs(Date.parse(ca.metadata.annotations['lb-probe-webhook.io/not-after']) - cert(ca.data['tls.crt']).validToDate.getTime())).toBeLessThan(5000);
  });

  it('renews the serving certificate under the same CA when its Secret is deleted, and the caBundle stays as it was.', async () => {
    const before = (await get(`${fullname}-tls`))!;
    const bundle = await caBundle();
    await k.kubectl(['delete', 'secret', `${fullname}-tls`, '-n', namespace]);
    await run(upgrade(), 'helm upgrade');
    const after = (await get(`${fullname}-tls`))!;
    expect(after.data['tls.crt']).not.toBe(before.data['tls.crt']);
    expect(after.data['ca.crt']).toBe(before.data['ca.crt']);
    expect(cert(after.data['tls.crt']).checkIssued(cert(after.data['ca.crt']))).toBe(true);
    expect(await caBundle()).toBe(bundle);
  });

  it('refuses, naming both Secrets, to sign with a CA that expires within 30 days.', async () => {
    await k.kubectl(['annotate', 'secret', `${fullname}-ca`, '-n', namespace, '--overwrite', `lb-probe-webhook.io/not-after=${new Date(Date.now() + 10 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z')}`]);
    await k.kubectl(['delete', 'secret', `${fullname}-tls`, '-n', namespace]);
    const out = await upgrade();
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(new RegExp(`the chart's CA \\(Secret ${namespace}/${fullname}-ca\\) expires in \\d+ days, too soon to sign a serving certificate with: delete Secrets ${fullname}-ca and ${fullname}-tls and run helm upgrade again`));
  });

  it('keeps the serving certificate of an install from before the chart kept its CA, and adds no CA Secret it has no key for.', async () => {
    // As such an install: a serving certificate and its CA, no <name>-ca.
    await k.kubectl(['delete', 'secret', `${fullname}-ca`, '-n', namespace]);
    await run(upgrade(), 'helm upgrade (a new CA and serving certificate)');
    await k.kubectl(['delete', 'secret', `${fullname}-ca`, '-n', namespace]);
    const before = (await get(`${fullname}-tls`))!;
    await run(upgrade(), 'helm upgrade');
    expect((await get(`${fullname}-tls`))!.data).toEqual(before.data);
    expect(await get(`${fullname}-ca`)).toBeUndefined();
    expect(await caBundle()).toBe(before.data['ca.crt']);
  });
});

describe('helm install with aws.alb on the control plane, then ALB backend Services in a selected namespace', () => {
  const release = 'lbp-alb';
  const namespace = 'lbp-helm-alb';
  const apps = 'lbp-helm-alb-apps';
  const fullname = 'lbp-alb-lb-probe-webhook';
  let webhook: RunningWebhook | undefined;

  /** nginx is the ingress-nginx chart's controller Service as a ClusterIP ALB backend in the apps namespace. */
  const nginx = (name: string) => {
    const service: K8sObject = fixture('ingress-nginx-controller.yaml');
    service.metadata = { ...service.metadata, name, namespace: apps };
    service.spec.type = 'ClusterIP';
    return service;
  };
  const albKeys = async (name: string) =>
    Object.fromEntries(Object.entries(((await k.get('service', name, apps))?.metadata.annotations ?? {}) as Record<string, string>).filter(([key]) => key.startsWith(ALB)));

  beforeAll(async () => {
    await ensureNamespace(k.kubectl, namespace);
    await ensureNamespace(k.kubectl, apps, { 'lb-probe-webhook/enabled': 'true' });
  });
  afterAll(async () => {
    await helm(['uninstall', release, '--namespace', namespace]);
    await webhook?.stop();
  });

  it('installs the chart with policy provider aws and aws.alb, whose registration carries the aws-alb component\'s matchCondition.', async () => {
    // The webhook runs on this machine with the policy the chart renders; webhook.url points the chart's registration at it.
    const policy = (await helmTemplate(helm, home, release, namespace, { policy: ALB_POLICY })).find((o) => o.kind === 'ConfigMap')?.data['policy.yaml'] as string;
    webhook = await startWebhook(policy);
    const values = { policy: ALB_POLICY, webhook: { url: webhook.url, caBundle: webhook.caBundle } };
    const out = await run(helm(['install', release, CHART, '--namespace', namespace, '-f', valuesFile(home, 'alb-install', values)]), 'helm install');
    expect(out).toContain('STATUS: deployed');
    expect(parse((await k.get('configmap', `${fullname}-policy`, namespace))?.data['policy.yaml'] as string)).toEqual(parse(policy));
    const config = (await k.get('mutatingwebhookconfiguration', fullname))!;
    expect(config.webhooks[0].matchConditions.map((c: { name: string }) => c.name)).toEqual(['load-balanced-http-or-alb-backend']);
  });

  it('mutates a ClusterIP ingress-nginx controller Service with the ALB health check on traffic-port /healthz.', async () => {
    // The registration reaches the API server's admission chain a moment after it is written.
    await waitFor('the chart\'s ALB registration in effect', 30_000, async () => {
      const result = await k.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(nginx('registration-probe')));
      return result.code === 0 && result.stdout.includes(`${ALB}healthcheck-path`);
    });
    const { stderr } = await k.apply(nginx('nginx'));
    const stored = await albKeys('nginx');
    console.log(`Service ${apps}/nginx (ClusterIP) stored with ${JSON.stringify(stored)}\n${stderr.trim()}`);
    expect(stored).toEqual({ [`${ALB}healthcheck-protocol`]: 'HTTP', [`${ALB}healthcheck-port`]: 'traffic-port', [`${ALB}healthcheck-path`]: '/healthz' });
    expect((await k.get('service', 'nginx', apps))?.spec.type).toBe('ClusterIP');
    expect((await webhook!.settledReviews('nginx')).map((l) => [l['decision'], l['profile']])).toEqual([['patched', 'ingress-nginx']]);
  });

  it('leaves a ClusterIP Service no profile recognizes alone: the registration never sends it.', async () => {
    const service: K8sObject = fixture('service-clusterip.yaml');
    service.metadata = { ...service.metadata, namespace: apps };
    await k.apply(service);
    expect(await albKeys(service.metadata.name)).toEqual({});
    expect(await webhook!.settledReviews(service.metadata.name)).toEqual([]);
  });
});

describe('with Helm v3', () => {
  it('reports its version as v3.', async () => {
    expect(await run(helm3(['version', '--short']), 'helm version')).toMatch(/^v3\./);
  });

  it.each(RENDERINGS)('lint --strict passes (mode $mode, certManager $certManager, monitoring $monitoring, alb $alb).', async (r) => {
    const result = await helm3(['lint', '--strict', CHART, '-f', valuesFile(home, renderingFile('lint3', r), chartValues(r))]);
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  it.each(RENDERINGS)('template renders what Helm v4 renders (mode $mode, certManager $certManager, monitoring $monitoring, alb $alb).', async (r) => {
    const v3 = normalise(await helmTemplate(helm3, home, 'lb-probe-webhook', 'lbp-render', chartValues(r)));
    const v4 = normalise(await helmTemplate(helm, home, 'lb-probe-webhook', 'lbp-render', chartValues(r)));
    // Each render makes its own certificates, and so its own CA expiry on the CA Secret.
    const withoutKeys = (objects: K8sObject[]) =>
      objects.map((o) => (o.kind === 'Secret' ? { ...o, metadata: { ...o.metadata, annotations: undefined }, data: Object.keys(o.data as object) } : o));
    expect(withoutKeys(v3)).toEqual(withoutKeys(v4));
  });

  it('refuses a wrong provider at install with the schema message.', async () => {
    const result = await helm3(['install', 'lbp-bad3', CHART, '--namespace', 'lbp-render', '--set', 'policy.provider=gce']);
    console.log(`helm v3 install with policy.provider=gce: exit ${result.code}\n${result.stderr.trim()}`);
    expect(result.stderr).toContain('/policy/provider');
    expect(result.stderr).toMatch(/must be one of|value must be/);
    expect(result.code).not.toBe(0);
  });

  it('installs, and an upgrade keeps the generated certificate.', async () => {
    await ensureNamespace(k.kubectl, 'lbp-helm3');
    try {
      await run(helm3(['install', 'lbp3', CHART, '--namespace', 'lbp-helm3']), 'helm v3 install');
      const before = (await k.get('secret', 'lbp3-lb-probe-webhook-tls', 'lbp-helm3'))?.data;
      expectServingPair({ data: before }, 'lbp3-lb-probe-webhook.lbp-helm3.svc');
      await run(helm3(['upgrade', 'lbp3', CHART, '--namespace', 'lbp-helm3', '--set', 'replicaCount=3']), 'helm v3 upgrade');
      expect((await k.get('secret', 'lbp3-lb-probe-webhook-tls', 'lbp-helm3'))?.data).toEqual(before);
      expect((await k.get('mutatingwebhookconfiguration', 'lbp3-lb-probe-webhook'))?.webhooks[0].clientConfig.caBundle).toBe(before?.['ca.crt']);
    } finally {
      await helm3(['uninstall', 'lbp3', '--namespace', 'lbp-helm3']);
    }
  });
});
