/**
 * Memory under the real limit: the memory benchmark's hostile traffic (test/support/hostile.ts) sent
 * to the webhook through its Service (kube-proxy spreads it over both Pods), with the chart's 192Mi
 * limit enforced by a real memory cgroup. An OOM kill would make the webhook fail open, so the
 * containers must never restart, and every well-formed review must be answered 200.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hostileScenarios, type Endpoint } from '../support/hostile.js';
import { containerMemoryCgroup, readMemoryCgroup } from '../support/node.js';
import { installChart, NAMESPACE, nodeCluster, RELEASE, uninstallChart, waitReady, webhookPods, type WebhookPod } from '../support/nodecluster.js';

const node = nodeCluster();
const LIMIT = 192 * 2 ** 20;
let pods: WebhookPod[] = [];
let endpoint: Endpoint;

beforeAll(async () => {
  await installChart(node);
  pods = await waitReady(node);
  const service = await node.json(['get', 'service', RELEASE, '-n', NAMESPACE]);
  const secret = await node.json(['get', 'secret', `${RELEASE}-tls`, '-n', NAMESPACE]);
  endpoint = {
    host: service.spec.clusterIP as string,
    port: 443,
    ca: Buffer.from(secret.data['ca.crt'] as string, 'base64').toString(),
    servername: `${RELEASE}.${NAMESPACE}.svc`,
  };
});

afterAll(async () => {
  await uninstallChart(node);
});

it('answers every well-formed review of the hostile traffic through its Service, and neither container is OOM-killed under its 192Mi cgroup', async () => {
  const cgroups = pods.map((pod) => {
    const folder = containerMemoryCgroup(pod.uid, pod.containerId);
    if (folder === undefined) throw new Error(`no memory cgroup for ${pod.name}`);
    return folder;
  });
  for (const folder of cgroups) expect(readMemoryCgroup(folder, 'memory.limit_in_bytes')).toBe(LIMIT);
  const rows: string[] = [];
  let failed = 0;
  for (const scenario of hostileScenarios()) {
    const tally = await scenario.run(endpoint);
    failed += tally.failed;
    const peaks = cgroups.map((folder) => (readMemoryCgroup(folder, 'memory.max_usage_in_bytes') / 2 ** 20).toFixed(0));
    rows.push(`${scenario.name}: ${tally.sent} reviews, ${tally.failed} failed; peak so far ${peaks.join(' / ')} MiB`);
  }
  const peaks = cgroups.map((folder) => readMemoryCgroup(folder, 'memory.max_usage_in_bytes'));
  const limitHits = cgroups.map((folder) => readMemoryCgroup(folder, 'memory.failcnt'));
  console.log(`node: hostile traffic through the Service:\n  ${rows.join('\n  ')}`);
  console.log(`node: peak memory of the two containers ${peaks.map((p) => (p / 2 ** 20).toFixed(0)).join(' and ')} MiB against a limit of 192 MiB; the limit was reached ${limitHits.join(' and ')} times`);
  expect(failed).toBe(0);
  const after = await webhookPods(node);
  expect(after.map((p) => [p.uid, p.restarts])).toEqual(pods.map((p) => [p.uid, 0]));
  for (const peak of peaks) expect(peak).toBeLessThan(LIMIT);
});
