/**
 * The chart as users install it, on a real node: `helm install` with default values but the image
 * tag, the image built from the Dockerfile, Pods started by the kubelet under real cgroups, the API
 * server calling them through their Service (kube-proxy's rules). Nothing here runs `serve` on the
 * host.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MAX_HEAP_BYTES, SERVE_NODE_FLAGS } from '../../src/runtime/memory.js';
import { waitFor } from '../support/controlplane.js';
import { ensureIstiod, installIstioPrerequisites, startIstiod, type Istiod } from '../support/istiod.js';
import { installChart, NAMESPACE, nodeCluster, uninstallChart, waitMutating, waitReady, webhookPods, type WebhookPod } from '../support/nodecluster.js';

const node = nodeCluster();
const PROBE = 'service.beta.kubernetes.io/port_80_health-probe_protocol';
const PROBE_443 = 'service.beta.kubernetes.io/port_443_health-probe_protocol';
let installSeconds = 0;
let pods: WebhookPod[] = [];

/** inside runs a Node.js program in a webhook Pod (the image has no shell) and parses what it prints as JSON. */
async function inside(pod: string, program: string): Promise<any> {
  return JSON.parse(await node.run(['exec', '-n', NAMESPACE, pod, '-c', 'webhook', '--', '/nodejs/bin/node', '-e', program]));
}

beforeAll(async () => {
  installSeconds = await installChart(node);
  console.log(`node: helm install --wait took ${installSeconds.toFixed(1)} s`);
  pods = await waitReady(node);
  await node.run(['create', 'namespace', 'apps']);
  await node.run(['label', 'namespace', 'apps', 'lb-probe-webhook/enabled=true']);
  await waitMutating(node, 'apps');
});

afterAll(async () => {
  await node.kubectl(['delete', 'namespace', 'apps', '--wait=false']);
  await uninstallChart(node);
});

describe('helm install with default values and the image built from the Dockerfile', () => {
  it('runs two webhook Pods of the image, Ready, with no restart', () => {
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(pod).toMatchObject({ ready: true, restarts: 0, image: `${node.image.repository}:${node.image.tag}` });
    }
  });

  it('stores a LoadBalancer Service created in an opted-in namespace with the policy annotations, written by a webhook Pod', async () => {
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'apps' },
      spec: { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, appProtocol: 'http' }, { name: 'https', port: 443, appProtocol: 'https' }] },
    };
    await node.run(['create', '-f', '-'], JSON.stringify(service));
    const stored = await node.json(['get', 'service', 'web', '-n', 'apps']);
    expect(stored.metadata.annotations).toMatchObject({ [PROBE]: 'tcp', [PROBE_443]: 'tcp' });
    // The review line of one of the Pods names it: the API server's call went through the Service to a Pod.
    await waitFor('a webhook Pod logs its review of apps/web', 30_000, async () => {
      const logs = await Promise.all(pods.map((p) => node.run(['logs', '-n', NAMESPACE, p.name])));
      return logs.some((log) => log.split('\n').some((line) => line.includes('"namespace":"apps"') && line.includes('"name":"web"') && line.includes('"decision":"patched"')));
    });
  });

  it('leaves a LoadBalancer Service in a namespace that has not opted in as it is', async () => {
    await node.run(['create', 'namespace', 'not-opted-in']);
    await node.run(['create', 'service', 'loadbalancer', 'plain', '--tcp=80:8080', '-n', 'not-opted-in']);
    await node.run(['patch', 'service', 'plain', '-n', 'not-opted-in', '--type=json', '-p', '[{"op":"add","path":"/spec/ports/0/appProtocol","value":"http"}]']);
    const stored = await node.json(['get', 'service', 'plain', '-n', 'not-opted-in']);
    expect(stored.metadata.annotations?.[PROBE]).toBeUndefined();
    await node.kubectl(['delete', 'namespace', 'not-opted-in', '--wait=false']);
  });
});

describe('the Pod, seen from inside it', () => {
  const program = `
    const fs = require('node:fs');
    const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\\n').filter(Boolean).map((l) => l.split(':\\t')));
    let write = 'written';
    try { fs.writeFileSync('/probe', 'x'); } catch (e) { write = e.code; }
    let tmp = 'written';
    try { fs.writeFileSync('/tmp/probe', 'x'); } catch (e) { tmp = e.code; }
    const cgroup = (f) => { try { return fs.readFileSync('/sys/fs/cgroup/memory/' + f, 'utf8').trim(); } catch (e) { return e.code; } };
    console.log(JSON.stringify({
      uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
      capEff: status.CapEff, capPrm: status.CapPrm, capBnd: status.CapBnd, noNewPrivs: status.NoNewPrivs, seccomp: status.Seccomp,
      rootWrite: write, tmpWrite: tmp, memoryLimit: cgroup('memory.limit_in_bytes'),
      serveArgv: fs.readFileSync('/proc/1/cmdline', 'utf8').split('\\0').filter(Boolean),
      devDependencies: ['typescript', 'vitest', 'eslint', 'fast-check'].filter((d) => fs.existsSync('/app/node_modules/' + d)),
    }));`;
  let seen: any;
  beforeAll(async () => {
    seen = await inside(pods[0]!.name, program);
    console.log(`node: inside ${pods[0]!.name}: ${JSON.stringify(seen)}`);
  });

  it('runs as uid and gid 65532, not root', () => {
    expect(seen).toMatchObject({ uid: 65532, gid: 65532 });
  });

  it('has no capability, effective, permitted or bounding, and no way to gain privileges', () => {
    expect(seen).toMatchObject({ capEff: '0000000000000000', capPrm: '0000000000000000', capBnd: '0000000000000000', noNewPrivs: '1' });
  });

  it('runs under a seccomp filter (RuntimeDefault)', () => {
    expect(seen.seccomp).toBe('2');
  });

  it('cannot write its root filesystem, not even /tmp', () => {
    expect(seen).toMatchObject({ rootWrite: 'EROFS', tmpWrite: 'EROFS' });
  });

  it('lives in a memory cgroup limited to the chart default of 192Mi, and its serving process (PID 1) runs with the V8 flags that cap its heap far below it', () => {
    expect(seen.memoryLimit).toBe(String(192 * 2 ** 20));
    // serve replaces itself (execve, same PID 1) with these flags when started without them, and
    // refuses to run when V8 then reports a heap limit above MAX_HEAP_BYTES.
    expect(seen.serveArgv.slice(0, 1 + SERVE_NODE_FLAGS.length)).toEqual(['/nodejs/bin/node', ...SERVE_NODE_FLAGS]);
    expect(seen.serveArgv.slice(1 + SERVE_NODE_FLAGS.length, 3 + SERVE_NODE_FLAGS.length)).toEqual(['/app/dist/cli/main.js', 'serve']);
    expect(MAX_HEAP_BYTES).toBeLessThan(160 * 2 ** 20);
  });

  it('carries no development dependency in the image', () => {
    expect(seen.devDependencies).toEqual([]);
  });
});

describe('the image', () => {
  const image = inject('node').image;

  it('runs as 65532:65532 with the CLI as its entry point and serve as its default command', () => {
    expect(image.config.User).toBe('65532:65532');
    expect(image.config.Entrypoint).toEqual(['/nodejs/bin/node', '/app/dist/cli/main.js']);
    expect(image.config.Cmd?.[0]).toBe('serve');
  });

  it('adds at most 60 MB to its distroless-layout base: dist/ and the production dependencies, without type declarations or source maps', () => {
    console.log(`node: image ${(image.bytes / 1e6).toFixed(0)} MB, base ${(image.baseBytes / 1e6).toFixed(0)} MB, the webhook ${((image.bytes - image.baseBytes) / 1e6).toFixed(0)} MB`);
    expect(image.bytes - image.baseBytes).toBeLessThanOrEqual(60e6);
  });
});

describe('with the real istiod', () => {
  let istiod: Istiod | undefined;
  afterAll(async () => {
    await istiod?.stop();
  });

  it('stores the Service istiod generates for a Gateway in an opted-in namespace with the annotations', async () => {
    const toolchain = ensureIstiod();
    await installIstioPrerequisites(node.kubectl, toolchain);
    istiod = await startIstiod({ kubeconfig: node.kubeconfig, toolchain });
    const gateway = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge', namespace: 'apps' },
      spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
    };
    await node.run(['apply', '-f', '-'], JSON.stringify(gateway));
    let annotations: Record<string, string> = {};
    await waitFor('istiod generates Service apps/edge-istio', 60_000, async () => {
      const out = await node.kubectl(['get', 'service', 'edge-istio', '-n', 'apps', '-o', 'json']);
      if (out.code !== 0) return false;
      annotations = JSON.parse(out.stdout).metadata.annotations ?? {};
      return true;
    });
    expect(annotations[PROBE]).toBe('tcp');
  });
});

it('keeps both webhook Pods running without a restart through all of the above', async () => {
  const now = await webhookPods(node);
  expect(now.map((p) => [p.uid, p.restarts])).toEqual(pods.map((p) => [p.uid, 0]));
});
