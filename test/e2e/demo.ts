/**
 * `make demo`: a real control plane, the webhook, the opt-in overlay pointed at it, and an Istio
 * Gateway plus the Service Istio generates for it, before and after. Runs until Ctrl-C, then stops
 * every process it started and removes its files.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startControlPlane } from './controlplane/controlplane.js';
import { fixture } from '../helpers/fixtures.js';
import { ensureNamespace, renderOverlay, startWebhook, waitUntilMutating } from './webhook.js';

const NAMESPACE = 'demo';
const policyFile = fileURLToPath(new URL('../../manifests/base/policy.yaml', import.meta.url));

function annotationsText(annotations: unknown): string {
  return annotations === undefined || Object.keys(annotations as object).length === 0 ? '    (none)\n' : stringify(annotations).replace(/^/gm, '    ');
}

async function main(): Promise<void> {
  console.log('demo: starting etcd and kube-apiserver (the first run on a machine builds them: several minutes)');
  const cp = await startControlPlane();
  process.prependOnceListener('SIGINT', () => console.log('\ndemo: stopping the webhook and the control plane, removing their files'));
  const webhook = await startWebhook(readFileSync(policyFile, 'utf8'));
  console.log(`demo: kube-apiserver ${cp.server}, webhook ${webhook.url} (policy ${policyFile})`);

  const overlay = renderOverlay(cp.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle });
  const applied = await cp.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: overlay }));
  if (applied.code !== 0) throw new Error(applied.stderr);
  console.log(`demo: applied the opt-in overlay, its webhook pointed at the local server:\n${applied.stdout.replace(/^/gm, '    ')}`);
  await ensureNamespace(cp.kubectl, NAMESPACE, { 'lb-probe-webhook/enabled': 'true' });
  await waitUntilMutating(cp.kubectl, NAMESPACE);

  const gateway = fixture('gateway-plain.yaml') as Record<string, any>;
  const service = fixture('istio-gateway-service.yaml') as Record<string, any>;
  for (const object of [gateway, service]) {
    object.metadata.namespace = NAMESPACE;
    delete object.metadata.ownerReferences;
  }
  for (const [kind, object] of [['gateway', gateway], ['service', service]] as const) {
    const name = object.metadata.name as string;
    console.log(`\n${kind} ${NAMESPACE}/${name}, annotations as written:\n${annotationsText(object.metadata.annotations)}`);
    const created = await cp.kubectl(['create', '-f', '-'], JSON.stringify(object));
    if (created.code !== 0) throw new Error(created.stderr);
    if (created.stderr) console.log(`kubectl said:\n${created.stderr.replace(/^/gm, '    ')}`);
    const stored = JSON.parse((await cp.kubectl(['get', kind, name, '-n', NAMESPACE, '-o', 'json'])).stdout) as { metadata: { annotations?: unknown } };
    console.log(`${kind} ${NAMESPACE}/${name}, annotations as stored:\n${annotationsText(stored.metadata.annotations)}`);
  }

  console.log(`\nThe control plane and the webhook keep running. In another shell:\n\n    export KUBECONFIG=${cp.kubeconfig}\n    ${cp.binDir}/kubectl get svc,gateway -n ${NAMESPACE}\n\nPress Ctrl-C to stop and clean up.`);
  await new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30);
  });
}

main().catch((err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
