/** Test-side access to the control plane that the e2e project's global setup (test/e2e/global-setup.ts) started and provided. */
import { inject } from 'vitest';
import { kubectlRunner, type Kubectl } from './controlplane.js';

/** Cluster is the shared control plane as a test sees it. */
export interface Cluster {
  readonly binDir: string;
  readonly kubectl: Kubectl;
  /** get returns an object as JSON, or undefined when it does not exist. */
  get(kind: string, name: string, namespace?: string): Promise<Record<string, any> | undefined>;
  /** apply applies objects with `kubectl apply` and returns kubectl's output, throwing on failure. */
  apply(objects: unknown, ...flags: string[]): Promise<{ stdout: string; stderr: string }>;
}

/** cluster returns the shared control plane. */
export function cluster(): Cluster {
  const info = inject('controlPlane');
  const kubectl = kubectlRunner(info.binDir, info.kubeconfig);
  return {
    binDir: info.binDir,
    kubectl,
    async get(kind, name, namespace) {
      const result = await kubectl(['get', kind, name, '-o', 'json', ...(namespace ? ['-n', namespace] : [])]);
      if (result.code !== 0) {
        if (/NotFound|not found/.test(result.stderr)) return undefined;
        throw new Error(result.stderr);
      }
      return JSON.parse(result.stdout) as Record<string, any>;
    },
    async apply(objects, ...flags) {
      const list = Array.isArray(objects) ? { apiVersion: 'v1', kind: 'List', items: objects } : objects;
      const result = await kubectl(['apply', ...flags, '-f', '-'], JSON.stringify(list));
      if (result.code !== 0) throw new Error(`kubectl apply: ${result.stderr}`);
      return result;
    },
  };
}
