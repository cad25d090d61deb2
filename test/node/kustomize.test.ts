/**
 * The kustomize overlays on the real node, installed as the README's "With kustomize" section says
 * (without cert-manager): certificates from `certs`, `kubectl apply -k` of the overlay with the image
 * set, the Secret created and the caBundle patched. Each must then annotate a LoadBalancer Service
 * in a namespace it selects, as the chart does.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/controlplane.js';
import { NAMESPACE, nodeCluster, RELEASE, waitMutating, waitReady } from '../support/nodecluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const node = nodeCluster();
const PROBE = 'service.beta.kubernetes.io/port_80_health-probe_protocol';

describe.each([
  { overlay: 'opt-in', labels: { 'lb-probe-webhook/enabled': 'true' } },
  { overlay: 'cluster-wide', labels: {} },
])('kustomize overlay $overlay', ({ overlay, labels }) => {
  it('runs the image on the node and annotates a LoadBalancer Service in a namespace it selects', async () => {
    const dir = tempDir(`lbp-kustomize-${overlay}-`);
    const certs = join(dir, 'certs');
    const made = await runCli(['certs', '--out', certs, '--dns', `${RELEASE}.${NAMESPACE}.svc`]);
    expect(made.code, made.stderr).toBe(0);
    // Your own overlay, as the README shows it: the project's overlay and your image.
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      JSON.stringify({ resources: [relative(dir, join(ROOT, 'manifests/overlays', overlay))], images: [{ name: 'lb-probe-webhook', newName: node.image.repository, newTag: node.image.tag }] }),
    );
    await node.run(['apply', '-k', dir]);
    await node.run(['-n', NAMESPACE, 'create', 'secret', 'tls', `${RELEASE}-tls`, '--cert', join(certs, 'tls.crt'), '--key', join(certs, 'tls.key')]);
    const ca = readFileSync(join(certs, 'ca.crt')).toString('base64');
    await node.run(['patch', 'mutatingwebhookconfiguration', RELEASE, '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: ca }])]);
    const pods = await waitReady(node);
    expect(pods.map((p) => p.image)).toEqual([`${node.image.repository}:${node.image.tag}`, `${node.image.repository}:${node.image.tag}`]);

    const namespace = `apps-${overlay}`;
    await node.run(['create', 'namespace', namespace]);
    for (const [key, value] of Object.entries(labels)) await node.run(['label', 'namespace', namespace, `${key}=${value}`]);
    await waitMutating(node, namespace);
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace }, spec: { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, appProtocol: 'http' }] } };
    await node.run(['create', '-f', '-'], JSON.stringify(service));
    const stored = await node.json(['get', 'service', 'web', '-n', namespace]);
    expect(stored.metadata.annotations?.[PROBE]).toBe('tcp');

    await node.run(['delete', 'namespace', namespace, '--wait=false']);
    await node.run(['delete', '-k', dir, '--wait=true', '--timeout=120s']);
  });
});
