/**
 * Vitest global setup for the e2e project: one real control plane for the run, stopped at the end
 * (and by the harness's exit hooks when the run is interrupted).
 */
import type { TestProject } from 'vitest/node';
import { admissionPolicyApiVersion, DEFAULT_K8S_VERSION, MUTATING_ADMISSION_POLICY_BETA, startControlPlane, type ControlPlaneInfo } from '../support/controlplane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
    /** kubernetesVersion is the version a project runs its control plane at (the suite's default when absent). */
    kubernetesVersion: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  // The project's version (the suite's by default), with MutatingAdmissionPolicy's beta API served
  // where it is one (admission-policy.test.ts runs v1beta1 on the suite's 1.35.4).
  const version = project.config.provide?.kubernetesVersion ?? DEFAULT_K8S_VERSION;
  const beta = admissionPolicyApiVersion(version) === 'v1beta1';
  const controlPlane = await startControlPlane({ version, apiserverArgs: beta ? MUTATING_ADMISSION_POLICY_BETA : [] });
  console.log(`e2e: kube-apiserver ${version} ${controlPlane.server} ready in ${Date.now() - started} ms`);
  project.provide('controlPlane', { dir: controlPlane.dir, kubeconfig: controlPlane.kubeconfig, server: controlPlane.server, binDir: controlPlane.binDir, version: controlPlane.version });
  return () => controlPlane.stop();
}
