/**
 * The webhook with the real istiod: pilot-discovery built from the istio.io/istio module
 * (test/e2e/istiod/build.sh) generates the Service of each Gateway of class istio, as in a cluster,
 * and the webhook is registered the way the manifests register it (the opt-in overlay,
 * failurePolicy Ignore). One istiod serves every scenario of this file, restarted once by the
 * scenario about restarts; the webhook is stopped and started again only where a scenario needs it.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { fixture } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';
import { cluster } from '../support/cluster.js';
import { admissionPolicyApiVersion } from '../support/controlplane.js';
import { ensureIstiod, installIstioPrerequisites, startIstiod, type Istiod } from '../support/istiod.js';
import { ensureNamespace, registerWebhook, startWebhook, unregisterWebhook, waitUntilMutating, type RunningWebhook } from '../support/webhook.js';

const AZ = 'service.beta.kubernetes.io/';
const TCP = 'istio-tcp';
const READINESS = 'istio-readiness';
const DOWN = 'istio-down';
/** ISTIO_MANAGER is the field manager istiod's Gateway deployment controller applies with (features.ManagedGatewayController). */
const ISTIO_MANAGER = 'istio.io/gateway-controller';
/** One policy, two probes: tcp everywhere, readiness in one namespace (a rule). */
const POLICY = `provider: azure\nprobe: tcp\nrules:\n  - match: { namespaces: [${READINESS}] }\n    probe: readiness\n`;
/** SERVICE_WAIT_MS bounds every wait for istiod to write a Service: a hang guard for a loaded machine, not a speed target. */
const SERVICE_WAIT_MS = 60_000;
/** IDLE_MS is the quiet window in which a Service's resourceVersion must not move (no fight between istiod and the webhook). */
const IDLE_MS = 10_000;

const k = cluster();
const env = { KUBECONFIG: inject('controlPlane').kubeconfig };
const dir = mkdtempSync(join(tmpdir(), 'lbp-istio-'));
const policyFile = join(dir, 'policy.yaml');
let istiod: Istiod | undefined;
let webhook: RunningWebhook | undefined;
let registration: string | undefined;

type Json = Record<string, any>;
interface Port {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  readonly appProtocol?: string;
}
const portsOf = (service: Json): Port[] => service.spec.ports as Port[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function gateway(file: string, namespace: string, name: string): Json {
  const object: Json = fixture(file);
  object.apiVersion = 'gateway.networking.k8s.io/v1';
  object.metadata = { ...object.metadata, namespace, name };
  return object;
}

/** azureAnnotations returns the Azure annotations of an object (the policy's and any a user set). */
function azureAnnotations(object: Json | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries((object?.metadata?.annotations ?? {}) as Record<string, string>).filter(([key]) => key.startsWith(AZ)));
}

function istiodLogTail(): string {
  if (istiod === undefined) return '';
  return readFileSync(istiod.logFile, 'utf8').split('\n').slice(-15).join('\n');
}

/** serviceOf waits until istiod's Service for a Gateway exists and satisfies ready, and returns it. */
async function serviceOf(namespace: string, gatewayName: string, ready: (service: Json) => boolean = () => true): Promise<Json> {
  const name = `${gatewayName}-istio`;
  const deadline = Date.now() + SERVICE_WAIT_MS;
  let last: Json | undefined;
  while (Date.now() < deadline) {
    last = await k.get('service', name, namespace);
    if (last !== undefined && ready(last)) return last;
    await sleep(250);
  }
  throw new Error(
    `service ${namespace}/${name} not as expected after ${SERVICE_WAIT_MS} ms; last seen annotations: ${JSON.stringify(last?.metadata?.annotations)}\n` +
      `istiod log (${istiod?.logFile}):\n${istiodLogTail()}`,
  );
}

/** reconciles counts istiod's log lines saying it applied a Gateway's resources (`gateway updated`, with the Gateway as namespace/name). */
function reconciles(namespace: string, gatewayName: string): number {
  if (istiod === undefined) return 0;
  const ref = `gateway=${namespace}/${gatewayName}`;
  return readFileSync(istiod.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('gateway updated') && line.includes(ref)).length;
}

const has = (expected: Record<string, string>) => (service: Json) => Object.entries(expected).every(([key, value]) => service.metadata.annotations?.[key] === value);

/** idleResourceVersions reads the Services' resourceVersions, waits IDLE_MS, and reads them again. */
async function idleResourceVersions(namespace: string, names: readonly string[]): Promise<{ before: string[]; after: string[] }> {
  const read = () => Promise.all(names.map(async (name) => ((await k.get('service', name, namespace))?.metadata.resourceVersion as string | undefined) ?? 'missing'));
  const before = await read();
  await sleep(IDLE_MS);
  return { before, after: await read() };
}

/** annotationOwners returns, per field manager of a Service, the annotation keys it owns. */
async function annotationOwners(namespace: string, name: string): Promise<Record<string, string[]>> {
  const result = await k.kubectl(['get', 'service', name, '-n', namespace, '-o', 'json', '--show-managed-fields']);
  const managed = (JSON.parse(result.stdout) as Json).metadata.managedFields as { manager: string; fieldsV1?: Json }[];
  return Object.fromEntries(
    managed.map((m) => [m.manager, Object.keys(m.fieldsV1?.['f:metadata']?.['f:annotations'] ?? {}).map((key) => key.replace(/^f:/, ''))]),
  );
}

const TCP_PROBES = { [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' };

beforeAll(async () => {
  // npm test builds istiod before vitest starts (npm run istiod); run alone on a cold machine, this builds it.
  const toolchain = ensureIstiod();
  writeFileSync(policyFile, POLICY);
  await installIstioPrerequisites(k.kubectl, toolchain);
  istiod = await startIstiod({ kubeconfig: env.KUBECONFIG, toolchain });
  webhook = await startWebhook(POLICY);
  for (const namespace of [TCP, READINESS, DOWN]) await ensureNamespace(k.kubectl, namespace, { 'lb-probe-webhook/enabled': 'true' });
  registration = await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: 'lbp-e2e-istio' });
  for (const namespace of [TCP, READINESS, DOWN]) await waitUntilMutating(k.kubectl, namespace);
}, 60 * 60_000);

afterAll(async () => {
  if (registration !== undefined) await unregisterWebhook(k.kubectl, registration);
  await webhook?.stop();
  await istiod?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a Gateway of class istio with HTTP, HTTPS and TLS listeners and no annotations', () => {
  it('with a tcp policy, istiod generates its Service with a TCP probe on the HTTP and HTTPS ports and none on the TLS and status ports', async () => {
    await k.apply(gateway('gateway-plain.yaml', TCP, 'plain'));
    const service = await serviceOf(TCP, 'plain', has(TCP_PROBES));
    expect(azureAnnotations(service)).toEqual(TCP_PROBES);
    // The keys reached the Service through the Gateway: istiod copied them and owns them.
    expect((await annotationOwners(TCP, 'plain-istio'))[ISTIO_MANAGER]).toEqual(expect.arrayContaining(Object.keys(TCP_PROBES)));
  });

  it('the Service istiod generates has the ports the webhook predicted from the listeners, and the shape of the fixture the other e2e files use', async () => {
    const service = await serviceOf(TCP, 'plain');
    expect(portsOf(service).map((p) => [p.name, p.port, p.protocol, p.appProtocol])).toEqual([
      ['status-port', 15021, 'TCP', 'tcp'],
      ['http', 80, 'TCP', 'http'],
      ['https', 443, 'TCP', 'https'],
      ['mesh-tls', 15443, 'TCP', 'tls'],
    ]);
    const imitation: Json = fixture('istio-gateway-service.yaml');
    expect(service.spec).toMatchObject({ type: imitation.spec.type, ipFamilyPolicy: imitation.spec.ipFamilyPolicy, selector: { 'gateway.networking.k8s.io/gateway-name': 'plain' } });
    expect(portsOf(service).slice(0, 3).map((p) => ({ name: p.name, port: p.port, protocol: p.protocol, appProtocol: p.appProtocol }))).toEqual(imitation.spec.ports);
    expect(service.metadata.labels).toMatchObject({ ...imitation.metadata.labels, 'gateway.networking.k8s.io/gateway-name': 'plain' });
    expect(service.metadata.ownerReferences).toMatchObject([{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'plain' }]);
  });

  it('with a readiness policy, istiod generates its Service with an HTTP probe of status-port /healthz/ready on the HTTP and HTTPS ports', async () => {
    await k.apply(gateway('gateway-plain.yaml', READINESS, 'ready'));
    const expected = Object.fromEntries(
      [80, 443].flatMap((port) => [
        [`${AZ}port_${port}_health-probe_protocol`, 'http'],
        [`${AZ}port_${port}_health-probe_port`, 'status-port'],
        [`${AZ}port_${port}_health-probe_request-path`, '/healthz/ready'],
      ]),
    );
    const service = await serviceOf(READINESS, 'ready', has(expected));
    expect(azureAnnotations(service)).toEqual(expected);
  });
});

describe('annotations the user set on the Gateway', () => {
  it('a Gateway with spec.infrastructure.annotations: its Service keeps the user’s annotation beside the probe', async () => {
    await k.apply(gateway('gateway-infrastructure.yaml', TCP, 'infra'));
    const probe = { [`${AZ}port_80_health-probe_protocol`]: 'tcp' };
    const service = await serviceOf(TCP, 'infra', has(probe));
    expect(azureAnnotations(service)).toEqual({ [`${AZ}azure-dns-label-name`]: 'shop', ...probe });
    const stored = await k.get('gateway', 'infra', TCP);
    expect(stored?.spec.infrastructure.annotations).toEqual({ [`${AZ}azure-dns-label-name`]: 'shop', ...probe });
    expect(stored?.metadata.annotations['example.com/owner']).toBe('platform');
  });

  it('a Gateway relying on metadata.annotations: its Service keeps azure-load-balancer-internal beside the probe', async () => {
    await k.apply(gateway('gateway-azure-internal.yaml', TCP, 'internal'));
    const probe = { [`${AZ}port_80_health-probe_protocol`]: 'tcp' };
    const service = await serviceOf(TCP, 'internal', has(probe));
    expect(azureAnnotations(service)).toEqual({ [`${AZ}azure-load-balancer-internal`]: 'true', ...probe });
    expect((await k.get('gateway', 'internal', TCP))?.spec.infrastructure).toBeUndefined();
  });
});

describe('istiod reconciles: the annotations come back and stay, with no fight over the Service', () => {
  it('the Gateway edited (a listener added): the Service gets the new port with its probe, keeps the others, then stays still for 10 s', async () => {
    const edited = gateway('gateway-plain.yaml', TCP, 'plain');
    edited.spec.listeners.push({ name: 'http-alt', port: 8080, protocol: 'HTTP' });
    await k.apply(edited);
    const expected = { ...TCP_PROBES, [`${AZ}port_8080_health-probe_protocol`]: 'tcp' };
    const service = await serviceOf(TCP, 'plain', (s) => portsOf(s).some((p) => p.port === 8080) && has(expected)(s));
    expect(azureAnnotations(service)).toEqual(expected);
    const { before, after } = await idleResourceVersions(TCP, ['plain-istio']);
    expect(after).toEqual(before);
  }, 120_000);

  it('a probe annotation removed from the Service by hand is back, then the Service stays still for 10 s', async () => {
    const key = `${AZ}port_80_health-probe_protocol`;
    const removed = await k.kubectl(['annotate', 'service', 'plain-istio', '-n', TCP, `${key}-`]);
    expect(removed.code).toBe(0);
    const service = await serviceOf(TCP, 'plain', has({ [key]: 'tcp' }));
    expect(service.metadata.annotations[key]).toBe('tcp');
    const { before, after } = await idleResourceVersions(TCP, ['plain-istio']);
    expect(after).toEqual(before);
  }, 120_000);

  it('the Service replaced with kubectl replace without its probe annotations has them back, then stays still for 10 s', async () => {
    const current = (await k.get('service', 'plain-istio', TCP)) as Json;
    const replacement: Json = { ...current, metadata: { ...current.metadata, annotations: Object.fromEntries(Object.entries(current.metadata.annotations as Record<string, string>).filter(([key]) => !key.startsWith(AZ))) } };
    delete replacement.metadata.managedFields;
    delete replacement.status;
    const replaced = await k.kubectl(['replace', '-f', '-'], JSON.stringify(replacement));
    expect(replaced.code, replaced.stderr).toBe(0);
    const expected = { ...TCP_PROBES, [`${AZ}port_8080_health-probe_protocol`]: 'tcp' };
    const service = await serviceOf(TCP, 'plain', has(expected));
    expect(azureAnnotations(service)).toEqual(expected);
    const { before, after } = await idleResourceVersions(TCP, ['plain-istio']);
    expect(after).toEqual(before);
  }, 120_000);

  it('istiod restarted: every Service still has its annotations, and none changes for 10 s', async () => {
    const names = ['plain', 'infra', 'internal'];
    const applied = names.map((name) => reconciles(TCP, name));
    await istiod?.restart();
    // The restarted istiod re-applies every Gateway's resources; the checks start after it did.
    const deadline = Date.now() + SERVICE_WAIT_MS;
    while (names.some((name, i) => reconciles(TCP, name) <= (applied[i] ?? 0)) && Date.now() < deadline) await sleep(250);
    expect(names.map((name, i) => reconciles(TCP, name) > (applied[i] ?? 0)), `istiod log (${istiod?.logFile}):\n${istiodLogTail()}`).toEqual([true, true, true]);
    const plain = await serviceOf(TCP, 'plain', has(TCP_PROBES));
    const infra = await serviceOf(TCP, 'infra', has({ [`${AZ}azure-dns-label-name`]: 'shop', [`${AZ}port_80_health-probe_protocol`]: 'tcp' }));
    const internal = await serviceOf(TCP, 'internal', has({ [`${AZ}azure-load-balancer-internal`]: 'true', [`${AZ}port_80_health-probe_protocol`]: 'tcp' }));
    expect([plain, infra, internal].map((s) => Object.keys(azureAnnotations(s)).length)).toEqual([3, 2, 2]);
    const { before, after } = await idleResourceVersions(TCP, ['plain-istio', 'infra-istio', 'internal-istio']);
    expect(after).toEqual(before);
  }, 120_000);
});

describe('with the webhook down (failurePolicy Ignore, as the manifests register it)', () => {
  it('a Gateway and the Service istiod generates for it are admitted, without probe annotations', async () => {
    const config = JSON.parse((await k.kubectl(['get', 'mutatingwebhookconfiguration', registration ?? '', '-o', 'json'])).stdout) as Json;
    expect((config.webhooks as { failurePolicy: string }[]).map((w) => w.failurePolicy)).toEqual(['Ignore']);
    expect(await webhook?.stop()).toBe(0);
    webhook = undefined;

    const created = await k.kubectl(['create', '-f', '-'], JSON.stringify(gateway('gateway-plain.yaml', DOWN, 'down')));
    expect(created.code, created.stderr).toBe(0);
    const service = await serviceOf(DOWN, 'down');
    expect(azureAnnotations(service)).toEqual({});
    expect(azureAnnotations(await k.get('gateway', 'down', DOWN))).toEqual({});
  });

  it('audit lists both; once the webhook is back, audit --fix heals them, istiod keeps the result, and audit then reports nothing to change', async () => {
    const listed = await runCli(['audit', '--policy', policyFile, '-n', DOWN], '', env);
    expect(listed.code).toBe(1);
    const rows = listed.stdout.trim().split('\n').slice(1, -1).map((r) => r.split(/\s+/).slice(0, 4).join(' '));
    expect(new Set(rows)).toEqual(new Set([`${DOWN} Service down-istio metadata`, `${DOWN} Gateway down metadata`]));

    webhook = await startWebhook(POLICY);
    await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: registration ?? '' });
    await waitUntilMutating(k.kubectl, DOWN);

    const fixed = await runCli(['audit', '--policy', policyFile, '--fix', '-n', DOWN], '', env);
    expect(fixed.code, fixed.stderr).toBe(0);
    // istiod applied `annotations: {}` to the Service (nothing to copy from the Gateway), so it owns
    // the empty map as a whole; audit must still add its keys there, replacing nothing.
    expect(fixed.stdout.trim().split('\n').at(-1)).toBe('fixed 2 of 2 to change (2 objects scanned)');
    expect(azureAnnotations(await k.get('gateway', 'down', DOWN))).toEqual(TCP_PROBES);
    await serviceOf(DOWN, 'down', has(TCP_PROBES));
    // istiod now applies the keys it copies from the Gateway: it must own them and keep the Service still.
    await sleep(2000);
    expect((await annotationOwners(DOWN, 'down-istio'))[ISTIO_MANAGER]).toEqual(expect.arrayContaining(Object.keys(TCP_PROBES)));
    const { before, after } = await idleResourceVersions(DOWN, ['down-istio']);
    expect(after).toEqual(before);

    const again = await runCli(['audit', '--policy', policyFile, '-n', DOWN], '', env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^nothing to change in \d+ objects\n$/);
  }, 120_000);
});

describe('with gateway.annotationsTarget: infrastructure', () => {
  it('a Gateway relying on metadata.annotations gets an infrastructure map that carries them: its Service keeps azure-load-balancer-internal beside the probe', async () => {
    await webhook?.stop();
    webhook = await startWebhook(`${POLICY}gateway:\n  annotationsTarget: infrastructure\n`);
    await registerWebhook(k.kubectl, k.binDir, 'opt-in', { url: webhook.url, caBundle: webhook.caBundle, name: registration ?? '' });
    await waitUntilMutating(k.kubectl, TCP);

    await k.apply(gateway('gateway-azure-internal.yaml', TCP, 'internal-infra'));
    const expected = { [`${AZ}azure-load-balancer-internal`]: 'true', [`${AZ}port_80_health-probe_protocol`]: 'tcp' };
    expect((await k.get('gateway', 'internal-infra', TCP))?.spec.infrastructure.annotations).toEqual(expected);
    const service = await serviceOf(TCP, 'internal-infra', has(expected));
    expect(azureAnnotations(service)).toEqual(expected);
  });
});

const policyApi = admissionPolicyApiVersion(inject('controlPlane').version);

describe.skipIf(policyApi === undefined)('with the compiled admission policy instead of the webhook (where the API server serves MutatingAdmissionPolicy)', () => {
  const namespace = 'istio-admission-policy';
  const label = 'lbp-e2e/admission-policy';
  let created: string[] = [];

  beforeAll(async () => {
    // A namespace the webhook does not act in (no lb-probe-webhook/enabled label): only the policy does.
    await ensureNamespace(k.kubectl, namespace, { [label]: 'true' });
    const exported = await runCli(['export', 'admission-policy', '--policy', policyFile, '--api-version', policyApi ?? 'v1', '--name', 'lbp-e2e-istio-policy']);
    expect(exported.code, exported.stderr).toBe(0);
    const objects = parseAllDocuments(exported.stdout).map((d) => d.toJS() as Json);
    for (const object of objects) if (object.kind === 'MutatingAdmissionPolicyBinding') object.spec.matchResources = { namespaceSelector: { matchLabels: { [label]: 'true' } } };
    const applied = await k.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    expect(applied.code, applied.stderr).toBe(0);
    created = objects.map((o) => `${String(o.kind).toLowerCase()}/${String(o.metadata.name)}`);
    // The policy reaches the admission chain a moment after it is created; a dry run shows when.
    await waitUntilMutating(k.kubectl, namespace);
  });
  afterAll(async () => {
    for (const ref of created) await k.kubectl(['delete', ref, '--ignore-not-found']);
  });

  it('a Gateway of class istio: istiod generates its Service, which gets its TCP probes from the policy alone and stays still for 10 s', async () => {
    await k.apply(gateway('gateway-plain.yaml', namespace, 'by-policy'));
    expect(azureAnnotations(await k.get('gateway', 'by-policy', namespace))).toEqual(TCP_PROBES);
    const service = await serviceOf(namespace, 'by-policy', has(TCP_PROBES));
    expect(azureAnnotations(service)).toEqual(TCP_PROBES);
    expect(webhook?.reviews('by-policy') ?? []).toEqual([]);
    const { before, after } = await idleResourceVersions(namespace, ['by-policy-istio']);
    expect(after).toEqual(before);
  }, 180_000);

  it('a probe annotation removed from the Service by hand is back, from istiod and the policy, then the Service stays still for 10 s', async () => {
    const key = `${AZ}port_80_health-probe_protocol`;
    const removed = await k.kubectl(['annotate', 'service', 'by-policy-istio', '-n', namespace, `${key}-`]);
    expect(removed.code).toBe(0);
    const service = await serviceOf(namespace, 'by-policy', has({ [key]: 'tcp' }));
    expect(azureAnnotations(service)).toEqual(TCP_PROBES);
    const { before, after } = await idleResourceVersions(namespace, ['by-policy-istio']);
    expect(after).toEqual(before);
  }, 120_000);
});
