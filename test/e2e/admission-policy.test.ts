/**
 * The compiled MutatingAdmissionPolicy against the webhook, on real API servers: 1.37.2, where
 * the API is GA (v1), and the suite's 1.35.4 with the beta served (v1beta1). Every object is
 * stored by server-side dry run once through the policy alone and once through the webhook alone;
 * the two must be the same object, with the annotations render writes.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { fixtureObjects, objectArb, policyArb, docPolicies } from '../support/admission-corpus.js';
import type { JsonObject } from '../../src/core/json.js';
import { decide } from '../../src/decision/decide.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { startControlPlane, type ControlPlane } from '../support/controlplane.js';
import { describeDifference, startDifferential, type Differential } from '../support/differential.js';

/** SEED makes the generated corpus the same on every run; LBP_DIFF_SEED tries another. */
const SEED = Number(process.env['LBP_DIFF_SEED'] ?? 1616);
/** RUNS policies of OBJECTS objects each: 2,000 generated cases per API server. */
const RUNS = Number(process.env['LBP_DIFF_RUNS'] ?? 100);
const OBJECTS = 20;

interface Target {
  readonly title: string;
  readonly apiVersion: 'v1' | 'v1beta1';
  /** start returns the control plane's kubeconfig and binaries, and a stop function. */
  start(): Promise<{ kubeconfig: string; binDir: string; stop(): Promise<void> }>;
}

const TARGETS: readonly Target[] = [
  {
    title: 'Kubernetes v1.37.2, MutatingAdmissionPolicy v1',
    apiVersion: 'v1',
    async start() {
      const controlPlane: ControlPlane = await startControlPlane({ version: 'v1.37.2' });
      return { kubeconfig: controlPlane.kubeconfig, binDir: controlPlane.binDir, stop: () => controlPlane.stop() };
    },
  },
  {
    title: 'Kubernetes v1.35.4 (the suite\'s control plane) with the beta enabled, MutatingAdmissionPolicy v1beta1',
    apiVersion: 'v1beta1',
    start() {
      const info = inject('controlPlane');
      return Promise.resolve({ kubeconfig: info.kubeconfig, binDir: info.binDir, stop: () => Promise.resolve() });
    },
  },
];

function failIfAny(differences: readonly { name: string }[], describe: (d: any) => string): void {
  if (differences.length > 0) throw new Error(`${differences.length} differences:\n${differences.map(describe).join('\n')}`);
}

/** manyPorts is a LoadBalancer Service with status-port and n http ports (no node ports: thousands would exhaust their range). */
function manyPorts(n: number, annotations: Record<string, string> = {}): JsonObject {
  const ports = [{ name: 'status-port', port: 15021, appProtocol: 'tcp' }, ...Array.from({ length: n }, (_, i) => ({ name: `h${i}`, port: 16000 + i, appProtocol: 'http' }))];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'x', namespace: 'istio-ingress', labels: { istio: 'ingressgateway' }, annotations },
    spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, selector: { app: 'x' }, ports },
  };
}

/** largestFitting finds the most http ports whose readiness annotations the webhook still writes under the 256 KiB limit. */
function largestFitting(policyText: string): number {
  const policy = parsePolicy(policyText);
  let n = 1;
  while (decide({ object: manyPorts(n + 1), operation: 'CREATE', policy }).outcome === 'patched') n++;
  return n;
}

/** onEach runs the check on every target at once (two API servers, two webhooks), and fails with every target's failure, named. */
async function onEach(running: readonly Running[], check: (r: Running) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(running.map(check));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${running[i]?.target.title}: ${(r.reason as Error).message}`] : []));
  if (failures.length > 0) throw new Error(failures.join('\n\n'));
}

interface Running {
  readonly target: Target;
  readonly differential: Differential;
  readonly stop: () => Promise<void>;
}

describe(`on ${TARGETS.map((t) => t.title).join(', and on ')}, at once`, () => {
  const running: Running[] = [];

  beforeAll(async () => {
    for (const target of TARGETS) {
      const started = await target.start();
      const differential = await startDifferential({ kubeconfig: started.kubeconfig, binDir: started.binDir, apiVersion: target.apiVersion });
      running.push({ target, differential, stop: () => started.stop() });
    }
  }, 300_000);
  afterAll(async () => {
    for (const { target, differential, stop } of running) {
      const counts = differential.counts;
      console.log(
        `admission-policy differential (${target.title}): ${counts.runs} policies, ${counts.cases} cases, ${counts.changed} changed, ${counts.refused} refused by the API server` +
          (counts.refusals.length > 0 ? `, such as:\n  ${counts.refusals.join('\n  ')}` : ''),
      );
      await differential.stop();
      await stop();
    }
  });

  it('stores every fixture, under every policy the README and docs/ show, the same through the compiled policy as through the webhook, with the annotations render writes', async () => {
    const policies = docPolicies();
    expect(policies.length).toBeGreaterThanOrEqual(3);
    const objects = fixtureObjects();
    await onEach(running, async ({ differential }) => {
      for (const { name, text } of policies) {
        const differences = await differential.compare(text, objects);
        failIfAny(differences.map((d) => ({ ...d, name: `${name}: ${d.name}` })), describeDifference);
      }
    });
  }, 600_000);

  it(`stores ${RUNS * OBJECTS} generated objects under ${RUNS} generated policies the same both ways, on each API server (fast-check, seed ${SEED})`, async () => {
    await onEach(running, ({ differential }) =>
      fc.assert(
        fc.asyncProperty(policyArb, fc.array(objectArb, { minLength: OBJECTS, maxLength: OBJECTS }), async (settings, objects) => {
          const differences = await differential.compare(
            stringify(settings),
            objects.map((object, i) => ({ name: `object ${i}`, object })),
          );
          failIfAny(differences, describeDifference);
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: false },
      ),
    );
  }, 3_600_000);

  it('stores the largest objects the same both ways on v1.37.2, the policy never failing on its cost budget: 4,096 http ports annotated and 4,097 left alone; three custom templates over 4,096 ports; readiness probes up to the last port that fits in 256 KiB and one port more; 20,000 http ports left alone', async () => {
    const { differential } = running[0] as Running;
    const readiness = 'provider: azure\nprobe: readiness\n';
    const fitting = largestFitting(readiness);
    const custom = 'provider: custom\ncustom:\n  tcp:\n    perPort: { "a/{port}": "", "b/{port}": "", "c/{port}": "" }\n';
    const before = { ...differential.counts };
    for (const [policyText, objects] of [
      // 20,000 ports: the review the webhook gets (object and managedFields) stays under its 7 MiB body limit.
      ['provider: azure\n', [manyPorts(4096), manyPorts(4097), manyPorts(20_000)]],
      [custom, [manyPorts(4096)]],
      [readiness, [manyPorts(fitting), manyPorts(fitting + 1)]],
    ] as const) {
      // The harness binds the policy with failurePolicy Fail: a CEL evaluation error, the cost budget's included, would show as a refusal.
      const differences = await differential.compare(policyText, objects.map((object) => ({ name: `${(object.spec as { ports: unknown[] }).ports.length - 1} http ports`, object })));
      failIfAny(differences, describeDifference);
    }
    expect({ changed: differential.counts.changed - before.changed, refused: differential.counts.refused - before.refused }).toEqual({ changed: 3, refused: 0 });
  }, 600_000);
});
