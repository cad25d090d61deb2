import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cluster } from '../support/cluster.js';

const k = cluster();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function kustomize(dir: string): Record<string, any>[] {
  const out = spawnSync(join(k.binDir, 'kubectl'), ['kustomize', dir], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as Record<string, any>);
}

describe('the kustomize manifests', () => {
  afterAll(async () => {
    // The shipped registration calls the in-cluster Service, which has no pods here: remove it
    // so that it cannot slow down other tests.
    await k.kubectl(['delete', 'mutatingwebhookconfiguration', 'lb-probe-webhook', '--ignore-not-found']);
  });

  it.each(['opt-in', 'cluster-wide'])('the %s overlay is accepted by kubectl apply -k, and a second apply changes nothing.', async (overlay) => {
    const dir = join(ROOT, 'manifests/overlays', overlay);
    const first = await k.kubectl(['apply', '-k', dir]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const versions = async () => {
      const listed = await k.kubectl(['get', '-k', dir, '-o', 'json']);
      const items = (JSON.parse(listed.stdout) as { items: { kind: string; metadata: { name: string; resourceVersion: string } }[] }).items;
      return Object.fromEntries(items.map((i) => [`${i.kind}/${i.metadata.name}`, i.metadata.resourceVersion]));
    };
    const before = await versions();
    const second = await k.kubectl(['apply', '-k', dir]);
    expect(second.code).toBe(0);
    const lines = second.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('/')[0]).sort()).toEqual([
      'clusterrole.rbac.authorization.k8s.io',
      'clusterrolebinding.rbac.authorization.k8s.io',
      'configmap',
      'cronjob.batch',
      'deployment.apps',
      'mutatingwebhookconfiguration.admissionregistration.k8s.io',
      'namespace',
      'poddisruptionbudget.policy',
      'service',
      'serviceaccount',
      'serviceaccount',
    ]);
    for (const line of lines) {
      // kubectl's client-side apply always sends a PodDisruptionBudget's selector (its patch
      // strategy is "replace"), so it prints "configured" although the server changes nothing;
      // the resourceVersion check below is what proves that.
      expect(line).toMatch(line.startsWith('poddisruptionbudget.policy/') ? / (unchanged|configured)$/ : / unchanged$/);
    }
    expect(await versions()).toEqual(before);
  });

  it('the base Deployment runs non-root on a read-only root filesystem with every capability dropped, two replicas, probes and limits.', () => {
    const deployment = kustomize(join(ROOT, 'manifests/overlays/opt-in')).find((d) => d.kind === 'Deployment');
    const pod = deployment?.spec.template.spec;
    const container = pod.containers[0];
    expect(deployment?.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.resources.limits.memory).toBeDefined();
    expect(pod.topologySpreadConstraints).toHaveLength(2);
  });

  it('the webhook registration carries the settings the API server needs.', () => {
    const config = kustomize(join(ROOT, 'manifests/overlays/opt-in')).find((d) => d.kind === 'MutatingWebhookConfiguration');
    expect(config?.webhooks[0]).toMatchObject({
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      timeoutSeconds: 5,
      failurePolicy: 'Ignore',
      reinvocationPolicy: 'IfNeeded',
      matchPolicy: 'Equivalent',
      namespaceSelector: { matchLabels: { 'lb-probe-webhook/enabled': 'true' } },
    });
  });

  it('an overlay with the cert-manager component renders the Certificate and the CA injection annotation.', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lbp-kustomize-'));
    try {
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        `resources: [${relative(dir, join(ROOT, 'manifests/overlays/opt-in'))}]\ncomponents: [${relative(dir, join(ROOT, 'manifests/components/cert-manager'))}]\n`,
      );
      const docs = kustomize(dir);
      const config = docs.find((d) => d.kind === 'MutatingWebhookConfiguration');
      expect(config?.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': 'lb-probe-webhook/lb-probe-webhook-serving' });
      const serving = docs.find((d) => d.kind === 'Certificate' && d.metadata.name === 'lb-probe-webhook-serving');
      expect(serving?.spec.secretName).toBe('lb-probe-webhook-tls');
      expect(serving?.spec.dnsNames).toContain('lb-probe-webhook.lb-probe-webhook.svc');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
