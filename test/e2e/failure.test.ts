import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster } from '../support/cluster.js';
import {
  ensureNamespace,
  probeService,
  registerWebhook,
  startWebhook,
  unregisterWebhook,
  waitUntilMutating,
  WEBHOOK_NAME,
  type RunningWebhook,
} from '../support/webhook.js';

const k = cluster();
const NS = 'failure';

describe('when the webhook is down', () => {
  let webhook: RunningWebhook;
  const registrations: string[] = [];

  beforeAll(async () => {
    await ensureNamespace(k.kubectl, NS, { 'lb-probe-webhook/enabled': 'true' });
    webhook = await startWebhook('provider: azure\n');
    registrations.push(await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-e2e-failure' }));
    await waitUntilMutating(k.kubectl, NS);
    expect(await webhook.stop()).toBe(0);
  });
  afterAll(async () => {
    for (const name of registrations) await unregisterWebhook(k.kubectl, name);
  });

  it('with failurePolicy Ignore (the shipped setting) the create succeeds, unmutated.', async () => {
    const created = await k.kubectl(['create', '-f', '-'], JSON.stringify(probeService('while-down', NS)));
    expect(created.code).toBe(0);
    const stored = await k.get('service', 'while-down', NS);
    expect(Object.keys(stored?.metadata.annotations ?? {})).toEqual([]);
  });

  it('with failurePolicy Fail the create is rejected with a message naming the webhook.', async () => {
    await unregisterWebhook(k.kubectl, registrations.pop() as string);
    registrations.push(
      await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-e2e-failure-fail', failurePolicy: 'Fail' }),
    );
    let rejected = { code: 0 as number | null, stderr: '' };
    // The new registration reaches the admission chain a moment after it is written.
    for (let attempt = 0; attempt < 40 && rejected.code === 0; attempt++) {
      rejected = await k.kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(probeService('fail-closed', NS)));
      if (rejected.code === 0) await new Promise((r) => setTimeout(r, 250));
    }
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain(`failed calling webhook "${WEBHOOK_NAME}"`);
    expect(await k.get('service', 'fail-closed', NS)).toBeUndefined();
  });
});
