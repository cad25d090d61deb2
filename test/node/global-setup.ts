/**
 * Vitest global setup for the node project: the webhook's image built from the Dockerfile, a real
 * node (test/support/node.ts) with that image loaded into its container runtime, and the real istiod.
 * Everything is stopped at the end, and the host is checked to be as it was.
 */
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { tempDir } from '../support/controlplane.js';
import { buildImage, removeImage, type BuiltImage } from '../support/image.js';
import { startNode } from '../support/node.js';

/** NodeInfo is what the node tests need to reach the cluster and the image. */
export interface NodeInfo {
  readonly kubeconfig: string;
  readonly server: string;
  readonly binDir: string;
  readonly dir: string;
  readonly controlPlaneDir: string;
  readonly image: BuiltImage;
  readonly timings: Readonly<Record<string, number>>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    node: NodeInfo;
  }
}

/** IMAGE_REPOSITORY names the image under test; the chart is installed with image.tag set to this run's tag. */
export const IMAGE_REPOSITORY = 'lb-probe-webhook';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) throw new Error('the node tests need root: a kubelet and containerd mount, set cgroups, sysctls and iptables (docs/development.md, "The real node")');
  const work = tempDir('lbp-node-image-');
  // A tag of this run's own: another checkout building into the same store at the same time cannot move it.
  const image = buildImage(IMAGE_REPOSITORY, `test-${process.pid}-${Date.now().toString(36)}`, join(work, 'image.tar'));
  console.log(`node: image ${image.name} built in ${image.seconds.toFixed(1)} s, ${(image.bytes / 1e6).toFixed(0)} MB (base ${(image.baseBytes / 1e6).toFixed(0)} MB)`);
  const started = Date.now();
  const node = await startNode({ images: [image.archive] });
  const nodeSeconds = (Date.now() - started) / 1000;
  console.log(`node: Ready in ${nodeSeconds.toFixed(1)} s (control plane, containerd, kubelet, controller-manager, scheduler, kube-proxy)`);
  project.provide('node', {
    kubeconfig: node.controlPlane.kubeconfig,
    server: node.controlPlane.server,
    binDir: node.controlPlane.binDir,
    dir: node.dir,
    controlPlaneDir: node.controlPlane.dir,
    image,
    timings: { imageSeconds: image.seconds, nodeSeconds },
  });
  return async () => {
    try {
      await node.stop();
    } finally {
      removeImage(image.name);
    }
  };
}
