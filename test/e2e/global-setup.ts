/**
 * Vitest global setup for the e2e project: one real control plane for the run, stopped at the end
 * (and by the harness's exit hooks when the run is interrupted).
 */
import type { TestProject } from 'vitest/node';
import { startControlPlane, type ControlPlaneInfo } from '../support/controlplane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const controlPlane = await startControlPlane();
  console.log(`e2e: kube-apiserver ${controlPlane.server} ready in ${Date.now() - started} ms`);
  project.provide('controlPlane', { dir: controlPlane.dir, kubeconfig: controlPlane.kubeconfig, server: controlPlane.server, binDir: controlPlane.binDir });
  return () => controlPlane.stop();
}
