/**
 * The chart's `enforcement: admissionPolicy` and the kustomize admission-policy overlay: they render
 * what `export admission-policy` compiles, refuse what it refuses, install nothing of the webhook,
 * and on the suite's control plane (1.35.4 with the beta enabled) the installed policy makes the
 * change without any webhook.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { compileAdmissionPolicy, type ApiVersion, type Selection } from '../../src/admission-policy/compile.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { policyArb, docPolicies } from '../support/admission-corpus.js';
import { cluster } from '../support/cluster.js';
import { admissionPolicyApiVersion, removeTempDir, tempDir } from '../support/controlplane.js';
import { CHART, ensureHelm, helmRunner, kustomizeRender, normalise, parseObjects, valuesFile, type Helm, type K8sObject } from '../support/helm.js';
import { ensureNamespace, probeService } from '../support/webhook.js';

const AZ = 'service.beta.kubernetes.io/';
const k = cluster();
let helm: Helm;
let home: string;

const API_VERSIONS: Record<ApiVersion, string> = {
  v1: 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy',
  v1beta1: 'admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy',
};

beforeAll(() => {
  home = tempDir('lbp-helm-ap-');
  helm = helmRunner(ensureHelm().helm, inject('controlPlane').kubeconfig, home);
});
afterAll(() => {
  if (home) removeTempDir(home);
});

/** template renders the chart offline with enforcement admissionPolicy, the cluster said to serve the API version. */
async function template(values: Record<string, unknown>, apiVersion: ApiVersion) {
  return helm(['template', 'lb-probe-webhook', CHART, '--namespace', 'lb-probe-webhook', '--api-versions', API_VERSIONS[apiVersion],
    '-f', valuesFile(home, `ap-${Date.now()}`, { enforcement: 'admissionPolicy', ...values })]);
}

/** exported is what export admission-policy compiles for the policy, named as the chart names it. */
function exported(policyText: string, apiVersion: ApiVersion, selection: Selection = 'opt-in'): K8sObject[] | 'refused' {
  const result = compileAdmissionPolicy(parsePolicy(policyText), { apiVersion, name: 'lb-probe-webhook', selection });
  return 'refusals' in result ? 'refused' : (result.objects as K8sObject[]);
}

describe('helm template with enforcement: admissionPolicy', () => {
  const policies = [
    ...docPolicies().map((p) => ({ name: p.name, settings: parse(p.text) as Record<string, unknown> })),
    ...fc.sample(policyArb, { seed: 1617, numRuns: 40 }).map((settings, i) => ({ name: `generated policy ${i}`, settings })),
  ];

  it(`renders, for every policy the README and docs/ show and 40 generated ones, the objects export compiles (v1 and v1beta1), and nothing else`, async () => {
    for (const [i, { name, settings }] of policies.entries()) {
      const apiVersion: ApiVersion = i % 2 === 0 ? 'v1' : 'v1beta1';
      const mode: Selection = i % 3 === 0 ? 'cluster-wide' : 'opt-in';
      const out = await template({ policy: settings, mode }, apiVersion);
      expect(out.stderr, name).toBe('');
      const chart = normalise(parseObjects(out.stdout));
      const expected = exported(stringify(settings), apiVersion, mode);
      expect(expected, name).not.toBe('refused');
      expect(chart, name).toEqual(normalise(expected as K8sObject[]).map((o) => ({ ...o, metadata: { ...o['metadata'], labels: { 'app.kubernetes.io/name': 'lb-probe-webhook', 'app.kubernetes.io/part-of': 'lb-probe-webhook' } } })));
    }
  }, 600_000);

  it.each([
    ['four custom per-port templates', { provider: 'custom', custom: { tcp: { perPort: { 'a.io/a-{port}': 'x', 'a.io/b-{port}': 'x', 'a.io/c-{port}': 'x', 'a.io/d-{port}': 'x' } } } }, 'policy custom.tcp.perPort: 4 templates'],
    ['custom keys that may name one annotation', { provider: 'custom', custom: { readiness: { perPort: { 'x.io/p{port}': 'a', 'x.io/p1{port}': 'b' } } } }, 'policy custom.readiness: keys'],
  ])('refuses, as export does, a policy with %s, naming the setting', async (_name, settings, message) => {
    expect(exported(stringify(settings), 'v1')).toBe('refused');
    const out = await template({ policy: settings }, 'v1');
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain(`enforcement: admissionPolicy: ${message}`);
  });

  it('with cert-manager and monitoring enabled still renders only the policy, its binding and the namespace asked for', async () => {
    const out = await template({ certManager: { enabled: true }, monitoring: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } }, namespace: { create: true } }, 'v1');
    expect(out.stderr).toBe('');
    expect(parseObjects(out.stdout).map((o) => String(o['kind'])).sort()).toEqual(['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding', 'Namespace']);
  });

  it('renders the same objects as the kustomize admission-policy overlay, and with its v1beta1 component as for a 1.35 cluster with the beta', async () => {
    for (const [apiVersion, components] of [['v1', []], ['v1beta1', ['admission-policy-v1beta1']]] as const) {
      const out = await template({}, apiVersion);
      expect(normalise(parseObjects(out.stdout))).toEqual(normalise(kustomizeRender(k.binDir, 'admission-policy', components)));
    }
  });
});

const served = admissionPolicyApiVersion(inject('controlPlane').version);

describe.skipIf(served === undefined)('helm install with enforcement: admissionPolicy where the API server serves MutatingAdmissionPolicy', () => {
  const release = 'lbp-ap';
  const namespace = 'lbp-ap';
  const apps = 'lbp-ap-apps';

  beforeAll(async () => {
    await ensureNamespace(k.kubectl, namespace);
    await ensureNamespace(k.kubectl, apps, { 'lb-probe-webhook/enabled': 'true' });
  });
  afterAll(async () => {
    await helm(['uninstall', release, '--namespace', namespace]);
  });

  it('installs the policy and its binding in the version the cluster serves, and no Deployment, Service, Secret or webhook registration', async () => {
    const out = await helm(['install', release, CHART, '--namespace', namespace, '--set', 'enforcement=admissionPolicy']);
    expect(out.stderr).toBe('');
    expect(out.stdout).toContain('Enforcement: admissionPolicy.');
    const manifest = parseObjects((await helm(['get', 'manifest', release, '--namespace', namespace])).stdout);
    expect(manifest.map((o) => `${o['apiVersion']} ${o['kind']}`).sort()).toEqual([
      `admissionregistration.k8s.io/${served} MutatingAdmissionPolicy`,
      `admissionregistration.k8s.io/${served} MutatingAdmissionPolicyBinding`,
    ]);
    const listed = await k.kubectl(['get', 'deployments,services,secrets,configmaps', '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
    expect(listed.stdout.trim()).toBe('');
    expect(await k.get('mutatingwebhookconfiguration', `${release}-lb-probe-webhook`)).toBeUndefined();
  });

  it('a LoadBalancer Service in a labelled namespace is stored with the probe annotations, by the API server alone', async () => {
    const deadline = Date.now() + 60_000;
    let annotations: Record<string, string> | undefined;
    while (Date.now() < deadline) {
      // A server-side dry run: the policy reaches the admission chain a moment after it is created.
      const result = await k.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(probeService('ap-probe', apps)));
      annotations = (JSON.parse(result.stdout) as K8sObject)['metadata'].annotations;
      if (annotations !== undefined) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(annotations).toEqual({ [`${AZ}port_80_health-probe_protocol`]: 'tcp' });
  });
});

describe.runIf(served === undefined)('helm install with enforcement: admissionPolicy where the API server does not serve MutatingAdmissionPolicy', () => {
  it('fails before creating anything, with a message naming the cluster\'s version and what to do', async () => {
    const out = await helm(['install', 'lbp-ap-old', CHART, '--namespace', 'default', '--set', 'enforcement=admissionPolicy']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain(`enforcement: admissionPolicy needs the MutatingAdmissionPolicy API, which this cluster (Kubernetes ${inject('controlPlane').version}) does not serve`);
    expect(out.stderr).toContain('keep enforcement: webhook');
    expect((await helm(['status', 'lbp-ap-old', '--namespace', 'default'])).code).not.toBe(0);
  });

  it('with enforcement: webhook (the default) the same chart installs there: a server-side dry run accepts its objects', async () => {
    const out = await helm(['install', 'lbp-webhook', CHART, '--namespace', 'default', '--dry-run=server']);
    expect(out.stderr).toBe('');
    expect(out.stdout).toContain('kind: MutatingWebhookConfiguration');
  });
});
