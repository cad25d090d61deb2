/**
 * The events users live through, on the real node, each under Service churn through the API server
 * (test/support/churn.ts: at least 50 creates and updates a second, every one of which the webhook
 * must annotate): a webhook Pod deleted, a rolling upgrade to a new image tag, evictions against the
 * PodDisruptionBudget, and the serving certificate renewed. With failurePolicy Ignore a failed call
 * would pass silently, so afterwards every Service is read back: none may lack its annotation, and
 * the client must have seen no error.
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../support/controlplane.js';
import { apiAccessFrom, apiCall, type ApiAccess } from '../support/apiserver.js';
import { startChurn, type ChurnResult } from '../support/churn.js';
import { CHART } from '../support/helm.js';
import { installChart, NAMESPACE, nodeCluster, RELEASE, uninstallChart, waitMutating, waitReady, webhookPods, type WebhookPod } from '../support/nodecluster.js';

const node = nodeCluster();
const PROBE = 'service.beta.kubernetes.io/port_80_health-probe_protocol';
/** RATE is the churn's creates and updates per second; the floor is 50. */
const RATE = 60;
let access: ApiAccess;

/** during runs event under churn in a namespace of its own, keeps churning for a few seconds after it, and returns what the churn saw. */
async function during(name: string, event: () => Promise<void>): Promise<ChurnResult> {
  const namespace = `churn-${name}`;
  await node.run(['create', 'namespace', namespace]);
  await node.run(['label', 'namespace', namespace, 'lb-probe-webhook/enabled=true']);
  await waitMutating(node, namespace);
  const churn = startChurn(access, { namespace, perSecond: RATE, prefix: name, annotation: PROBE });
  let result: ChurnResult;
  try {
    // Churn before the event: the webhook is under load when it happens.
    await new Promise((r) => setTimeout(r, 2000));
    await event();
    // And after it: the endpoints and kube-proxy's rules have settled.
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    result = await churn.stop();
  }
  console.log(
    `node: ${name}: ${result.creates} creates and ${result.updates} updates in ${result.seconds.toFixed(1)} s ` +
      `(${((result.creates + result.updates) / result.seconds).toFixed(1)}/s), ${result.errors.length} failed, ` +
      `${result.unannotated.length} of ${result.checked} Services left unannotated, ${result.late} not sent (64 waiting); ` +
      `latency p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms`,
  );
  if (result.unannotated.length > 0) {
    // What the API server said when it admitted them unannotated (it fails open with failurePolicy Ignore).
    const log = readFileSync(join(inject('node').controlPlaneDir, 'kube-apiserver.log'), 'utf8');
    console.log(`node: ${name}: the API server's webhook errors:\n${log.split('\n').filter((l) => /webhook/i.test(l) && /fail|error|timeout/i.test(l)).slice(-20).join('\n')}`);
  }
  await node.kubectl(['delete', 'namespace', namespace, '--wait=false']);
  return result;
}

/** expectNothingLost checks a churn: the rate held, the client saw no error, and every Service carries its annotation. */
function expectNothingLost(result: ChurnResult): void {
  expect(result.errors.slice(0, 5)).toEqual([]);
  expect(result.unannotated.slice(0, 5)).toEqual([]);
  expect(result.creates + result.updates).toBeGreaterThanOrEqual(50 * result.seconds);
  expect(result.checked).toBe(result.creates);
}

/** evict asks the eviction API to evict a Pod and returns the HTTP status (201 evicted, 429 refused by the budget). */
async function evict(pod: string): Promise<{ status: number; message: string }> {
  const response = await apiCall(access, undefined, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods/${pod}/eviction`, {
    apiVersion: 'policy/v1',
    kind: 'Eviction',
    metadata: { name: pod, namespace: NAMESPACE },
  });
  return { status: response.status, message: String(response.body?.message ?? '') };
}

/** servedCertificate returns the fingerprint of the certificate a webhook Pod serves on its Pod IP. */
function servedCertificate(ip: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port: 9443, servername: `${RELEASE}.${NAMESPACE}.svc`, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  access = apiAccessFrom(node.kubeconfig);
  // No heal job here: it would annotate what the webhook missed before the churn reads it back.
  await installChart(node, { heal: { enabled: false } });
  await waitReady(node);
});

afterAll(async () => {
  await uninstallChart(node);
});

describe('under at least 50 Service creates and updates a second, nothing fails and nothing is left unannotated', () => {
  it('while one of the two webhook Pods is deleted', async () => {
    const [victim] = await waitReady(node);
    const result = await during('delete', async () => {
      await node.run(['delete', 'pod', victim!.name, '-n', NAMESPACE, '--wait=false']);
      const pods = await waitReady(node);
      expect(pods.map((p) => p.name)).not.toContain(victim!.name);
    });
    expectNothingLost(result);
  });

  it('while helm upgrade rolls the Deployment to a new image tag', async () => {
    const from = `docker.io/library/${node.image.repository}:${node.image.tag}`;
    const tag = `${node.image.tag}-upgrade`;
    const tagged = await node.ctr(['images', 'tag', '--force', from, `docker.io/library/${node.image.repository}:${tag}`]);
    expect(tagged.code).toBe(0);
    const before = await waitReady(node);
    const result = await during('upgrade', async () => {
      const out = await node.helm(['upgrade', RELEASE, CHART, '--namespace', NAMESPACE, '--reuse-values', '--set', `image.tag=${tag}`, '--wait', '--timeout', '180s']);
      expect(out.code, out.stderr).toBe(0);
      const after = await waitReady(node);
      expect(after.map((p) => p.image)).toEqual([`${node.image.repository}:${tag}`, `${node.image.repository}:${tag}`]);
      expect(after.some((p) => before.some((b) => b.uid === p.uid))).toBe(false);
    });
    expectNothingLost(result);
  });

  it('while one Pod is evicted, and a second eviction is refused by the PodDisruptionBudget until the replacement is Ready', async () => {
    const pods = await waitReady(node);
    await waitFor('the PodDisruptionBudget allows one disruption', 60_000, async () => {
      const pdb = await node.json(['get', 'poddisruptionbudget', RELEASE, '-n', NAMESPACE]);
      return pdb.status?.disruptionsAllowed === 1 && pdb.status?.currentHealthy === 2;
    });
    const [first, second] = pods as [WebhookPod, WebhookPod];
    const refusals: string[] = [];
    const result = await during('evict', async () => {
      expect((await evict(first.name)).status).toBe(201);
      const refused = await evict(second.name);
      refusals.push(refused.message);
      expect(refused.status).toBe(429);
      const replaced = await waitReady(node);
      expect(replaced.map((p) => p.name)).not.toContain(first.name);
      await waitFor('the PodDisruptionBudget allows one disruption again', 60_000, async () => {
        const pdb = await node.json(['get', 'poddisruptionbudget', RELEASE, '-n', NAMESPACE]);
        return pdb.status?.disruptionsAllowed === 1;
      });
      expect((await evict(second.name)).status).toBe(201);
      await waitReady(node);
    });
    expect(refusals[0]).toMatch(/disruption budget/);
    expectNothingLost(result);
  });

  it('while the serving certificate is renewed under the chart CA (Secret deleted, helm upgrade), loaded by the Pods without a restart', async () => {
    const pods = await waitReady(node);
    const secret = async () => (await node.json(['get', 'secret', `${RELEASE}-tls`, '-n', NAMESPACE])).data as Record<string, string>;
    const caBundle = async () => (await node.json(['get', 'mutatingwebhookconfiguration', RELEASE])).webhooks[0].clientConfig.caBundle as string;
    const old = await secret();
    const oldBundle = await caBundle();
    const fingerprint = (b64: string) => new X509Certificate(Buffer.from(b64, 'base64')).fingerprint256;
    for (const pod of pods) expect(await servedCertificate(pod.ip)).toBe(fingerprint(old['tls.crt']!));
    let renewed: Record<string, string> = {};
    const result = await during('rotate', async () => {
      await node.run(['delete', 'secret', `${RELEASE}-tls`, '-n', NAMESPACE]);
      const out = await node.helm(['upgrade', RELEASE, CHART, '--namespace', NAMESPACE, '--reuse-values', '--wait', '--timeout', '120s']);
      expect(out.code, out.stderr).toBe(0);
      renewed = await secret();
      expect(renewed['tls.crt']).not.toBe(old['tls.crt']);
      await waitFor('both webhook Pods serve the renewed certificate', 120_000, async () => {
        const served = await Promise.all(pods.map((p) => servedCertificate(p.ip).catch(() => '')));
        return served.every((f) => f === fingerprint(renewed['tls.crt']!));
      });
    });
    // The same CA signed it, so the caBundle the API server trusts never changed.
    expect(renewed['ca.crt']).toBe(old['ca.crt']);
    expect(await caBundle()).toBe(oldBundle);
    expect(new X509Certificate(Buffer.from(renewed['tls.crt']!, 'base64')).checkIssued(new X509Certificate(Buffer.from(renewed['ca.crt']!, 'base64')))).toBe(true);
    const after = await webhookPods(node);
    expect(after.map((p) => [p.uid, p.restarts])).toEqual(pods.map((p) => [p.uid, 0]));
    expectNothingLost(result);
  });
});
