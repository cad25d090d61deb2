import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../support/fixtures.js';
import { cluster } from '../support/cluster.js';
import { ensureNamespace, registerWebhook, startWebhook, unregisterWebhook, waitUntilMutating, type RunningWebhook } from '../support/webhook.js';

const AZ = 'service.beta.kubernetes.io/';
const TCP_PROBES = { [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' };
const k = cluster();
let webhook: RunningWebhook;

/**
 * istioService is the Istio-generated Service fixture, renamed into a namespace. istio.test.ts
 * checks the fixture's shape against the Service the real istiod generates.
 */
function istioService(namespace: string, name: string): Record<string, any> {
  const service = fixture('istio-gateway-service.yaml') as Record<string, any>;
  service.metadata = { ...service.metadata, name, namespace };
  delete service.metadata.ownerReferences;
  return service;
}

function withNamespace(object: Record<string, any>, namespace: string, name?: string): Record<string, any> {
  object.metadata = { ...object.metadata, namespace, ...(name && { name }) };
  return object;
}


beforeAll(async () => {
  webhook = await startWebhook('provider: azure\n');
});
afterAll(async () => {
  await webhook?.stop();
});

describe('with the opt-in overlay registered', () => {
  let name: string;
  beforeAll(async () => {
    await ensureNamespace(k.kubectl, 'optin-on', { 'lb-probe-webhook/enabled': 'true' });
    await ensureNamespace(k.kubectl, 'optin-off');
    name = await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-e2e-opt-in' });
    await waitUntilMutating(k.kubectl, 'optin-on');
  });
  afterAll(() => unregisterWebhook(k.kubectl, name));

  it('An Istio-shaped Service in a labelled namespace is stored with the probe annotations, and kubectl shows why.', async () => {
    const { stderr } = await k.apply(istioService('optin-on', 'gateway-istio'));
    expect((await k.get('service', 'gateway-istio', 'optin-on'))?.metadata.annotations).toMatchObject(TCP_PROBES);
    expect(stderr).toContain('Warning: lb-probe-webhook: Azure probes port 80 (http) over TCP instead of GET / (appProtocol http)');
  });

  it('The same Service in an unlabelled namespace is stored untouched and never reaches the webhook.', async () => {
    await k.apply(istioService('optin-off', 'gateway-istio-off'));
    const stored = await k.get('service', 'gateway-istio-off', 'optin-off');
    expect(Object.keys(stored?.metadata.annotations ?? {}).filter((key) => key.startsWith(AZ))).toEqual([]);
    expect(await webhook.settledReviews('gateway-istio-off')).toEqual([]);
  });

  it('The API server allocated clusterIP and nodePorts after the patch, so the patched Service passed validation.', async () => {
    const stored = await k.get('service', 'gateway-istio', 'optin-on');
    // The control plane gives Services addresses from 198.19.0.0/16 (test/support/controlplane.ts).
    expect(stored?.spec.clusterIP).toMatch(/^198\.19\.\d+\.\d+$/);
    for (const port of stored?.spec.ports ?? []) expect(port.nodePort).toBeGreaterThanOrEqual(30000);
  });

  it('A Gateway without spec.infrastructure is stored with the annotations in metadata.', async () => {
    await k.apply(withNamespace(fixture('gateway-plain.yaml'), 'optin-on', 'plain'));
    const stored = await k.get('gateway', 'plain', 'optin-on');
    expect(stored?.metadata.annotations).toMatchObject(TCP_PROBES);
    expect(stored?.spec.infrastructure).toBeUndefined();
  });

  it('A Gateway with spec.infrastructure.annotations is stored with the annotations there, the metadata ones untouched.', async () => {
    await k.apply(withNamespace(fixture('gateway-infrastructure.yaml'), 'optin-on', 'infra'));
    const stored = await k.get('gateway', 'infra', 'optin-on');
    expect(stored?.spec.infrastructure.annotations).toEqual({
      [`${AZ}azure-dns-label-name`]: 'shop',
      [`${AZ}port_80_health-probe_protocol`]: 'tcp',
    });
    expect(Object.keys(stored?.metadata.annotations ?? {}).filter((key) => key.includes('health-probe'))).toEqual([]);
  });

  it('A Gateway relying on metadata.annotations propagation keeps its other annotations propagating.', async () => {
    const gateway = withNamespace(fixture('gateway-azure-internal.yaml'), 'optin-on', 'internal');
    gateway.apiVersion = 'gateway.networking.k8s.io/v1';
    await k.apply(gateway);
    const stored = await k.get('gateway', 'internal', 'optin-on');
    expect(stored?.metadata.annotations).toMatchObject({ [`${AZ}azure-load-balancer-internal`]: 'true', [`${AZ}port_80_health-probe_protocol`]: 'tcp' });
    expect(stored?.spec.infrastructure).toBeUndefined();
  });

  it('A Gateway whose infrastructure map is full is accepted unchanged, with a warning saying what to do.', async () => {
    const gateway = withNamespace(fixture('gateway-infrastructure.yaml'), 'optin-on', 'full');
    gateway.spec.infrastructure.annotations = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`example.com/a${i}`, 'x']));
    const { stderr } = await k.apply(gateway);
    const stored = await k.get('gateway', 'full', 'optin-on');
    expect(Object.keys(stored?.spec.infrastructure.annotations)).toHaveLength(8);
    expect(stderr).toContain('over the cap of 8');
  });

  // This imitates istiod's reconcile: server-side apply with force as istio.io/gateway-controller.
  // istio.test.ts runs the real istiod (annotations kept across its reconciles and restarts, the
  // Service's resourceVersion still over 10 idle seconds). What only this imitation checks: the
  // exact number of webhook calls for two known writes (istiod decides itself how often it
  // re-applies), for a Service whose probe keys the applier does not send (istiod sends the ones
  // it copies from the Gateway).
  it('Re-applied by a second field manager with server-side apply and force, the Service keeps the annotations and the webhook is not called in a loop.', async () => {
    const service = istioService('optin-on', 'ssa-istio');
    const istio = ['--server-side', '--force-conflicts', '--field-manager=istio.io/gateway-controller'];
    await k.apply(service, ...istio);
    service.metadata.labels = { ...service.metadata.labels, 'reconcile-generation': '2' };
    const { stdout } = await k.apply(service, ...istio, '-o', 'json');
    const applied = JSON.parse(stdout) as { metadata: { resourceVersion: string } };
    const stored = await k.get('service', 'ssa-istio', 'optin-on');
    expect(stored?.metadata.annotations).toMatchObject(TCP_PROBES);
    expect(stored?.metadata.labels['reconcile-generation']).toBe('2');
    // Every call the two writes made is in the log once the marker review is (settledReviews).
    const calls = (await webhook.settledReviews('ssa-istio')).length;
    // Two writes, each at most twice with reinvocationPolicy IfNeeded.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(4);
    // No write followed the second apply (the webhook's own patch is part of it): still its resourceVersion.
    expect((await k.get('service', 'ssa-istio', 'optin-on'))?.metadata.resourceVersion).toBe(applied.metadata.resourceVersion);
  });

  it('A probe annotation that a user set is kept as it is.', async () => {
    await k.apply(withNamespace(fixture('service-user-probe.yaml'), 'optin-on'));
    const stored = await k.get('service', 'gateway-user', 'optin-on');
    expect(stored?.metadata.annotations).toMatchObject({
      [`${AZ}port_80_health-probe_protocol`]: 'http',
      [`${AZ}port_80_health-probe_request-path`]: '/status',
      [`${AZ}port_443_health-probe_protocol`]: 'tcp',
    });
  });

  it('kubectl create --dry-run=server -o yaml shows the mutated object and stores nothing.', async () => {
    const result = await k.kubectl(['create', '--dry-run=server', '-o', 'yaml', '-f', '-'], JSON.stringify(istioService('optin-on', 'dry-run-only')));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${AZ}port_80_health-probe_protocol: tcp`);
    expect(await k.get('service', 'dry-run-only', 'optin-on')).toBeUndefined();
    expect((await webhook.settledReviews('dry-run-only')).at(-1)).toMatchObject({ dryRun: true, decision: 'patched' });
  });

  it('A ClusterIP Service and a LoadBalancer without http appProtocol never reach the webhook (matchConditions).', async () => {
    await k.apply(withNamespace(fixture('service-clusterip.yaml'), 'optin-on', 'plain-clusterip'));
    await k.apply(withNamespace(fixture('istio-chart-service.yaml'), 'optin-on', 'chart-gateway'));
    expect(await k.get('service', 'plain-clusterip', 'optin-on')).toBeDefined();
    expect(await webhook.settledReviews('plain-clusterip')).toEqual([]);
    expect(webhook.reviews('chart-gateway')).toEqual([]);
    expect(webhook.reviews('gateway-istio').length).toBeGreaterThan(0);
  });
});

describe('with the cluster-wide overlay registered', () => {
  let name: string;
  beforeAll(async () => {
    await ensureNamespace(k.kubectl, 'cw-plain');
    await ensureNamespace(k.kubectl, 'cw-out', { 'lb-probe-webhook/enabled': 'false' });
    await ensureNamespace(k.kubectl, 'lb-probe-webhook');
    name = await registerWebhook(k.kubectl, k.binDir, 'cluster-wide', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-e2e-cluster-wide' });
    await waitUntilMutating(k.kubectl, 'cw-plain');
  });
  afterAll(() => unregisterWebhook(k.kubectl, name));

  it.each([
    { where: 'an unlabelled namespace', namespace: 'cw-plain', mutated: true, result: 'mutated' },
    { where: 'the default namespace', namespace: 'default', mutated: true, result: 'mutated' },
    { where: 'kube-system', namespace: 'kube-system', mutated: false, result: 'left alone' },
    { where: 'the webhook’s own namespace', namespace: 'lb-probe-webhook', mutated: false, result: 'left alone' },
    { where: 'a namespace labelled lb-probe-webhook/enabled: "false"', namespace: 'cw-out', mutated: false, result: 'left alone' },
  ])('A Service in $where: $result', async ({ namespace, mutated }) => {
    const svcName = `cw-${namespace}`;
    await k.apply(istioService(namespace, svcName));
    const annotations = (await k.get('service', svcName, namespace))?.metadata.annotations ?? {};
    if (mutated) expect(annotations).toMatchObject(TCP_PROBES);
    else expect(Object.keys(annotations).filter((key) => key.startsWith(AZ))).toEqual([]);
    expect((await webhook.settledReviews(svcName)).length > 0).toBe(mutated);
  });
});
