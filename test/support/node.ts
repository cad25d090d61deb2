/**
 * A real Kubernetes node for the tests that run the webhook as users run it (test/node/): the
 * control plane of test/support/controlplane.ts on an address Pods can reach, plus containerd
 * (with runc and the Debian CNI plugins), kubelet, kube-controller-manager, kube-scheduler and
 * kube-proxy in iptables mode, all built by test/node/build.sh.
 *
 * One node per machine at a time: the kubelet's host paths, sysctls and iptables are the host's,
 * so startNode takes a lock that a second run waits for. Every host change is journaled
 * (test/support/host.ts) and undone by stop(), by the exit hooks after a failure or Ctrl-C, or at
 * the next start when a run was killed; stop() then checks that the host is as it was.
 *
 * Addresses (never the private ranges: this machine's own network may use them, and 192.0.2.0/24
 * may be its own link too): the node is 198.18.255.1 on a link of its own, Pods come from
 * 198.18.0.0/24 on the bridge lbp-br0, Services from 198.19.0.0/16, all in the benchmarking range
 * 198.18.0.0/15 (RFC 2544).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort, runBuildScript, runCommand, startControlPlane, startProcess, stopChild, waitFor, type ControlPlane, type KubectlResult } from './controlplane.js';
import { cgroupHierarchies, diffHost, HostJournal, iptablesTables, JOURNAL_DIR, NODE_PATHS, NODE_SYSCTL_VALUES, snapshotHost, type HostSnapshot } from './host.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILD_SCRIPT = join(ROOT, 'test/node/build.sh');

/** NODE_NAME is the Node's name. */
export const NODE_NAME = 'lbp-node';
/** NODE_IP is the node's address, on the dummy link NODE_LINK; the API server listens there too. */
export const NODE_IP = '198.18.255.1';
const NODE_LINK = 'lbp-node0';
/** POD_SUBNET is this node's Pod addresses, on the bridge BRIDGE. */
export const POD_SUBNET = '198.18.0.0/24';
const POD_GATEWAY = '198.18.0.1';
/** CLUSTER_CIDR is every Pod address of the cluster (kube-proxy's --cluster-cidr). */
const CLUSTER_CIDR = '198.18.0.0/17';
const BRIDGE = 'lbp-br0';
/** CGROUP_ROOT is the kubelet's cgroup root, in every hierarchy: every Pod's processes live below it. */
const CGROUP_ROOT = '/lbp-node';

/** NodeToolchain is what test/node/build.sh made. */
export interface NodeToolchain {
  readonly binDir: string;
  readonly nodeBinDir: string;
  readonly containerdBinDir: string;
  readonly pauseArchive: string;
  readonly pauseImage: string;
  readonly cniBinDir: string;
  readonly runc: string;
}

/** ensureNodeToolchain builds what is missing (Debian packages, Kubernetes' node binaries, containerd, the pause image) and returns where it is. */
export function ensureNodeToolchain(): NodeToolchain {
  const value = runBuildScript(BUILD_SCRIPT);
  return {
    binDir: value('BIN_DIR'),
    nodeBinDir: value('NODE_BIN_DIR'),
    containerdBinDir: value('CONTAINERD_BIN_DIR'),
    pauseArchive: value('PAUSE_ARCHIVE'),
    pauseImage: value('PAUSE_IMAGE'),
    cniBinDir: value('CNI_BIN_DIR'),
    runc: value('RUNC'),
  };
}

/** RunningNode is a control plane with one Ready node. */
export interface RunningNode {
  readonly controlPlane: ControlPlane;
  readonly dir: string;
  /** ctr runs containerd's ctr in the k8s.io namespace (the kubelet's images and containers). */
  ctr(args: readonly string[]): Promise<KubectlResult>;
  /** importImage loads a docker-archive into the node's image store, where the kubelet finds it. */
  importImage(archive: string): Promise<void>;
  /** stop stops everything, undoes every host change and checks that the host is as it was. */
  stop(): Promise<void>;
}

/**
 * hostLock takes the machine-wide node lock, waiting while another run holds it. The lock is held by
 * a child `flock` whose stdin is ours: it is released when this process ends, however it ends.
 */
async function hostLock(): Promise<ChildProcess> {
  mkdirSync(JOURNAL_DIR, { recursive: true });
  // Its own process group: a Ctrl-C to the terminal's group must not end it (and free the node) while
  // this process is still undoing the host changes.
  const child = spawn('flock', [join(JOURNAL_DIR, 'lock'), 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  const waiting = setTimeout(() => console.log('node: waiting for another run to release the node (flock on /var/tmp/lb-probe-webhook-node/lock)'), 2000);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock exited with ${code} before taking the node lock`)));
    child.stdout.once('data', () => resolve());
  });
  clearTimeout(waiting);
  child.removeAllListeners('exit');
  child.unref();
  return child;
}

function run(command: string, args: readonly string[]): void {
  const out = spawnSync(command, args, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${out.stderr || out.error?.message}`);
}

function containerdConfig(dir: string, tools: NodeToolchain): string {
  // Every path containerd writes is in dir, but for the shims' sockets (/run/containerd/s, fixed in
  // containerd's code), which the journal removes.
  return `version = 3
root = '${dir}/containerd/root'
state = '${dir}/containerd/state'
temp = '${dir}/containerd/tmp'
disabled_plugins = ['io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri', 'io.containerd.image-verifier.v1.bindir']

[grpc]
  address = '${dir}/containerd.sock'

[ttrpc]
  address = '${dir}/containerd.sock.ttrpc'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${tools.pauseImage}'
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '${dir}/containerd/certs.d'

  [plugins.'io.containerd.cri.v1.runtime']
    # This machine's root lacks CAP_SYS_RESOURCE: a Pod's oom_score_adj may not go below containerd's.
    restrict_oom_score_adj = true
    disable_apparmor = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '${tools.runc}'
          Root = '${dir}/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['${tools.cniBinDir}']
      conf_dir = '${dir}/cni/net.d'
      use_internal_loopback = true
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'lbp',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET, gateway: POD_GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'cni/ipam') },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string, caFile: string, socket: string, port: number, healthzPort: number): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine has cgroup v1 hierarchies (plus unified); kubelets from 1.35 refuse them unless told.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: CGROUP_ROOT,
    containerRuntimeEndpoint: `unix://${socket}`,
    address: NODE_IP,
    port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: caFile } },
    authorization: { mode: 'Webhook' },
    failSwapOn: false,
    // The kubelet sets a few kernel defaults (vm.overcommit_memory, kernel.panic...); the journal restores them.
    protectKernelDefaults: false,
    // The host's disk and memory are not the node's to guard: no eviction, no image garbage collection.
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '0%', 'imagefs.available': '0%', 'nodefs.inodesFree': '0%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    volumePluginDir: join(dir, 'volume-plugins'),
    podLogsDir: join(dir, 'pod-logs'),
    resolvConf: join(dir, 'resolv.conf'),
    serializeImagePulls: false,
    maxPods: 30,
    nodeStatusReportFrequency: '10s',
    // A changed Secret reaches a Pod's volume at the Pod's next sync: every 10 s here rather than
    // the default minute, so a certificate rotation shows within seconds.
    syncFrequency: '10s',
  });
}

/** startNode starts a control plane and a node that joins it, Ready, with kube-proxy's rules in place. */
export async function startNode(options: { readonly images?: readonly string[] } = {}): Promise<RunningNode> {
  if (process.getuid?.() !== 0) throw new Error('the real node needs root: a kubelet and containerd mount, set cgroups, sysctls and iptables (docs/development.md, "The real node")');
  const tools = ensureNodeToolchain();
  const lock = await hostLock();
  const recovered = HostJournal.recover();
  if (recovered > 0) console.log(`node: undid ${recovered} host changes that a killed run left behind`);
  const before: HostSnapshot = snapshotHost();
  const journal = new HostJournal();
  let stopped = false;
  const teardown = (): void => {
    if (stopped) return;
    stopped = true;
    journal.undoAll();
  };
  process.once('exit', () => {
    try {
      teardown();
    } catch (err: unknown) {
      console.error((err as Error).message);
    }
  });

  try {
    // Not a tempDir: the exit hooks remove those at once, and this folder holds mounts until the journal undoes them.
    const dir = mkdtempSync(join(tmpdir(), 'lbp-node-'));
    // Recorded first, undone last: the folder goes once nothing is mounted in it.
    journal.record({ kind: 'folder', path: dir });
    for (const family of ['ipv4', 'ipv6'] as const) journal.record({ kind: 'iptables', family, tables: iptablesTables(family) });
    for (const [key, value] of Object.entries(before.sysctls)) journal.record({ kind: 'sysctl', key, value, set: NODE_SYSCTL_VALUES[key] });
    for (const path of NODE_PATHS) if (!before.paths[path]) journal.record({ kind: 'dir', path, since: Date.now() });
    journal.record({ kind: 'mounts', under: dir });
    journal.record({ kind: 'cgroup', path: CGROUP_ROOT });
    // The kubelet wants its cgroup root to exist in every hierarchy; a v1 cpuset cgroup takes no
    // process until it has CPUs and memory nodes, so it gets its parent's.
    for (const hierarchy of cgroupHierarchies()) {
      mkdirSync(join(hierarchy, CGROUP_ROOT), { recursive: true });
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (existsSync(join(hierarchy, file))) writeFileSync(join(hierarchy, CGROUP_ROOT, file), readFileSync(join(hierarchy, file)));
      }
    }
    journal.record({ kind: 'link', name: BRIDGE });

    journal.record({ kind: 'link', name: NODE_LINK });
    // A bridge without ports holds the address as a dummy link would: not every kernel has the dummy driver.
    run('ip', ['link', 'add', NODE_LINK, 'type', 'bridge']);
    run('ip', ['address', 'add', `${NODE_IP}/32`, 'dev', NODE_LINK]);
    run('ip', ['link', 'set', NODE_LINK, 'up']);

    const controlPlane = await startControlPlane({
      address: NODE_IP,
      node: true,
      onSpawn: (pid, name) => journal.recordProcess(pid, name),
      users: [
        { name: `system:node:${NODE_NAME}`, groups: ['system:nodes'] },
        { name: 'system:kube-controller-manager' },
        { name: 'system:kube-scheduler' },
        { name: 'system:kube-proxy' },
      ],
    });
    const caFile = join(controlPlane.dir, 'ca.crt');
    const log = (name: string) => join(dir, `${name}.log`);
    const started: ChildProcess[] = [];
    const start = (name: string, command: string, args: readonly string[]): ChildProcess => {
      const child = startProcess(command, args, log(name), { ...process.env, PATH: `${tools.containerdBinDir}:${process.env.PATH ?? ''}` });
      journal.recordProcess(child.pid, name);
      started.push(child);
      return child;
    };
    const exited = () => started.find((c) => c.exitCode !== null || c.signalCode !== null);
    const check = () => {
      const gone = exited();
      if (gone) throw new Error(`a node process exited (${gone.spawnfile}); see the logs in ${dir}`);
    };

    // containerd -----------------------------------------------------------------------------------
    const socket = join(dir, 'containerd.sock');
    journal.record({ kind: 'shims', address: socket });
    for (const sub of ['containerd', 'cni/net.d', 'cni/ipam', 'pod-logs', 'volume-plugins', 'kubelet']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'containerd/config.toml'), containerdConfig(dir, tools));
    writeFileSync(join(dir, 'cni/net.d/10-lbp.conflist'), cniConfig(dir));
    // No DNS in this cluster: Pods resolve nothing (the tests use addresses).
    writeFileSync(join(dir, 'resolv.conf'), '');
    start('containerd', join(tools.containerdBinDir, 'containerd'), ['--config', join(dir, 'containerd/config.toml')]);
    const ctr = (args: readonly string[]) => runCommand(join(tools.containerdBinDir, 'ctr'), ['--address', socket, '--namespace', 'k8s.io', ...args]);
    await waitFor(`containerd (log: ${log('containerd')})`, 60_000, async () => {
      check();
      return existsSync(socket) && (await ctr(['version'])).code === 0;
    });
    const importImage = async (archive: string): Promise<void> => {
      const out = await ctr(['images', 'import', '--no-unpack=false', archive]);
      if (out.code !== 0) throw new Error(`ctr images import ${archive}: ${out.stderr}`);
    };
    for (const archive of [tools.pauseArchive, ...(options.images ?? [])]) await importImage(archive);

    // kubelet --------------------------------------------------------------------------------------
    const kubeletPort = await freePort();
    const kubeletHealthz = await freePort();
    writeFileSync(join(dir, 'kubelet.yaml'), kubeletConfig(dir, caFile, socket, kubeletPort, kubeletHealthz));
    start('kubelet', join(tools.nodeBinDir, 'kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${controlPlane.kubeconfigFor(`system:node:${NODE_NAME}`)}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--cert-dir=${join(dir, 'kubelet/pki')}`,
      `--node-ip=${NODE_IP}`,
      `--hostname-override=${NODE_NAME}`,
      '--v=1',
    ]);

    // kube-controller-manager, kube-scheduler, kube-proxy ---------------------------------------------
    start('kube-controller-manager', join(tools.nodeBinDir, 'kube-controller-manager'), [
      `--kubeconfig=${controlPlane.kubeconfigFor('system:kube-controller-manager')}`,
      `--service-account-private-key-file=${join(controlPlane.dir, 'sa.key')}`,
      `--root-ca-file=${caFile}`,
      '--use-service-account-credentials',
      // No cloud, and Pod addresses come from the CNI configuration, not from the Node.
      '--controllers=*,-nodeipam,-cloud-node-lifecycle',
      '--service-cluster-ip-range=198.19.0.0/16',
      // Its FlexVolume probe would otherwise make /usr/libexec/kubernetes.
      `--flex-volume-plugin-dir=${join(dir, 'volume-plugins')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--v=1',
    ]);
    start('kube-scheduler', join(tools.nodeBinDir, 'kube-scheduler'), [
      `--kubeconfig=${controlPlane.kubeconfigFor('system:kube-scheduler')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--v=1',
    ]);
    const proxyHealthz = await freePort();
    const proxyMetrics = await freePort();
    start('kube-proxy', join(tools.nodeBinDir, 'kube-proxy'), [
      `--kubeconfig=${controlPlane.kubeconfigFor('system:kube-proxy')}`,
      '--proxy-mode=iptables',
      `--hostname-override=${NODE_NAME}`,
      `--cluster-cidr=${CLUSTER_CIDR}`,
      // Leave the host's conntrack sysctls and route_localnet alone.
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      '--iptables-localhost-nodeports=false',
      `--healthz-bind-address=127.0.0.1:${proxyHealthz}`,
      `--metrics-bind-address=127.0.0.1:${proxyMetrics}`,
      '--v=1',
    ]);

    const kubectl = controlPlane.kubectl;
    await waitFor(`Node ${NODE_NAME} Ready (logs in ${dir})`, 120_000, async () => {
      check();
      const out = await kubectl(['get', 'node', NODE_NAME, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return out.code === 0 && out.stdout === 'True';
    });
    await waitFor('the default ServiceAccount and kube-root-ca.crt', 60_000, async () => {
      check();
      const sa = await kubectl(['get', 'serviceaccount', 'default', '-n', 'default']);
      const cm = await kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', 'default']);
      return sa.code === 0 && cm.code === 0;
    });
    await waitFor('kube-proxy rules for the kubernetes Service', 60_000, () => {
      check();
      return Promise.resolve(/KUBE-SVC-/.test(spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout));
    });

    return {
      controlPlane,
      dir,
      ctr,
      importImage,
      async stop() {
        // Orderly first: the node's processes, then the control plane; then the journal undoes the rest.
        for (const child of [...started].reverse()) await stopChild(child, 5000);
        await controlPlane.stop();
        teardown();
        lock.stdin?.end();
        const left = diffHost(before, snapshotHost());
        if (left.length > 0) throw new Error(`the node left changes on the host:\n${left.join('\n')}`);
      },
    };
  } catch (err: unknown) {
    try {
      teardown();
    } finally {
      lock.stdin?.end();
    }
    throw err;
  }
}

/**
 * containerMemoryCgroup is the memory cgroup (v1) folder of a Pod's container on this node, where
 * its real limit, usage and peak are, or undefined when there is none (the kubelet's cgroupfs layout:
 * CGROUP_ROOT/kubepods[/burstable|/besteffort]/pod<uid>/<container id>).
 */
export function containerMemoryCgroup(podUid: string, containerId: string): string | undefined {
  for (const qos of ['', 'burstable', 'besteffort']) {
    const path = join('/sys/fs/cgroup/memory', CGROUP_ROOT, 'kubepods', qos, `pod${podUid}`, containerId);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** readMemoryCgroup reads a memory cgroup (v1) file as a number. */
export function readMemoryCgroup(folder: string, file: string): number {
  return Number(readFileSync(join(folder, file), 'utf8').trim());
}
