/**
 * A real Kubernetes control plane for tests, the demo and the benchmark: etcd and kube-apiserver
 * built by test/e2e/controlplane/build.sh, on loopback, on free ports, in a temporary directory.
 * stop() ends every process it started and removes the directory; so does process exit, also
 * after a failure or Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import { generateCertificates } from '../../src/certs/generate.js';

const BUILD_SCRIPT = fileURLToPath(new URL('../e2e/controlplane/build.sh', import.meta.url));

/** Toolchain is where build.sh put the binaries and the Gateway API CRDs. */
export interface Toolchain {
  readonly binDir: string;
  readonly gatewayCrds: string;
}

/**
 * runBuildScript runs one of the project's build scripts (each builds what is missing, caches it,
 * and prints KEY=value lines of where things are) and returns a reader of those values, which
 * throws naming the script when a key is missing. The script's own messages go to stderr.
 */
export function runBuildScript(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): (key: string) => string {
  const name = script.slice(script.indexOf('test/'));
  const out = spawnSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  if (out.status !== 0) throw new Error(`${name} failed with exit ${out.status}`);
  return (key) => {
    const match = new RegExp(`^${key}=(.*)$`, 'm').exec(out.stdout);
    if (!match?.[1]) throw new Error(`${name} printed no ${key}`);
    return match[1];
  };
}

/** DEFAULT_K8S_VERSION is the Kubernetes version the suite runs on unless a test asks for another (build.sh's default too). */
export const DEFAULT_K8S_VERSION = 'v1.35.4';

/** ensureToolchain builds the control plane binaries of a Kubernetes version when they are missing and returns their location. */
export function ensureToolchain(version: string = DEFAULT_K8S_VERSION): Toolchain {
  const value = runBuildScript(BUILD_SCRIPT, [], { K8S_VERSION: version });
  return { binDir: value('BIN_DIR'), gatewayCrds: value('GATEWAY_CRDS') };
}

/** freePort asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // Each child leads its own process group; the negative pid reaches anything it started too.
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** killAll SIGKILLs every tracked process group, waits (up to 5 s) until they are gone, then removes the temporary directories. Synchronous, so it also works in an exit handler. */
function killAll(): void {
  const pids = [...children].flatMap((c) => (c.pid !== undefined && c.exitCode === null && c.signalCode === null ? [c.pid] : []));
  for (const child of children) killGroup(child, 'SIGKILL');
  children.clear();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; waited < 5000 && pids.some(groupAlive); waited += 20) Atomics.wait(pause, 0, 0, 20);
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (err: unknown) {
      console.error(`could not remove ${dir}: ${(err as Error).message}`);
    }
  }
  dirs.clear();
}

let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** tempDir makes a temporary directory that is removed at exit if nobody removed it before. */
export function tempDir(prefix: string): string {
  hookExit();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** removeTempDir removes a directory made by tempDir now. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** startProcess starts a tracked child in its own process group, its output appended to a log file. */
export function startProcess(command: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  hookExit();
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** stopChild ends a child's process group with SIGTERM, then SIGKILL after graceMs, and resolves with its exit code. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    killGroup(child, 'SIGTERM');
  });
}

function getReadyz(host: string, port: number, ca: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/readyz', ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** KubectlResult is a finished kubectl run. */
export interface KubectlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Kubectl runs kubectl with arguments and standard input. */
export type Kubectl = (args: readonly string[], input?: string) => Promise<KubectlResult>;

/** runCommand runs a program to its end with the given standard input and environment, and returns its exit code and output. */
export function runCommand(command: string, args: readonly string[], input = '', env: NodeJS.ProcessEnv = process.env): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // A program that exits without reading its input closes the pipe: nothing to report.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** kubectlRunner returns a Kubectl bound to a kubeconfig. */
export function kubectlRunner(binDir: string, kubeconfig: string): Kubectl {
  return (args, input = '') => runCommand(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], input);
}

/** waitFor polls check every 250 ms until it returns true, or throws after timeoutMs naming what it waited for. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}

/** ControlPlaneInfo is what tests need to reach a running control plane. */
export interface ControlPlaneInfo {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly binDir: string;
  /** version is the Kubernetes version of the running kube-apiserver. */
  readonly version: string;
}

/** ControlPlane is a running etcd and kube-apiserver. */
export interface ControlPlane extends ControlPlaneInfo {
  readonly kubectl: Kubectl;
  /** ca is the CA of the API server's serving certificate, which also signs the kubelet client certificate. */
  readonly ca: { readonly certPem: string; readonly keyPem: string };
  /** tokens are the bearer tokens of the users asked for in ControlPlaneOptions.users, by user name. */
  readonly tokens: ReadonlyMap<string, string>;
  /** kubeconfigFor writes a kubeconfig for one of those users and returns its path. */
  kubeconfigFor(user: string): string;
  stop(): Promise<void>;
}

/** ControlPlaneUser is a user of the token file: name and groups. */
export interface ControlPlaneUser {
  readonly name: string;
  readonly groups?: readonly string[];
}

/**
 * ControlPlaneOptions choose the Kubernetes version and extra API server flags, and turn the loopback
 * control plane into one a real node can join (test/support/node.ts). Left out, the API server is
 * v1.35.4 on 127.0.0.1, authorizes with RBAC only, and reconciles no endpoints.
 */
export interface ControlPlaneOptions {
  /** address is where kube-apiserver listens and what it advertises (the kubernetes Service's endpoint, reached by Pods). */
  readonly address?: string;
  /** users get tokens of their own (kubelet, controller-manager, scheduler, kube-proxy), besides admin. */
  readonly users?: readonly ControlPlaneUser[];
  /** node adds the Node authorizer and a client certificate for the API server's calls to the kubelet (logs, exec). */
  readonly node?: boolean;
  /** onSpawn is told of each process as soon as it is started (the node's host journal records it). */
  readonly onSpawn?: (pid: number | undefined, name: string) => void;
  /** version is the Kubernetes version (DEFAULT_K8S_VERSION when absent), built by build.sh if missing. */
  readonly version?: string;
  /** apiserverArgs are added to kube-apiserver's flags, e.g. feature gates and runtime config. */
  readonly apiserverArgs?: readonly string[];
}

/**
 * MUTATING_ADMISSION_POLICY_BETA are the kube-apiserver flags that serve MutatingAdmissionPolicy
 * v1beta1 on 1.34 and 1.35, where it is off by default (GA and on from 1.36: KEP-3962).
 */
export const MUTATING_ADMISSION_POLICY_BETA: readonly string[] = [
  '--feature-gates=MutatingAdmissionPolicy=true',
  '--runtime-config=admissionregistration.k8s.io/v1beta1=true',
];

/**
 * admissionPolicyApiVersion is the MutatingAdmissionPolicy version a control plane of this suite
 * serves at a Kubernetes version: v1 from 1.36, v1beta1 on 1.34 and 1.35 (where the e2e setup turns
 * the beta on with MUTATING_ADMISSION_POLICY_BETA), none before.
 */
export function admissionPolicyApiVersion(version: string): 'v1' | 'v1beta1' | undefined {
  const minor = Number(/^v1\.(\d+)\./.exec(version)?.[1] ?? 0);
  return minor >= 36 ? 'v1' : minor >= 34 ? 'v1beta1' : undefined;
}

/** kubeletClientCertificate issues the API server's client certificate for the kubelet (system:masters) under the CA. */
function kubeletClientCertificate(ca: { certPem: string; keyPem: string }): { cert: string; key: string } {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomBytes(16).toString('hex').replace(/^[89a-f]/, '1');
  cert.validity.notBefore = new Date(Date.now() - 5 * 60_000);
  cert.validity.notAfter = new Date(Date.now() + 2 * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: 'kube-apiserver-kubelet-client' }, { name: 'organizationName', value: 'system:masters' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** startControlPlane starts etcd and kube-apiserver (on loopback unless options say otherwise) and installs the Gateway API standard CRDs. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const toolchain = ensureToolchain(options.version);
  const dir = tempDir('lbp-controlplane-');
  const bin = (name: string): string => join(toolchain.binDir, name);
  const address = options.address ?? '127.0.0.1';
  const etcdClient = await freePort();
  const etcdPeer = await freePort();
  const apiPort = await freePort();
  const logs = `${join(dir, 'etcd.log')} and ${join(dir, 'kube-apiserver.log')}`;

  const etcd = startProcess(
    bin('etcd'),
    [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ],
    join(dir, 'etcd.log'),
  );
  options.onSpawn?.(etcd.pid, 'etcd');

  const serving = generateCertificates({
    dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
    ips: [...new Set(['127.0.0.1', address, '198.19.0.1'])],
    days: 2,
    caDays: 2,
    now: new Date(),
    // RSA: the kubelet client certificate is issued under this CA with node-forge, which reads RSA keys only.
    keyAlgorithm: 'rsa',
  });
  writeFileSync(join(dir, 'apiserver.crt'), serving.tlsCert);
  writeFileSync(join(dir, 'apiserver.key'), serving.tlsKey, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), serving.caCert);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const token = randomBytes(24).toString('hex');
  const tokens = new Map((options.users ?? []).map((user) => [user.name, randomBytes(24).toString('hex')]));
  const tokenLines = [`${token},admin,admin-uid,system:masters`];
  for (const user of options.users ?? []) {
    const groups = user.groups ?? [];
    tokenLines.push(`${tokens.get(user.name)},${user.name},${user.name}-uid${groups.length > 0 ? `,"${groups.join(',')}"` : ''}`);
  }
  writeFileSync(join(dir, 'tokens.csv'), `${tokenLines.join('\n')}\n`, { mode: 0o600 });
  const nodeFlags: string[] = [];
  if (options.node) {
    const client = kubeletClientCertificate({ certPem: serving.caCert, keyPem: serving.caKey });
    writeFileSync(join(dir, 'kubelet-client.crt'), client.cert);
    writeFileSync(join(dir, 'kubelet-client.key'), client.key, { mode: 0o600 });
    nodeFlags.push(
      `--kubelet-client-certificate=${join(dir, 'kubelet-client.crt')}`,
      `--kubelet-client-key=${join(dir, 'kubelet-client.key')}`,
      // Without it, logs and exec look the node's name up in DNS.
      '--kubelet-preferred-address-types=InternalIP',
    );
  }

  const apiserver = startProcess(
    bin('kube-apiserver'),
    [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      // Service addresses from the benchmarking range (RFC 2544), never from the private ranges this machine's own network uses.
      '--service-cluster-ip-range=198.19.0.0/16',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      `--authorization-mode=${options.node ? 'Node,RBAC' : 'RBAC'}`,
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      // On loopback nothing can reach the advertised address but this machine: no endpoints for the kubernetes Service.
      ...(options.address === undefined ? ['--endpoint-reconciler-type=none'] : []),
      ...nodeFlags,
      '--v=1',
      ...(options.apiserverArgs ?? []),
    ],
    join(dir, 'kube-apiserver.log'),
  );
  options.onSpawn?.(apiserver.pid, 'kube-apiserver');

  await waitFor(`kube-apiserver (logs: ${logs})`, 120_000, async () => {
    if (etcd.exitCode !== null || apiserver.exitCode !== null) throw new Error(`a control plane process exited; see ${logs}`);
    return (await getReadyz(address, apiPort, serving.caCert, token)) === 200;
  });

  const server = `https://${address}:${apiPort}`;
  const writeKubeconfig = (path: string, user: string, userToken: string): string => {
    writeFileSync(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'lb-probe-webhook-test', cluster: { server, 'certificate-authority-data': Buffer.from(serving.caCert).toString('base64') } }],
        users: [{ name: user, user: { token: userToken } }],
        contexts: [{ name: 'lb-probe-webhook-test', context: { cluster: 'lb-probe-webhook-test', user, namespace: 'default' } }],
        'current-context': 'lb-probe-webhook-test',
      }),
      { mode: 0o600 },
    );
    return path;
  };
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), 'admin', token);
  const kubectl = kubectlRunner(toolchain.binDir, kubeconfig);

  for (const file of readdirSync(toolchain.gatewayCrds).filter((f) => f.endsWith('.yaml') && !f.includes('vap_'))) {
    const applied = await kubectl(['apply', '--server-side', '-f', join(toolchain.gatewayCrds, file)]);
    if (applied.code !== 0) throw new Error(`installing ${file}: ${applied.stderr}`);
  }
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/gateways.gateway.networking.k8s.io']);
  if (established.code !== 0) throw new Error(`Gateway API CRDs not established: ${established.stderr}`);

  return {
    dir,
    kubeconfig,
    server,
    binDir: toolchain.binDir,
    version: options.version ?? DEFAULT_K8S_VERSION,
    kubectl,
    ca: { certPem: serving.caCert, keyPem: serving.caKey },
    tokens,
    kubeconfigFor(user) {
      const userToken = tokens.get(user);
      if (userToken === undefined) throw new Error(`no token for ${user}: pass it in ControlPlaneOptions.users`);
      return writeKubeconfig(join(dir, `${user.replace(/[^a-z0-9-]/gi, '_')}.kubeconfig`), user, userToken);
    },
    async stop() {
      await stopChild(apiserver);
      await stopChild(etcd);
      removeTempDir(dir);
    },
  };
}
