/**
 * Memory under the real limit: the memory benchmark's hostile traffic (test/support/hostile.ts) sent
 * to the webhook through its Service, with one replica so that one container takes all of it, under
 * the chart's 192Mi limit enforced by a real memory cgroup. An OOM kill would make the webhook fail
 * open, so the kernel must kill nothing in the cgroup, the container must never restart, and every
 * well-formed review must be answered 200.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hostileScenarios, type Endpoint } from '../support/hostile.js';
import { containerMemoryCgroup, readMemoryCgroup } from '../support/node.js';
import { installChart, NAMESPACE, nodeCluster, RELEASE, uninstallChart, waitReady, webhookPods, type WebhookPod } from '../support/nodecluster.js';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { waitFor } from '../support/controlplane.js';
import { join } from 'node:path';

const node = nodeCluster();
const LIMIT = 192 * 2 ** 20;
let pod: WebhookPod;
let endpoint: Endpoint;

/** memoryStat reads a v1 memory cgroup's memory.stat as numbers by name. */
function memoryStat(folder: string): Record<string, number> {
  return Object.fromEntries(
    readFileSync(join(folder, 'memory.stat'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.split(' ')[0], Number(line.split(' ')[1])]),
  ) as Record<string, number>;
}

/** oomKills is how many processes the kernel's OOM killer ended in the cgroup (memory.oom_control). */
function oomKills(folder: string): number {
  return Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(folder, 'memory.oom_control'), 'utf8'))?.[1] ?? NaN);
}

beforeAll(async () => {
  // One replica: the whole of the hostile traffic reaches one container, as in the benchmark.
  await installChart(node, { replicaCount: 1, heal: { enabled: false } });
  [pod] = (await waitReady(node, 1)) as [WebhookPod];
  const service = await node.json(['get', 'service', RELEASE, '-n', NAMESPACE]);
  const secret = await node.json(['get', 'secret', `${RELEASE}-tls`, '-n', NAMESPACE]);
  endpoint = {
    host: service.spec.clusterIP as string,
    port: 443,
    ca: Buffer.from(secret.data['ca.crt'] as string, 'base64').toString(),
    servername: `${RELEASE}.${NAMESPACE}.svc`,
  };
  // A Ready Pod is not yet a Service that answers: kube-proxy rejects the Service's address until its
  // next sync has put the new endpoint in its rules. Wait for one TLS handshake through it.
  await waitFor(`the Service ${endpoint.host}:${endpoint.port} to complete a TLS handshake`, 30_000, () => handshake(endpoint));
});

/** handshake is whether one TLS connection to the endpoint completes, verified against its CA. */
function handshake(to: Endpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: to.host, port: to.port, ca: to.ca, servername: to.servername, timeout: 2_000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

afterAll(async () => {
  await uninstallChart(node);
});

it('answers every well-formed review of the hostile traffic through its Service, with no OOM kill in its 192Mi cgroup and no restart', async () => {
  const folder = containerMemoryCgroup(pod.uid, pod.containerId);
  if (folder === undefined) throw new Error(`no memory cgroup for ${pod.name}`);
  expect(readMemoryCgroup(folder, 'memory.limit_in_bytes')).toBe(LIMIT);
  expect(oomKills(folder)).toBe(0);
  // The working set (resident anonymous memory) sampled while the traffic runs; the cgroup's own peak
  // also counts page cache, which the kernel reclaims before it kills anything.
  let peakRss = 0;
  const sample = setInterval(() => {
    peakRss = Math.max(peakRss, memoryStat(folder)['total_rss'] ?? 0);
  }, 100);
  const rows: string[] = [];
  let failed = 0;
  try {
    for (const scenario of hostileScenarios()) {
      const tally = await scenario.run(endpoint);
      failed += tally.failed;
      rows.push(`${scenario.name}: ${tally.sent} reviews, ${tally.failed} failed; peak resident so far ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
    }
  } finally {
    clearInterval(sample);
  }
  const usagePeak = readMemoryCgroup(folder, 'memory.max_usage_in_bytes');
  console.log(`node: hostile traffic through the Service to one Pod:\n  ${rows.join('\n  ')}`);
  console.log(
    `node: peak resident memory ${(peakRss / 2 ** 20).toFixed(0)} MiB (sampled every 100 ms), cgroup peak with page cache ${(usagePeak / 2 ** 20).toFixed(0)} MiB, ` +
      `against a limit of 192 MiB; limit reached ${readMemoryCgroup(folder, 'memory.failcnt')} times, OOM kills ${oomKills(folder)}`,
  );
  expect(failed).toBe(0);
  expect(oomKills(folder)).toBe(0);
  const [after] = await webhookPods(node);
  expect([after?.uid, after?.restarts]).toEqual([pod.uid, 0]);
});
