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
import { fixtureObjects, objectArb, policyArb, readmePolicies } from '../support/admission-corpus.js';
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

  it('stores every fixture, under every policy the README shows, the same through the compiled policy as through the webhook, with the annotations render writes', async () => {
    const policies = readmePolicies();
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
});
