/**
 * The conformance harness: the webhook's output fed to each cloud controller's own probe code.
 * The programs are built by test/conformance/build.sh (npm run conformance) from the pinned upstream
 * modules; this module finds them, simulates what the API server does after admission (defaults and
 * node port allocation), and runs them over a batch of Services.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JsonObject } from '../../src/core/json.js';

const BUILD = fileURLToPath(new URL('./build.sh', import.meta.url));

/** programPaths returns the cached program of each cloud, failing with what to run when one is missing. */
export function programPaths(): { azure: string; aws: string; alb: string } {
  const out = execFileSync('bash', [BUILD, '--print'], { encoding: 'utf8' });
  const paths = Object.fromEntries(out.trim().split('\n').map((line) => line.split('=', 2) as [string, string]));
  const azure = paths['AZURE_PROBES'] ?? '';
  const aws = paths['AWS_PROBES'] ?? '';
  const alb = paths['AWS_ALB_PROBES'] ?? '';
  for (const path of [azure, aws, alb]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run conformance\` first (npm test does)`);
  }
  return { azure, aws, alb };
}

/** FIRST_NODE_PORT is where the simulated allocation starts; port i of a Service gets FIRST_NODE_PORT + i. */
export const FIRST_NODE_PORT = 30100;

/** HEALTH_CHECK_NODE_PORT is the simulated healthCheckNodePort of every externalTrafficPolicy Local Service. */
export const HEALTH_CHECK_NODE_PORT = 32456;

/**
 * allocate returns the Service as the API server stores it after admission: protocol and targetPort
 * defaulted (targetPort = port), externalTrafficPolicy Cluster by default, a nodePort per port and a
 * healthCheckNodePort for externalTrafficPolicy Local (kubernetes pkg/apis/core/v1/defaults.go,
 * pkg/registry/core/service/storage). The numbers are fixed so tests can name the expected node port.
 */
export function allocate(service: JsonObject): JsonObject {
  const copy = structuredClone(service);
  const spec = copy['spec'] as JsonObject;
  spec['externalTrafficPolicy'] ??= 'Cluster';
  const ports = (spec['ports'] ?? []) as JsonObject[];
  ports.forEach((port, i) => {
    port['protocol'] ??= 'TCP';
    port['targetPort'] ??= port['port'];
    port['nodePort'] = FIRST_NODE_PORT + i;
  });
  if (spec['externalTrafficPolicy'] === 'Local') spec['healthCheckNodePort'] = HEALTH_CHECK_NODE_PORT;
  return copy;
}

/** AzureProbe is a health probe as cloud-provider-azure builds it. */
export interface AzureProbe {
  readonly protocol: string;
  readonly port: number;
  readonly path?: string;
}

/** AzureResult is one Service's load-balancing rules (one per Service port that gets a rule), each with its probe. */
export interface AzureResult {
  readonly name: string;
  readonly rules: readonly { port: number; protocol: string; probe: AzureProbe | null }[];
  readonly error?: string;
}

/** AwsHealthCheck is a target group health check as the AWS Load Balancer Controller builds it. */
export interface AwsHealthCheck {
  readonly protocol: string;
  /** port is `traffic-port` or a number, as a string. */
  readonly port: string;
  readonly path?: string;
}

/** AwsResult is whether the controller reconciles the Service and, per Service port, its target type and health check. */
export interface AwsResult {
  readonly name: string;
  readonly supported: boolean;
  readonly ports: readonly { port: number; targetType?: string; healthCheck?: AwsHealthCheck; error?: string }[];
}

/** AzureInput is one Service for the Azure program, with the cloud config it runs under. */
export interface AzureInput {
  readonly name: string;
  readonly service: JsonObject;
  readonly sku: 'standard' | 'basic';
  readonly probeMode: 'servicenodeport' | 'shared';
}

/** AwsInput is one Service for the AWS program, with the controller's --default-target-type. */
export interface AwsInput {
  readonly name: string;
  readonly service: JsonObject;
  readonly defaultTargetType: 'instance' | 'ip';
}

function runProgram<T>(path: string, input: unknown): Promise<T> {
  const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(JSON.stringify(input));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${path} exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as T);
    });
  });
}

/** runAzure runs cloud-provider-azure's getExpectedLBRules over a batch of Services. */
export function runAzure(path: string, inputs: readonly AzureInput[]): Promise<AzureResult[]> {
  return runProgram<AzureResult[]>(path, inputs);
}

/** runAws runs the AWS Load Balancer Controller's target type and health check builders over a batch of Services. */
export function runAws(path: string, inputs: readonly AwsInput[]): Promise<AwsResult[]> {
  return runProgram<AwsResult[]>(path, inputs);
}

/** AlbInput is one backend Service for the ALB program, with the annotations of the Ingress that points at it. */
export interface AlbInput {
  readonly name: string;
  readonly service: JsonObject;
  readonly ingressAnnotations?: Readonly<Record<string, string>>;
}

/** AlbResult is the target type and target group health check the ALB Ingress builder derives for a backend Service, or its error. */
export interface AlbResult {
  readonly name: string;
  readonly targetType?: string;
  readonly healthCheck?: AwsHealthCheck;
  readonly error?: string;
}

/** runAlb runs the AWS Load Balancer Controller's Ingress (ALB) target group health check builder over a batch of backend Services. */
export function runAlb(path: string, inputs: readonly AlbInput[]): Promise<AlbResult[]> {
  return runProgram<AlbResult[]>(path, inputs);
}
