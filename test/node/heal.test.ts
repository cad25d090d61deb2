/**
 * Fail-open, healed: with both webhook Pods gone, the API server admits a Service without its
 * annotations (failurePolicy Ignore). The chart's heal CronJob (audit --fix --as-webhook) gives them
 * on its next run, in a Pod with its own least-privilege ServiceAccount, reaching the API server
 * through the kubernetes Service; afterwards audit finds nothing to change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/controlplane.js';
import { runCli } from '../support/cli.js';
import { installChart, NAMESPACE, nodeCluster, RELEASE, uninstallChart, waitReady } from '../support/nodecluster.js';

const node = nodeCluster();
const PROBE = 'service.beta.kubernetes.io/port_80_health-probe_protocol';
const HEAL = `${RELEASE}-heal`;
const SA = `system:serviceaccount:${NAMESPACE}:${HEAL}`;

function loadBalancer(name: string, namespace: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'http', port: 80, appProtocol: 'http' }] },
  });
}

/** healJobs lists the heal Jobs the CronJob made, oldest first. */
async function healJobs(): Promise<any[]> {
  const list = await node.json(['get', 'jobs', '-n', NAMESPACE, '-l', 'app.kubernetes.io/component=heal']);
  return (list.items as any[]).sort((a, b) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)));
}

beforeAll(async () => {
  // Every minute, the shortest schedule cron has, so the test sees a run soon.
  await installChart(node, { heal: { schedule: '* * * * *' } });
  await waitReady(node);
  for (const ns of ['healme', 'elsewhere']) await node.run(['create', 'namespace', ns]);
  await node.run(['label', 'namespace', 'healme', 'lb-probe-webhook/enabled=true']);
});

afterAll(async () => {
  await node.kubectl(['delete', 'namespace', 'healme', 'elsewhere', '--wait=false']);
  await uninstallChart(node);
});

describe('the heal CronJob', () => {
  it('gives a Service admitted while no webhook Pod answered its annotations on its first run after, only in the namespaces the webhook selects', async () => {
    await node.run(['scale', `deployment/${RELEASE}`, '-n', NAMESPACE, '--replicas=0']);
    await waitFor('no webhook Pod left', 120_000, async () => (await node.json(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/name=lb-probe-webhook'])).items.length === 0);
    const jobsBefore = new Set((await healJobs()).map((j) => j.metadata.name as string));

    await node.run(['create', '-f', '-'], loadBalancer('missed', 'healme'));
    await node.run(['create', '-f', '-'], loadBalancer('not-selected', 'elsewhere'));
    const admitted = await node.json(['get', 'service', 'missed', '-n', 'healme']);
    expect(admitted.metadata.annotations?.[PROBE]).toBeUndefined();
    const admittedAt = Date.now();

    // The first Job the CronJob starts after the Service was admitted fixes it.
    let job: any;
    await waitFor('a heal Job started after the Service was admitted finishes', 150_000, async () => {
      job = (await healJobs()).find((j) => !jobsBefore.has(j.metadata.name) && Date.parse(j.metadata.creationTimestamp) >= admittedAt - 1000);
      return job !== undefined && (job.status?.succeeded ?? 0) + (job.status?.failed ?? 0) > 0;
    });
    expect(job.status.succeeded).toBe(1);
    const log = await node.run(['logs', '-n', NAMESPACE, `job/${job.metadata.name}`]);
    console.log(`node: heal job ${job.metadata.name} ran ${((Date.parse(job.status.completionTime) - admittedAt) / 1000).toFixed(0)} s after the Service was admitted: ${log.trim().replace(/\s*\n\s*/g, " | ")}`);
    expect(log).toMatch(/^fixed 1 of 1 to change/m);

    const healed = await node.json(['get', 'service', 'missed', '-n', 'healme', '--show-managed-fields']);
    expect(healed.metadata.annotations?.[PROBE]).toBe('tcp');
    expect((healed.metadata.managedFields as any[]).some((f) => f.manager === 'lb-probe-webhook')).toBe(true);
    // A namespace the webhook registration does not select is not the heal job's either.
    const untouched = await node.json(['get', 'service', 'not-selected', '-n', 'elsewhere']);
    expect(untouched.metadata.annotations?.[PROBE]).toBeUndefined();
  });

  it('leaves audit, run as the webhook, nothing to change afterwards', async () => {
    const audit = await runCli(['audit', '--policy', 'manifests/base/policy.yaml', '--kubeconfig', node.kubeconfig, '--as-webhook', RELEASE]);
    expect(audit.stderr).toBe('');
    expect(audit.stdout).toMatch(/^nothing to change in \d+ objects?$/m);
    expect(audit.code).toBe(0);
  });

  it('runs as a ServiceAccount that may list and patch Services and Gateways and list Namespaces, and nothing else', async () => {
    const can = async (...args: string[]) => (await node.kubectl(['auth', 'can-i', ...args, '--as', SA])).stdout.trim();
    expect(await can('list', 'services', '-A')).toBe('yes');
    expect(await can('patch', 'services', '-n', 'healme')).toBe('yes');
    expect(await can('patch', 'gateways.gateway.networking.k8s.io', '-n', 'healme')).toBe('yes');
    expect(await can('list', 'namespaces')).toBe('yes');
    expect(await can('get', `mutatingwebhookconfigurations/${RELEASE}`)).toBe('yes');
    expect(await can('get', 'mutatingwebhookconfigurations/another')).toBe('no');
    expect(await can('create', 'services', '-n', 'healme')).toBe('no');
    expect(await can('delete', 'services', '-n', 'healme')).toBe('no');
    expect(await can('update', 'services', '-n', 'healme')).toBe('no');
    expect(await can('get', 'secrets', '-n', NAMESPACE)).toBe('no');
    expect(await can('list', 'pods', '-A')).toBe('no');
  });
});
