/**
 * Vitest global setup for the e2e project: one real control plane for the run, stopped at the end
 * (and by the harness's exit hooks when the run is interrupted).
 */
import type { TestProject } from 'vitest/node';
import { MUTATING_ADMISSION_POLICY_BETA, startControlPlane, type ControlPlaneInfo } from '../support/controlplane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  // The suite's version, with MutatingAdmissionPolicy's beta API served (admission-policy.test.ts runs v1beta1 on it).
  const controlPlane = await startControlPlane({ apiserverArgs: MUTATING_ADMISSION_POLICY_BETA });
  console.log(`e2e: kube-apiserver ${controlPlane.server} ready in ${Date.now() - started} ms`);
  project.provide('controlPlane', { dir: controlPlane.dir, kubeconfig: controlPlane.kubeconfig, server: controlPlane.server, binDir: controlPlane.binDir, version: controlPlane.version });
  return () => controlPlane.stop();
}
