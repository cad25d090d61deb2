/**
 * A real istiod (pilot-discovery built by test/e2e/istiod/build.sh) for tests and the demo, run as
 * a local process against the test control plane instead of in a pod: every listener on loopback,
 * the kube-gateway template and its values read from files in its working directory, leader
 * election off. Its Gateway API deployment controller generates the Service, Deployment and
 * ServiceAccount of each Gateway of class `istio`, as in a cluster. stop() ends its process group;
 * so does process exit.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, removeTempDir, runBuildScript, startProcess, stopChild, tempDir, waitFor, type Kubectl } from './controlplane.js';

const BUILD_SCRIPT = fileURLToPath(new URL('../e2e/istiod/build.sh', import.meta.url));

/** ISTIO_NAMESPACE is the namespace istiod runs for; it must exist before istiod starts. */
export const ISTIO_NAMESPACE = 'istio-system';

/** IstiodToolchain is what build.sh cached: the binary and the two files taken from the same Istio module. */
export interface IstiodToolchain {
  /** version is the istio.io/istio module version the binary was built from. */
  readonly version: string;
  readonly binary: string;
  /** kubeGatewayTemplate is manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml. */
  readonly kubeGatewayTemplate: string;
  /** crds is manifests/charts/base/files/crd-all.gen.yaml. */
  readonly crds: string;
}

/** ensureIstiod builds pilot-discovery when it is missing (several minutes the first time) and returns where it is. */
export function ensureIstiod(): IstiodToolchain {
  const value = runBuildScript(BUILD_SCRIPT);
  const dir = value('ISTIO_DIR');
  return {
    version: value('ISTIO_VERSION'),
    binary: join(dir, 'bin', 'pilot-discovery'),
    kubeGatewayTemplate: join(dir, 'kube-gateway.yaml'),
    crds: join(dir, 'crd-all.gen.yaml'),
  };
}

/** installIstioPrerequisites creates the istio-system namespace and installs Istio's CRDs (the Gateway API ones come with the control plane). */
export async function installIstioPrerequisites(kubectl: Kubectl, toolchain: IstiodToolchain): Promise<void> {
  const ns = await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ISTIO_NAMESPACE } }));
  if (ns.code !== 0) throw new Error(`namespace ${ISTIO_NAMESPACE}: ${ns.stderr}`);
  const crds = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', toolchain.crds]);
  if (crds.code !== 0) throw new Error(`installing Istio's CRDs from ${toolchain.crds}: ${crds.stderr}`);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', toolchain.crds]);
  if (established.code !== 0) throw new Error(`Istio's CRDs not established: ${established.stderr}`);
}

/**
 * injectionValues are the Helm values the kube-gateway template reads (`.Values.*`), as the
 * istio-discovery chart would render them into its ConfigMap. They only shape the gateway
 * Deployment, which never runs: the e2e cluster has no node, and on the real node of test/node/ its
 * image comes from a registry under .invalid (RFC 2606), so the pull fails at once and nothing
 * leaves the machine.
 */
function injectionValues(version: string): Record<string, unknown> {
  return {
    revision: '',
    gateways: {},
    global: {
      hub: 'registry.invalid/istio',
      tag: version,
      istioNamespace: ISTIO_NAMESPACE,
      pilotCertProvider: 'istiod',
      caName: '',
      caAddress: '',
      meshID: '',
      network: '',
      trustDomain: 'cluster.local',
      imagePullPolicy: '',
      imagePullSecrets: [],
      logAsJson: false,
      logging: { level: 'default:info' },
      multiCluster: { clusterName: '' },
      proxy: { image: 'proxyv2', clusterDomain: 'cluster.local', logLevel: 'warning', componentLogLevel: 'misc:error', resources: {}, lifecycle: {} },
      sds: { token: { aud: 'istio-ca' } },
      sts: { servicePort: 0 },
    },
  };
}

/** IstiodOptions are how the tests start istiod. */
export interface IstiodOptions {
  readonly kubeconfig: string;
  readonly toolchain: IstiodToolchain;
}

/** Istiod is a running istiod process. */
export interface Istiod {
  /** logFile is where istiod writes (across restarts). */
  readonly logFile: string;
  /** restart stops istiod and starts it again with the same configuration, and waits until it is ready. */
  restart(): Promise<void>;
  /** stop ends istiod and removes its working directory. */
  stop(): Promise<void>;
}

function getReady(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/ready', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * startIstiod starts pilot-discovery against the control plane and resolves once it reports ready.
 * installIstioPrerequisites must have run.
 */
export async function startIstiod(options: IstiodOptions): Promise<Istiod> {
  const dir = tempDir('lbp-istiod-');
  // istiod's default injection directory is ./var/lib/istio/inject: `config` holds the templates
  // (here only kube-gateway, the one the Gateway deployment controller uses) and `values` the
  // Helm values they read (pilot/pkg/bootstrap/sidecarinjector.go).
  const injectDir = join(dir, 'var/lib/istio/inject');
  mkdirSync(injectDir, { recursive: true });
  const template = readFileSync(options.toolchain.kubeGatewayTemplate, 'utf8');
  writeFileSync(join(injectDir, 'config'), `templates:\n  kube-gateway: |\n${template.replace(/^/gm, '    ')}\n`);
  writeFileSync(join(injectDir, 'values'), JSON.stringify(injectionValues(options.toolchain.version)));
  const logFile = join(dir, 'istiod.log');

  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: dir,
    POD_NAMESPACE: ISTIO_NAMESPACE,
    POD_NAME: 'istiod-local',
    REVISION: 'default',
    ENABLE_LEADER_ELECTION: 'false',
    PILOT_ENABLE_GATEWAY_API: 'true',
    PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER: 'true',
    // No pod, no Service in front of istiod: it must not try to patch webhook configurations.
    INJECTION_WEBHOOK_CONFIG_NAME: '',
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
  };

  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const [http, https, grpc, secureGrpc, monitoring, ctrlz] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    // The injection directory is relative to the working directory, so istiod starts in dir:
    // bash changes into it and execs istiod, which keeps bash's pid and process group.
    const started = startProcess(
      'bash',
      [
        '-c',
        'cd "$0" && exec "$@"',
        dir,
        options.toolchain.binary,
        'discovery',
        `--kubeconfig=${options.kubeconfig}`,
        `--httpAddr=127.0.0.1:${http}`,
        `--httpsAddr=127.0.0.1:${https}`,
        `--grpcAddr=127.0.0.1:${grpc}`,
        `--secureGRPCAddr=127.0.0.1:${secureGrpc}`,
        `--monitoringAddr=127.0.0.1:${monitoring}`,
        '--ctrlz_address=127.0.0.1',
        `--ctrlz_port=${ctrlz}`,
        '--log_output_level=default:info',
      ],
      logFile,
      env,
    );
    child = started;
    await waitFor(`istiod (log: ${logFile})`, 120_000, async () => {
      if (started.exitCode !== null) throw new Error(`istiod exited with ${started.exitCode}; see ${logFile}`);
      return (await getReady(http)) === 200;
    });
  };
  await start();

  return {
    logFile,
    async restart() {
      if (child !== undefined) await stopChild(child);
      await start();
    },
    async stop() {
      if (child !== undefined) await stopChild(child);
      removeTempDir(dir);
    },
  };
}
