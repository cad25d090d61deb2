/**
 * Test-side access to the real node that the node project's global setup (test/node/global-setup.ts)
 * started: kubectl, helm and containerd's ctr against it, and the steps every node test takes with the
 * chart: install it as users do, find its Pods, wait for its rollout.
 */
import { join } from 'node:path';
import { inject } from 'vitest';
import { kubectlRunner, runCommand, tempDir, waitFor, type Kubectl, type KubectlResult } from './controlplane.js';
import { CHART, ensureHelm, helmRunner, valuesFile, type Helm } from './helm.js';
import { ensureNodeToolchain } from './node.js';

/** RELEASE and NAMESPACE are where the node tests install the chart, as the README tells users to. */
export const RELEASE = 'lb-probe-webhook';
export const NAMESPACE = 'lb-probe-webhook';

/** NodeCluster is the node as a test sees it. */
export interface NodeCluster {
  readonly kubectl: Kubectl;
  readonly helm: Helm;
  readonly kubeconfig: string;
  readonly binDir: string;
  /** image is the webhook image's repository and tag as loaded into the node. */
  readonly image: { readonly repository: string; readonly tag: string };
  ctr(args: readonly string[]): Promise<KubectlResult>;
  /** run runs kubectl and returns stdout, throwing with stderr on failure. */
  run(args: readonly string[], input?: string): Promise<string>;
  /** json runs kubectl with -o json and parses the output. */
  json(args: readonly string[]): Promise<any>;
}

/** nodeCluster returns the node of the node project's global setup. */
export function nodeCluster(): NodeCluster {
  const info = inject('node');
  const kubectl = kubectlRunner(info.binDir, info.kubeconfig);
  const helm = helmRunner(ensureHelm().helm, info.kubeconfig, tempDir('lbp-node-helm-'));
  const tools = ensureNodeToolchain();
  const run = async (args: readonly string[], input?: string): Promise<string> => {
    const out = await kubectl(args, input);
    if (out.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${out.stderr}`);
    return out.stdout;
  };
  return {
    kubectl,
    helm,
    kubeconfig: info.kubeconfig,
    binDir: info.binDir,
    image: { repository: info.image.repository, tag: info.image.tag },
    ctr: (args) => runCommand(join(tools.containerdBinDir, 'ctr'), ['--address', join(info.dir, 'containerd.sock'), '--namespace', 'k8s.io', ...args]),
    run,
    json: async (args) => JSON.parse(await run([...args, '-o', 'json'])) as unknown,
  };
}

/** installChart runs `helm install --wait` of the chart with values (the image is the one under test unless values say otherwise); it returns the seconds it took. */
export async function installChart(node: NodeCluster, values: Record<string, unknown> = {}, release = RELEASE, namespace = NAMESPACE): Promise<number> {
  const dir = tempDir('lbp-node-values-');
  const file = valuesFile(dir, release, { image: { tag: node.image.tag }, ...values });
  const started = Date.now();
  const out = await node.helm(['install', release, CHART, '--namespace', namespace, '--create-namespace', '-f', file, '--wait', '--timeout', '180s']);
  if (out.code !== 0) throw new Error(`helm install: ${out.stderr}`);
  return (Date.now() - started) / 1000;
}

/** uninstallChart removes the release and its namespace, waiting until they are gone. */
export async function uninstallChart(node: NodeCluster, release = RELEASE, namespace = NAMESPACE): Promise<void> {
  const out = await node.helm(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '120s']);
  if (out.code !== 0 && !/not found/.test(out.stderr)) throw new Error(`helm uninstall: ${out.stderr}`);
  await node.kubectl(['delete', 'namespace', namespace, '--ignore-not-found', '--wait=true', '--timeout=120s']);
}

/** WebhookPod is a webhook Pod as the tests look at it. */
export interface WebhookPod {
  readonly name: string;
  readonly uid: string;
  readonly ip: string;
  readonly ready: boolean;
  readonly restarts: number;
  readonly image: string;
  readonly containerId: string;
  readonly deleting: boolean;
}

/** webhookPods lists the webhook Deployment's Pods (by the Deployment's own selector: not the heal job's). */
export async function webhookPods(node: NodeCluster, namespace = NAMESPACE, release = RELEASE): Promise<WebhookPod[]> {
  const deployment = await node.json(['get', 'deployment', release, '-n', namespace]);
  const selector = Object.entries(deployment.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
  const list = await node.json(['get', 'pods', '-n', namespace, '-l', selector]);
  return (list.items as any[]).map((pod) => {
    const status = pod.status.containerStatuses?.[0];
    return {
      name: pod.metadata.name,
      uid: pod.metadata.uid,
      ip: pod.status.podIP ?? '',
      ready: (pod.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
      restarts: status?.restartCount ?? 0,
      image: pod.spec.containers[0].image,
      containerId: String(status?.containerID ?? '').replace(/^containerd:\/\//, ''),
      deleting: pod.metadata.deletionTimestamp !== undefined,
    };
  });
}

/** waitReady waits until the Deployment has replicas Ready Pods of its current revision and no other Pod left. */
export async function waitReady(node: NodeCluster, replicas = 2, namespace = NAMESPACE, release = RELEASE): Promise<WebhookPod[]> {
  let pods: WebhookPod[] = [];
  await waitFor(`${replicas} webhook Pods Ready`, 180_000, async () => {
    const status = await node.kubectl(['rollout', 'status', `deployment/${release}`, '-n', namespace, '--timeout=5s']);
    pods = await webhookPods(node, namespace, release);
    return status.code === 0 && pods.length === replicas && pods.every((p) => p.ready && !p.deleting);
  });
  return pods;
}

/**
 * waitMutating waits until the webhook answers through its Service for namespace: a server-side dry
 * run of a LoadBalancer Service comes back annotated. Pods that are Ready can still wait for the
 * EndpointSlice and kube-proxy's next sync; until then the API server would fail open.
 */
export async function waitMutating(node: NodeCluster, namespace: string): Promise<void> {
  const probe = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'lbp-mutating-probe', namespace },
    spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, appProtocol: 'http' }] },
  });
  await waitFor(`the webhook mutating in namespace ${namespace}`, 60_000, async () => {
    const out = await node.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], probe);
    return out.code === 0 && Object.keys((JSON.parse(out.stdout) as { metadata: { annotations?: object } }).metadata.annotations ?? {}).length > 0;
  });
}
