/**
 * Conformance: what `render` writes, read by the clouds' own code. Every case renders its input with
 * the built CLI under its policy, lets the simulated API server default and allocate node ports, and
 * asks cloud-provider-azure v1.34.3 or aws-load-balancer-controller v2.17.1 (built from their modules
 * by build.sh) which probe they would configure. The same cases run a second time on what the policy
 * compiled by `export admission-policy` stores on a real kube-apiserver (v1.37.2, server-side dry
 * run), with no webhook: the clouds must read the same probes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/json.js';
import { runCli } from '../support/cli.js';
import { startControlPlane, type ControlPlane } from '../support/controlplane.js';
import { apiClient, installCompiledPolicy, type ApiClient } from '../support/differential.js';
import { fixture } from '../support/fixtures.js';
import { ensureNamespace } from '../support/webhook.js';
import {
  allocate,
  FIRST_NODE_PORT,
  HEALTH_CHECK_NODE_PORT,
  programPaths,
  runAlb,
  runAws,
  runAzure,
  type AlbResult,
  type AwsHealthCheck,
  type AwsResult,
  type AzureProbe,
  type AzureResult,
} from './clouds.js';

const AZ = 'service.beta.kubernetes.io/';
const AWS = 'service.beta.kubernetes.io/aws-load-balancer-';
const READY = '/healthz/ready';

/** Input is a case's object before the webhook: a fixture document, optionally edited. */
interface Input {
  readonly fixture: string;
  readonly index?: number;
  readonly edit?: (object: JsonObject) => void;
}

/** PortRef names a port number by what it is, resolved against the allocated Service. */
type PortRef = { nodePortOf: number } | { targetPortOf: number } | 'healthCheckNodePort' | number;

interface AzureCase {
  readonly name: string;
  readonly input: Input;
  readonly policy: Record<string, unknown>;
  readonly probeMode?: 'servicenodeport' | 'shared';
  /** probes maps each Service port to the probe its rule should have, or `no rule`. */
  readonly probes: Record<number, { protocol: string; port: PortRef; path?: string } | 'no rule'>;
  readonly warnings?: readonly string[];
}

interface AwsCase {
  readonly name: string;
  readonly input: Input;
  readonly policy: Record<string, unknown>;
  /** controllerDefault is the controller's --default-target-type; the policy's aws.defaultTargetType when absent. */
  readonly controllerDefault?: 'instance' | 'ip';
  /** check is the health check every port's target group gets, or `not reconciled` when the controller ignores the Service. */
  readonly check: { targetType: string; protocol: string; port: PortRef | 'traffic-port'; path?: string } | 'not reconciled';
  readonly warnings?: readonly string[];
}

// Inputs ------------------------------------------------------------------------------------------

function annotate(annotations: Record<string, string>): (object: JsonObject) => void {
  return (object) => {
    const metadata = object['metadata'] as JsonObject;
    metadata['annotations'] = { ...(metadata['annotations'] as JsonObject | undefined), ...annotations };
  };
}

function spec(fields: JsonObject): (object: JsonObject) => void {
  return (object) => Object.assign(object['spec'] as JsonObject, fields);
}

function statusTargetPort(targetPort: number | string): (object: JsonObject) => void {
  return (object) => {
    const ports = (object['spec'] as JsonObject)['ports'] as JsonObject[];
    const status = ports.find((p) => p['name'] === 'status-port');
    if (status === undefined) throw new Error('no status-port');
    status['targetPort'] = targetPort;
  };
}

function both(...edits: ((object: JsonObject) => void)[]): (object: JsonObject) => void {
  return (object) => edits.forEach((edit) => edit(object));
}

const ISTIO_SERVICE: Input = { fixture: 'istio-gateway-service.yaml' };
const NLB_SERVICE: Input = { fixture: 'service-aws-nlb.yaml' };

/**
 * istioService returns the Service Istio generates for a rendered Gateway of class istio, by the rules
 * the reference records from istiod (pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go):
 * status-port 15021 first, then one port per distinct listener port, named after its first listener,
 * appProtocol its protocol in lower case; annotations from spec.infrastructure.annotations when that
 * map exists, else metadata.annotations without gateway.networking.k8s.io/ keys.
 */
function istioService(gateway: JsonObject): JsonObject {
  const metadata = gateway['metadata'] as JsonObject;
  const gatewaySpec = gateway['spec'] as JsonObject;
  const infra = (gatewaySpec['infrastructure'] as JsonObject | undefined)?.['annotations'] as Record<string, string> | undefined;
  const annotations =
    infra ?? Object.fromEntries(Object.entries((metadata['annotations'] ?? {}) as Record<string, string>).filter(([k]) => !k.startsWith('gateway.networking.k8s.io/')));
  const ports: JsonObject[] = [{ name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' }];
  for (const listener of gatewaySpec['listeners'] as JsonObject[]) {
    if (ports.some((p) => p['port'] === listener['port'])) continue;
    ports.push({ name: listener['name'], port: listener['port'], protocol: 'TCP', appProtocol: String(listener['protocol']).toLowerCase() });
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `${String(metadata['name'])}-istio`, namespace: metadata['namespace'], annotations },
    spec: { type: 'LoadBalancer', selector: { 'gateway.networking.k8s.io/gateway-name': metadata['name'] }, ports },
  };
}

// Azure cases -------------------------------------------------------------------------------------

const tcpOwn = (port: number) => ({ protocol: 'Tcp', port: { nodePortOf: port } });
const httpStatus = { protocol: 'Http', port: { nodePortOf: 15021 }, path: READY };
const kubeProxyLocal = { protocol: 'Http', port: 'healthCheckNodePort' as const, path: '/healthz' };
const sharedProbe = { protocol: 'Http', port: 10256, path: '/healthz' };
/** kubeProxy is kube-proxy's health endpoint on the node: a health-probe_port number that is not a Service port is a raw node port. */
const kubeProxy = { protocol: 'Http', port: 10256, path: '/healthz' };

const AZURE_CASES: AzureCase[] = [
  {
    name: "probe tcp makes Azure probe every port of Istio's Service over TCP on its own nodePort",
    input: ISTIO_SERVICE,
    policy: { probe: 'tcp' },
    probes: { 15021: tcpOwn(15021), 80: tcpOwn(80), 443: tcpOwn(443) },
  },
  {
    name: "probe readiness by port name makes Azure probe ports 80 and 443 with GET /healthz/ready on the status port's nodePort",
    input: ISTIO_SERVICE,
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: httpStatus, 443: httpStatus },
  },
  {
    name: "probe readiness by port number 15021 makes Azure probe the status port's nodePort, not node port 15021",
    input: ISTIO_SERVICE,
    policy: { probe: 'readiness', readiness: { port: 15021 } },
    probes: { 15021: tcpOwn(15021), 80: httpStatus, 443: httpStatus },
  },
  {
    name: 'probe readiness with azure.hideStatusPort gives the status port no rule and still probes it for ports 80 and 443',
    input: ISTIO_SERVICE,
    policy: { probe: 'readiness', azure: { hideStatusPort: true } },
    probes: { 15021: 'no rule', 80: httpStatus, 443: httpStatus },
  },
  {
    name: 'probe tcp on an externalTrafficPolicy Local Service leaves every port on kube-proxy’s /healthz at healthCheckNodePort',
    input: { fixture: 'service-etp-local.yaml' },
    policy: { probe: 'tcp' },
    probes: { 15021: kubeProxyLocal, 80: kubeProxyLocal },
  },
  {
    name: 'probe readiness on an externalTrafficPolicy Local Service leaves every port on kube-proxy’s /healthz at healthCheckNodePort',
    input: { fixture: 'service-etp-local.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: kubeProxyLocal, 80: kubeProxyLocal },
  },
  {
    name: 'probe tcp keeps the user’s own HTTP /status probe on port 80 and probes 443 over TCP',
    input: { fixture: 'service-user-probe.yaml' },
    policy: { probe: 'tcp' },
    probes: { 15021: tcpOwn(15021), 80: { protocol: 'Http', port: { nodePortOf: 80 }, path: '/status' }, 443: tcpOwn(443) },
  },
  {
    name: 'probe readiness keeps the user’s own HTTP /status probe on port 80 and probes 443 on the status port',
    input: { fixture: 'service-user-probe.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: { protocol: 'Http', port: { nodePortOf: 80 }, path: '/status' }, 443: httpStatus },
  },
  {
    name: "probe readiness under Azure's shared probe mode ends on the one shared probe, Http 10256 /healthz, for every port",
    input: ISTIO_SERVICE,
    policy: { probe: 'readiness' },
    probeMode: 'shared',
    probes: { 15021: sharedProbe, 80: sharedProbe, 443: sharedProbe },
  },
  {
    name: "probe tcp under Azure's shared probe mode ends on the one shared probe, Http 10256 /healthz, for every port",
    input: ISTIO_SERVICE,
    policy: { probe: 'tcp' },
    probeMode: 'shared',
    probes: { 15021: sharedProbe, 80: sharedProbe, 443: sharedProbe },
  },
  {
    name: 'the istio/gateway chart’s Service without appProtocol is left alone and Azure probes it over TCP',
    input: { fixture: 'istio-chart-service.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: tcpOwn(80), 443: tcpOwn(443) },
  },
  {
    name: "probe readiness on KServe's generated Service probes port 80 on the status port",
    input: { fixture: 'kserve-inference-gateway.yaml', index: 1 },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: httpStatus },
  },
  {
    name: 'a readiness port the Service lacks falls back to TCP with a warning',
    input: ISTIO_SERVICE,
    policy: { probe: 'readiness', readiness: { port: 'health' } },
    probes: { 15021: tcpOwn(15021), 80: tcpOwn(80), 443: tcpOwn(443) },
    warnings: ['Azure: readiness port health is not a port of the Service, so the probe stays TCP'],
  },
  {
    name: "probe readiness on a plain Gateway reaches Istio's Service: 80 and 443 on the status port, the TLS port over TCP",
    input: { fixture: 'gateway-plain.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: httpStatus, 443: httpStatus, 15443: tcpOwn(15443) },
  },
  {
    name: "probe tcp on a plain Gateway reaches Istio's Service: every port over TCP",
    input: { fixture: 'gateway-plain.yaml' },
    policy: { probe: 'tcp' },
    probes: { 15021: tcpOwn(15021), 80: tcpOwn(80), 443: tcpOwn(443), 15443: tcpOwn(15443) },
  },
  {
    name: 'probe readiness on a Gateway with spec.infrastructure.annotations reaches the Service through that map',
    input: { fixture: 'gateway-infrastructure.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: httpStatus },
  },
  {
    name: 'probe readiness on an internal-LB Gateway reaches the Service through metadata.annotations',
    input: { fixture: 'gateway-azure-internal.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: httpStatus },
  },
  {
    name: 'probe readiness on the ingress-nginx chart’s Service makes Azure probe 80 and 443 with GET /healthz on the http port’s nodePort',
    input: { fixture: 'ingress-nginx-controller.yaml' },
    policy: { probe: 'readiness' },
    probes: { 80: { protocol: 'Http', port: { nodePortOf: 80 }, path: '/healthz' }, 443: { protocol: 'Http', port: { nodePortOf: 80 }, path: '/healthz' } },
  },
  {
    name: 'probe tcp on the ingress-nginx chart’s Service makes Azure probe each port over TCP on its own nodePort',
    input: { fixture: 'ingress-nginx-controller.yaml' },
    policy: { probe: 'tcp' },
    probes: { 80: tcpOwn(80), 443: tcpOwn(443) },
  },
  {
    name: 'probe readiness on the HAProxy chart’s Service makes Azure probe every port over TCP, without a warning',
    input: { fixture: 'haproxy-ingress-controller.yaml' },
    policy: { probe: 'readiness' },
    probes: { 80: tcpOwn(80), 443: tcpOwn(443), 1024: tcpOwn(1024) },
  },
  {
    name: "probe kube-proxy makes Azure probe ports 80 and 443 with GET /healthz on node port 10256, kube-proxy's, as AKS does for its managed Istio",
    input: ISTIO_SERVICE,
    policy: { probe: 'kube-proxy' },
    probes: { 15021: tcpOwn(15021), 80: kubeProxy, 443: kubeProxy },
  },
  {
    name: "probe kube-proxy on a plain Gateway reaches Istio's Service: 80 and 443 on kube-proxy's 10256, the TLS port over TCP",
    input: { fixture: 'gateway-plain.yaml' },
    policy: { probe: 'kube-proxy' },
    probes: { 15021: tcpOwn(15021), 80: kubeProxy, 443: kubeProxy, 15443: tcpOwn(15443) },
  },
  {
    name: 'probe kube-proxy on an externalTrafficPolicy Local Service leaves every port on kube-proxy’s /healthz at healthCheckNodePort',
    input: { fixture: 'service-etp-local.yaml' },
    policy: { probe: 'kube-proxy' },
    probes: { 15021: kubeProxyLocal, 80: kubeProxyLocal },
  },
  {
    name: "probe readiness on the classic Istio gateway Service makes Azure probe 80 and 443 with GET /healthz/ready on the status port's nodePort",
    input: { fixture: 'istio-classic-ingressgateway.yaml' },
    policy: { probe: 'readiness' },
    probes: { 15021: tcpOwn(15021), 80: httpStatus, 443: httpStatus },
  },
];

// AWS cases ---------------------------------------------------------------------------------------

const instanceStatus = { targetType: 'instance', protocol: 'HTTP', port: { nodePortOf: 15021 }, path: READY };
const ipStatus = { targetType: 'ip', protocol: 'HTTP', port: { targetPortOf: 15021 }, path: READY };

const AWS_CASES: AwsCase[] = [
  {
    name: 'probe tcp leaves the NLB on TCP to the traffic port of its instance targets',
    input: NLB_SERVICE,
    policy: { probe: 'tcp' },
    check: { targetType: 'instance', protocol: 'TCP', port: 'traffic-port' },
  },
  {
    name: "probe readiness by port name checks instance targets with GET /healthz/ready on the status port's nodePort",
    input: NLB_SERVICE,
    policy: { probe: 'readiness' },
    check: instanceStatus,
  },
  {
    name: "probe readiness by port number 15021 checks instance targets on the status port's nodePort, not node port 15021",
    input: NLB_SERVICE,
    policy: { probe: 'readiness', readiness: { port: 15021 } },
    check: instanceStatus,
  },
  {
    name: 'probe readiness with the nlb-target-type ip annotation checks the pods on the status port’s targetPort',
    input: { ...NLB_SERVICE, edit: annotate({ [`${AWS}nlb-target-type`]: 'ip' }) },
    policy: { probe: 'readiness' },
    check: ipStatus,
  },
  {
    name: 'probe readiness by number with ip targets checks the pods on the status port’s targetPort',
    input: { ...NLB_SERVICE, edit: annotate({ [`${AWS}nlb-target-type`]: 'ip' }) },
    policy: { probe: 'readiness', readiness: { port: 15021 } },
    check: ipStatus,
  },
  {
    name: 'probe readiness with aws.defaultTargetType ip, matching the controller flag, checks the pods on the status port’s targetPort',
    input: NLB_SERVICE,
    policy: { probe: 'readiness', aws: { defaultTargetType: 'ip' } },
    check: ipStatus,
  },
  {
    name: 'probe readiness with ip targets and a status port whose targetPort differs checks that targetPort',
    input: { ...NLB_SERVICE, edit: both(annotate({ [`${AWS}nlb-target-type`]: 'ip' }), statusTargetPort(15020)) },
    policy: { probe: 'readiness' },
    check: ipStatus,
  },
  {
    name: 'probe readiness with ip targets and a named status targetPort is left on TCP with a warning instead of a refused Service',
    input: { ...NLB_SERVICE, edit: both(annotate({ [`${AWS}nlb-target-type`]: 'ip' }), statusTargetPort('status')) },
    policy: { probe: 'readiness' },
    check: { targetType: 'ip', protocol: 'TCP', port: 'traffic-port' },
    warnings: [
      `AWS: give Service port 15021 (status-port) a numeric targetPort, or set ${AWS}healthcheck-port to the container port number yourself: ` +
        "with ip targets the Load Balancer Controller refuses the whole Service when the health check port's targetPort is a name (status); the check stays TCP",
    ],
  },
  {
    name: 'probe readiness with a named status targetPort still checks instance targets on the status nodePort',
    input: { ...NLB_SERVICE, edit: statusTargetPort('status') },
    policy: { probe: 'readiness' },
    check: instanceStatus,
  },
  {
    name: 'probe readiness on aws-load-balancer-type nlb-ip (no class) checks the pods on the status port’s targetPort',
    input: { ...ISTIO_SERVICE, edit: annotate({ [`${AWS}type`]: 'nlb-ip' }) },
    policy: { probe: 'readiness' },
    check: ipStatus,
  },
  {
    name: 'probe readiness on aws-load-balancer-type external with target type instance checks the status nodePort',
    input: { ...ISTIO_SERVICE, edit: annotate({ [`${AWS}type`]: 'external', [`${AWS}nlb-target-type`]: 'instance' }) },
    policy: { probe: 'readiness' },
    check: instanceStatus,
  },
  {
    name: 'aws-load-balancer-type external without a target type is not the controller’s, and the webhook says so instead of writing',
    input: { ...ISTIO_SERVICE, edit: annotate({ [`${AWS}type`]: 'external' }) },
    policy: { probe: 'readiness' },
    check: 'not reconciled',
    warnings: [
      `AWS: for a readiness check, set loadBalancerClass service.k8s.aws/nlb, or ${AWS}type: external with ${AWS}nlb-target-type, so that the AWS Load Balancer Controller reconciles the Service; the check stays TCP (profile istio)`,
    ],
  },
  {
    name: 'probe readiness with externalTrafficPolicy Local and instance targets stays on kube-proxy’s /healthz at healthCheckNodePort',
    input: { ...NLB_SERVICE, edit: spec({ externalTrafficPolicy: 'Local' }) },
    policy: { probe: 'readiness' },
    check: { targetType: 'instance', protocol: 'HTTP', port: 'healthCheckNodePort', path: '/healthz' },
  },
  {
    name: 'probe tcp with externalTrafficPolicy Local and instance targets stays on kube-proxy’s /healthz at healthCheckNodePort',
    input: { ...NLB_SERVICE, edit: spec({ externalTrafficPolicy: 'Local' }) },
    policy: { probe: 'tcp' },
    check: { targetType: 'instance', protocol: 'HTTP', port: 'healthCheckNodePort', path: '/healthz' },
  },
  {
    name: 'probe readiness with externalTrafficPolicy Local and ip targets checks the pods on the status port’s targetPort',
    input: { ...NLB_SERVICE, edit: both(spec({ externalTrafficPolicy: 'Local' }), annotate({ [`${AWS}nlb-target-type`]: 'ip' })) },
    policy: { probe: 'readiness' },
    check: ipStatus,
  },
  {
    name: 'probe readiness keeps the user’s own health check path and port',
    input: { ...NLB_SERVICE, edit: annotate({ [`${AWS}healthcheck-protocol`]: 'http', [`${AWS}healthcheck-port`]: 'status-port', [`${AWS}healthcheck-path`]: '/status' }) },
    policy: { probe: 'readiness' },
    check: { targetType: 'instance', protocol: 'HTTP', port: { nodePortOf: 15021 }, path: '/status' },
  },
  {
    name: 'probe readiness on a Gateway whose infrastructure annotations choose the controller with ip targets checks the pods on the status port',
    input: {
      fixture: 'gateway-plain.yaml',
      edit: spec({ infrastructure: { annotations: { [`${AWS}type`]: 'external', [`${AWS}nlb-target-type`]: 'ip' } } }),
    },
    policy: { probe: 'readiness' },
    check: ipStatus,
  },
  {
    name: 'probe readiness on a Gateway whose infrastructure annotations choose instance targets checks the status nodePort',
    input: {
      fixture: 'gateway-plain.yaml',
      edit: spec({ infrastructure: { annotations: { [`${AWS}type`]: 'external', [`${AWS}nlb-target-type`]: 'instance' } } }),
    },
    policy: { probe: 'readiness', readiness: { port: 15021 } },
    check: instanceStatus,
  },
  {
    name: 'probe readiness on the ingress-nginx chart’s Service with instance targets checks GET /healthz on the http port’s nodePort',
    input: { fixture: 'ingress-nginx-controller.yaml', edit: spec({ loadBalancerClass: 'service.k8s.aws/nlb' }) },
    policy: { probe: 'readiness' },
    check: { targetType: 'instance', protocol: 'HTTP', port: { nodePortOf: 80 }, path: '/healthz' },
  },
  {
    name: 'probe readiness on the ingress-nginx chart’s Service with ip targets stays TCP with a warning, since its targetPort http is a name',
    input: { fixture: 'ingress-nginx-controller.yaml', edit: both(spec({ loadBalancerClass: 'service.k8s.aws/nlb' }), annotate({ [`${AWS}nlb-target-type`]: 'ip' })) },
    policy: { probe: 'readiness' },
    check: { targetType: 'ip', protocol: 'TCP', port: 'traffic-port' },
    warnings: [
      `AWS: give Service port 80 (http) a numeric targetPort, or set ${AWS}healthcheck-port to the container port number yourself: ` +
        "with ip targets the Load Balancer Controller refuses the whole Service when the health check port's targetPort is a name (http); the check stays TCP (profile ingress-nginx)",
    ],
  },
];

// Running -----------------------------------------------------------------------------------------

interface Rendered {
  readonly service: JsonObject;
  readonly warnings: string[];
}

/** Source is where a case's Service comes from: render, or the compiled admission policy on kube-apiserver. */
type Source = 'render' | 'policy';
const SOURCES: readonly { source: Source; title: string }[] = [
  { source: 'render', title: 'what render writes' },
  { source: 'policy', title: 'what the compiled admission policy stores on kube-apiserver v1.37.2' },
];

let workDir = '';
let programs: { azure: string; aws: string };
let controlPlane: ControlPlane;
let api: ApiClient;
const azureResults: Record<Source, Map<string, { result: AzureResult; service: JsonObject; warnings: string[] }>> = { render: new Map(), policy: new Map() };
const awsResults: Record<Source, Map<string, { result: AwsResult; service: JsonObject; warnings: string[] }>> = { render: new Map(), policy: new Map() };

function inputObject(input: Input): JsonObject {
  const object = fixture(input.fixture, input.index ?? 0);
  input.edit?.(object);
  return object;
}

/**
 * renderAll renders every case's input with the built CLI, one `render` run per distinct policy, and
 * returns each case's Service (Istio's Service for a Gateway) with the warnings printed for it.
 */
async function renderAll(provider: string, cases: readonly { name: string; input: Input; policy: Record<string, unknown> }[]): Promise<Map<string, Rendered>> {
  const byPolicy = new Map<string, number[]>();
  cases.forEach((c, i) => {
    const key = JSON.stringify({ provider, ...c.policy });
    byPolicy.set(key, [...(byPolicy.get(key) ?? []), i]);
  });
  const out = new Map<string, Rendered>();
  let run = 0;
  for (const [policyText, indexes] of byPolicy) {
    run++;
    const policyFile = join(workDir, `${provider}-policy-${run}.yaml`);
    writeFileSync(policyFile, stringify(JSON.parse(policyText)));
    const files = indexes.map((i) => {
      const file = join(workDir, `${provider}-${run}-${i}.yaml`);
      writeFileSync(file, stringify(inputObject(cases[i]!.input)));
      return file;
    });
    const { code, stdout, stderr } = await runCli(['render', '--policy', policyFile, ...files]);
    expect(code, stderr).toBe(0);
    const docs = parseAllDocuments(stdout);
    if (!Array.isArray(docs)) throw new Error('render printed nothing');
    expect(docs).toHaveLength(files.length);
    indexes.forEach((caseIndex, j) => {
      const object = docs[j]!.toJS() as JsonObject;
      const service = object['kind'] === 'Gateway' ? istioService(object) : object;
      // render's warning lines: `lb-probe-webhook render: FILE:LINE: Kind namespace/name: warning`.
      const prefix = `lb-probe-webhook render: ${files[j]!}:`;
      const warnings = stderr
        .split('\n')
        .filter((line) => line.startsWith(prefix))
        .map((line) => line.slice(prefix.length).replace(/^\d+: \S+ \S+: /, ''));
      out.set(cases[caseIndex]!.name, { service: allocate(service), warnings });
    });
  }
  return out;
}

/**
 * storeAll stores every case's input through the policy that `export admission-policy` compiles
 * for it (one policy per distinct policy, bound to the objects by a label), by server-side dry run
 * on the control plane, and returns each case's Service (Istio's Service for a stored Gateway).
 * The admission policy gives no warnings, so none are returned.
 */
async function storeAll(provider: string, cases: readonly { name: string; input: Input; policy: Record<string, unknown> }[]): Promise<Map<string, Rendered>> {
  const out = new Map<string, Rendered>();
  const byPolicy = new Map<string, number[]>();
  cases.forEach((c, i) => {
    const key = JSON.stringify({ provider, ...c.policy });
    byPolicy.set(key, [...(byPolicy.get(key) ?? []), i]);
  });
  let run = 0;
  for (const [policyText, indexes] of byPolicy) {
    run++;
    const policyFile = join(workDir, `${provider}-stored-policy-${run}.yaml`);
    writeFileSync(policyFile, stringify(JSON.parse(policyText)));
    const exported = await runCli(['export', 'admission-policy', '--policy', policyFile]);
    expect(exported.code, exported.stderr).toBe(0);
    const label = { 'lbp-conformance/policy': `${provider}-${run}` };
    const created = await installCompiledPolicy(api, parseAllDocuments(exported.stdout).map((d) => d.toJS() as JsonObject), { label, failurePolicy: 'Fail' });
    try {
      for (const i of indexes) {
        const input = inputObject(cases[i]!.input);
        const metadata = input['metadata'] as JsonObject;
        await ensureNamespace(controlPlane.kubectl, String(metadata['namespace']));
        input['metadata'] = { ...metadata, labels: { ...(metadata['labels'] as JsonObject | undefined), ...label } };
        const stored = await api.dryRunCreate(input);
        if ('refused' in stored) throw new Error(`${cases[i]!.name}: the API server refused the input: ${stored.refused}`);
        const service = stored.object['kind'] === 'Gateway' ? istioService(stored.object) : stored.object;
        out.set(cases[i]!.name, { service: allocate(service), warnings: [] });
      }
    } finally {
      for (const path of created) await api.send('DELETE', path);
    }
  }
  return out;
}

/** servicesFrom returns each case's Service from the source. */
function servicesFrom(source: Source, provider: string, cases: readonly { name: string; input: Input; policy: Record<string, unknown> }[]): Promise<Map<string, Rendered>> {
  return source === 'render' ? renderAll(provider, cases) : storeAll(provider, cases);
}

beforeAll(async () => {
  programs = programPaths();
  workDir = mkdtempSync(join(tmpdir(), 'lbp-conformance-'));
  controlPlane = await startControlPlane({ version: 'v1.37.2' });
  api = apiClient(controlPlane.kubeconfig);

  for (const { source } of SOURCES) {
    const azureRendered = await servicesFrom(source, 'azure', AZURE_CASES);
    const azure = await runAzure(
      programs.azure,
      AZURE_CASES.map((c) => ({ name: c.name, service: azureRendered.get(c.name)!.service, sku: 'standard', probeMode: c.probeMode ?? 'servicenodeport' })),
    );
    for (const result of azure) azureResults[source].set(result.name, { result, ...azureRendered.get(result.name)! });

    const awsRendered = await servicesFrom(source, 'aws', AWS_CASES);
    const aws = await runAws(
      programs.aws,
      AWS_CASES.map((c) => ({
        name: c.name,
        service: awsRendered.get(c.name)!.service,
        defaultTargetType: c.controllerDefault ?? ((c.policy['aws'] as { defaultTargetType?: 'instance' | 'ip' } | undefined)?.defaultTargetType ?? 'instance'),
      })),
    );
    for (const result of aws) awsResults[source].set(result.name, { result, ...awsRendered.get(result.name)! });
  }
}, 600_000);

afterAll(async () => {
  api?.close();
  await controlPlane?.stop();
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
});

function servicePorts(service: JsonObject): JsonObject[] {
  return (service['spec'] as JsonObject)['ports'] as JsonObject[];
}

function portOf(service: JsonObject, port: number): JsonObject {
  const found = servicePorts(service).find((p) => p['port'] === port);
  if (found === undefined) throw new Error(`the Service has no port ${port}`);
  return found;
}

function resolve(service: JsonObject, ref: PortRef): number {
  if (typeof ref === 'number') return ref;
  if (ref === 'healthCheckNodePort') return HEALTH_CHECK_NODE_PORT;
  if ('nodePortOf' in ref) return portOf(service, ref.nodePortOf)['nodePort'] as number;
  return portOf(service, ref.targetPortOf)['targetPort'] as number;
}

/** trafficPorts returns `traffic-port` and the node and target ports (as numbers and strings) of the ports a cloud would probe with GET / (appProtocol http or https). */
function trafficPorts(service: JsonObject): Set<number | string> {
  const out = new Set<number | string>(['traffic-port']);
  for (const p of servicePorts(service)) {
    if (!['http', 'https'].includes(String(p['appProtocol']).toLowerCase())) continue;
    out.add(p['nodePort'] as number);
    out.add(p['targetPort'] as number);
    out.add(String(p['nodePort']));
    out.add(String(p['targetPort']));
  }
  return out;
}

describe.each(SOURCES)('cloud-provider-azure v1.34.3 reads $title', ({ source }) => {
  it.each(AZURE_CASES.map((c) => [c.name, c] as const))('%s.', (_name, c) => {
    const { result, service, warnings } = azureResults[source].get(c.name)!;
    expect(result.error).toBeUndefined();
    const expected = Object.entries(c.probes)
      .filter(([, probe]) => probe !== 'no rule')
      .map(([port, probe]) => {
        const p = probe as Exclude<typeof probe, 'no rule'>;
        const want: AzureProbe = { protocol: p.protocol, port: resolve(service, p.port), ...(p.path !== undefined && { path: p.path }) };
        return { port: Number(port), protocol: 'Tcp', probe: want };
      });
    expect([...result.rules].sort((a, b) => a.port - b.port)).toEqual(expected.sort((a, b) => a.port - b.port));
    // The admission policy sends no warnings (docs/admission-policy.md).
    if (source === 'render') expect(warnings).toEqual(c.warnings ?? []);
  });

  it('no case gets an error from the cloud code or an HTTP(S) probe of GET / on a traffic port.', () => {
    expect(azureResults[source].size).toBe(AZURE_CASES.length);
    for (const [name, { result, service }] of azureResults[source]) {
      expect(result.error, name).toBeUndefined();
      const traffic = trafficPorts(service);
      for (const rule of result.rules) {
        const probe = rule.probe;
        if (probe === null || probe.protocol === 'Tcp') continue;
        expect(probe.path === '/' && traffic.has(probe.port), `${name}: rule ${rule.port} probes ${probe.protocol} ${probe.port}${probe.path}`).toBe(false);
      }
    }
  });
});

describe.each(SOURCES)('aws-load-balancer-controller v2.17.1 reads $title', ({ source }) => {
  it.each(AWS_CASES.map((c) => [c.name, c] as const))('%s.', (_name, c) => {
    const { result, service, warnings } = awsResults[source].get(c.name)!;
    if (source === 'render') expect(warnings).toEqual(c.warnings ?? []);
    if (c.check === 'not reconciled') {
      expect(result.supported).toBe(false);
      const annotations = ((service['metadata'] as JsonObject)['annotations'] ?? {}) as Record<string, string>;
      expect(Object.keys(annotations).filter((k) => k.startsWith(`${AWS}healthcheck-`))).toEqual([]);
      return;
    }
    expect(result.supported).toBe(true);
    const want: AwsHealthCheck = {
      protocol: c.check.protocol,
      port: c.check.port === 'traffic-port' ? 'traffic-port' : String(resolve(service, c.check.port)),
      ...(c.check.path !== undefined && { path: c.check.path }),
    };
    expect(result.ports).toEqual(servicePorts(service).map((p) => ({ port: p['port'], targetType: (c.check as { targetType: string }).targetType, healthCheck: want })));
  });

  it('no case the controller reconciles gets an error from its code or an HTTP(S) check of GET / on a traffic port.', () => {
    expect(awsResults[source].size).toBe(AWS_CASES.length);
    for (const [name, { result, service }] of awsResults[source]) {
      if (!result.supported) continue;
      const traffic = trafficPorts(service);
      for (const port of result.ports) {
        expect(port.error, name).toBeUndefined();
        const check = port.healthCheck!;
        if (check.protocol === 'TCP') continue;
        expect(check.path === '/' && traffic.has(check.port), `${name}: port ${port.port} checks ${check.protocol} ${check.port}${check.path}`).toBe(false);
      }
    }
  });
});

describe('what the clouds do with what the webhook avoids writing', () => {
  it("Without the webhook Azure probes Istio's port 80 with GET / on its nodePort, the failure this project prevents.", async () => {
    const service = allocate(fixture('istio-gateway-service.yaml'));
    const [result] = await runAzure(programs.azure, [{ name: 'plain', service, sku: 'standard', probeMode: 'servicenodeport' }]);
    expect(result!.rules.find((r) => r.port === 80)?.probe).toEqual({ protocol: 'Http', port: FIRST_NODE_PORT + 1, path: '/' });
  });

  it('The AWS controller reads health check port "15021" on instance targets as raw node port 15021, so the webhook writes the port name.', async () => {
    const service = fixture('service-aws-nlb.yaml');
    annotate({ [`${AWS}healthcheck-protocol`]: 'http', [`${AWS}healthcheck-port`]: '15021', [`${AWS}healthcheck-path`]: READY })(service);
    const [result] = await runAws(programs.aws, [{ name: 'number', service: allocate(service), defaultTargetType: 'instance' }]);
    expect(result!.ports[0]?.healthCheck).toEqual({ protocol: 'HTTP', port: '15021', path: READY });
    expect(result!.ports[0]?.healthCheck?.port).not.toBe(String(FIRST_NODE_PORT));
  });

  it('The AWS controller refuses a named health check port with ip targets when its targetPort is a name, so the webhook writes nothing there.', async () => {
    const service = fixture('service-aws-nlb.yaml');
    both(annotate({ [`${AWS}nlb-target-type`]: 'ip', [`${AWS}healthcheck-port`]: 'status-port' }), statusTargetPort('status'))(service);
    const [result] = await runAws(programs.aws, [{ name: 'named', service: allocate(service), defaultTargetType: 'instance' }]);
    expect(result!.ports[0]?.error).toBe('cannot use named healthCheckPort for IP TargetType when service\'s targetPort is a named port');
  });

  it('Azure fails the whole Service when health-probe_port names a port the Service lacks, so the webhook never writes one.', async () => {
    const service = fixture('istio-gateway-service.yaml');
    annotate({ [`${AZ}port_80_health-probe_protocol`]: 'http', [`${AZ}port_80_health-probe_port`]: 'health' })(service);
    const [result] = await runAzure(programs.azure, [{ name: 'unknown', service: allocate(service), sku: 'standard', probeMode: 'servicenodeport' }]);
    expect(result!.error).toMatch(/^failed to parse annotation/);
  });
});

// AWS ALB cases -----------------------------------------------------------------------------------

const ALB = 'alb.ingress.kubernetes.io/';

interface AlbCase {
  readonly name: string;
  readonly input: Input;
  readonly policy: Record<string, unknown>;
  /** ingress holds the annotations of the Ingress whose backend the Service is. */
  readonly ingress?: Record<string, string>;
  readonly check: { targetType: string; protocol: string; port: PortRef | 'traffic-port'; path: string };
  readonly warnings?: readonly string[];
}

const nodePortType = spec({ type: 'NodePort' });
const ALB_ON = { aws: { alb: true } };
const IP_INGRESS = { [`${ALB}target-type`]: 'ip' };

const ALB_CASES: AlbCase[] = [
  {
    name: 'a NodePort ingress-nginx backend is checked with GET /healthz on the traffic port of its instance targets',
    input: { fixture: 'ingress-nginx-controller.yaml', edit: nodePortType },
    policy: ALB_ON,
    check: { targetType: 'instance', protocol: 'HTTP', port: 'traffic-port', path: '/healthz' },
  },
  {
    name: 'a NodePort ingress-nginx backend behind an Ingress with ip targets is checked with GET /healthz on the traffic port of the pods',
    input: { fixture: 'ingress-nginx-controller.yaml', edit: nodePortType },
    policy: ALB_ON,
    ingress: IP_INGRESS,
    check: { targetType: 'ip', protocol: 'HTTP', port: 'traffic-port', path: '/healthz' },
  },
  {
    name: "a NodePort classic Istio gateway backend is checked with GET /healthz/ready on the status port's nodePort",
    input: { fixture: 'istio-classic-ingressgateway.yaml', edit: nodePortType },
    policy: ALB_ON,
    check: { targetType: 'instance', protocol: 'HTTP', port: { nodePortOf: 15021 }, path: READY },
  },
  {
    name: "a classic Istio gateway backend behind an Ingress with ip targets is checked on the status port's targetPort",
    input: { fixture: 'istio-classic-ingressgateway.yaml', edit: nodePortType },
    policy: ALB_ON,
    ingress: IP_INGRESS,
    check: { targetType: 'ip', protocol: 'HTTP', port: { targetPortOf: 15021 }, path: READY },
  },
  {
    name: 'a classic Istio gateway whose status targetPort is a name is left alone with a warning, so the controller, with ip targets, still builds its default check',
    input: { fixture: 'istio-classic-ingressgateway.yaml', edit: both(nodePortType, statusTargetPort('status')) },
    policy: ALB_ON,
    ingress: IP_INGRESS,
    check: { targetType: 'ip', protocol: 'HTTP', port: 'traffic-port', path: '/' },
    warnings: [
      `AWS ALB: give port 15021 (status-port) a numeric targetPort or set ${ALB}target-type: instance on the Service: with ip targets the controller refuses a health check port whose targetPort is a name (status); its check stays GET / on the traffic port (profile istio)`,
    ],
  },
  {
    name: 'without aws.alb a NodePort ingress-nginx backend keeps the controller default, GET / on the traffic port (the failure)',
    input: { fixture: 'ingress-nginx-controller.yaml', edit: nodePortType },
    policy: {},
    check: { targetType: 'instance', protocol: 'HTTP', port: 'traffic-port', path: '/' },
  },
];

describe.each(SOURCES)('aws-load-balancer-controller v2.17.1 Ingress (ALB) reads $title on backend Services', ({ source }) => {
  const albResults = new Map<string, { result: AlbResult; service: JsonObject; warnings: readonly string[] }>();
  beforeAll(async () => {
    const rendered = await servicesFrom(source, 'aws', ALB_CASES);
    const results = await runAlb(
      programPaths().alb,
      ALB_CASES.map((c) => ({ name: c.name, service: rendered.get(c.name)!.service, ingressAnnotations: c.ingress ?? {} })),
    );
    for (const result of results) albResults.set(result.name, { result, ...rendered.get(result.name)! });
  }, 300_000);

  it.each(ALB_CASES.map((c) => [c.name, c] as const))('%s.', (_name, c) => {
    const { result, service, warnings } = albResults.get(c.name)!;
    if (source === 'render') expect(warnings).toEqual(c.warnings ?? []);
    expect(result.error).toBeUndefined();
    expect(result.targetType).toBe(c.check.targetType);
    expect(result.healthCheck).toEqual({
      protocol: c.check.protocol,
      port: c.check.port === 'traffic-port' ? 'traffic-port' : String(resolve(service, c.check.port)),
      path: c.check.path,
    });
  });

  it('The controller refuses a named health check port with ip targets when its targetPort is a name, so the webhook writes nothing there.', async () => {
    const service = fixture('istio-classic-ingressgateway.yaml');
    both(nodePortType, statusTargetPort('status'), annotate({ [`${ALB}healthcheck-port`]: 'status-port' }))(service);
    const [result] = await runAlb(programPaths().alb, [{ name: 'named', service: allocate(service), ingressAnnotations: IP_INGRESS }]);
    expect(result!.error).toBe("cannot use named healthCheckPort for IP TargetType when service's targetPort is a named port");
  });
});
