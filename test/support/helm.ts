/**
 * The Helm side of the end-to-end tests: the helm CLI that test/helm/build.sh builds from the Go module
 * proxy, run as a process against the test control plane, and the renderings of the chart and of
 * the kustomize overlays in a form that can be compared.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { runBuildScript, runCommand } from './controlplane.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILD_SCRIPT = join(ROOT, 'test/helm/build.sh');

/** CHART is the chart's directory. */
export const CHART = join(ROOT, 'charts/lb-probe-webhook');

/** HelmTools are what build.sh made: the helm binary, the CRD directories and rulecheck (Prometheus's rule loader). */
export interface HelmTools {
  readonly helm: string;
  /** helm3 is a Helm v3 build, for the compatibility checks. */
  readonly helm3: string;
  readonly prometheusCrds: string;
  readonly certManagerCrds: string;
  readonly rulecheck: string;
}

/** ensureHelm builds helm and fetches the CRDs when they are missing (cached afterwards) and returns their paths. */
export function ensureHelm(): HelmTools {
  const value = runBuildScript(BUILD_SCRIPT);
  return { helm: value('HELM'), helm3: value('HELM3'), prometheusCrds: value('PROMETHEUS_CRDS'), certManagerCrds: value('CERT_MANAGER_CRDS'), rulecheck: value('RULECHECK') };
}

/** RunResult is a finished process's exit code and output. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Helm runs the helm CLI with arguments, against the test control plane. */
export type Helm = (args: readonly string[]) => Promise<RunResult>;

/** Object is one Kubernetes object as parsed from YAML. */
export type K8sObject = Record<string, any>;

/**
 * helmRunner returns a Helm that talks to the cluster of kubeconfig and keeps its own state
 * (cache, config, repositories) under home, never the user's.
 */
export function helmRunner(helm: string, kubeconfig: string, home: string): Helm {
  const env = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  return (args) => runCommand(helm, args, '', env);
}

/** valuesFile writes values as a file helm can read with -f (JSON is YAML). */
export function valuesFile(dir: string, name: string, values: unknown): string {
  const path = join(dir, `${name}.values.yaml`);
  writeFileSync(path, JSON.stringify(values));
  return path;
}

/** parseObjects parses multi-document YAML into its non-empty objects. */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null && typeof d === 'object');
}

/** helmTemplate renders the chart as release `release` in namespace with values, throwing on failure. */
export async function helmTemplate(helm: Helm, dir: string, release: string, namespace: string, values: unknown): Promise<K8sObject[]> {
  const result = await helm(['template', release, CHART, '--namespace', namespace, '-f', valuesFile(dir, `${release}-${Date.now()}`, values)]);
  if (result.code !== 0) throw new Error(`helm template: ${result.stderr}`);
  return parseObjects(result.stdout);
}

/** kustomizeRender renders an overlay with components through kubectl's built-in kustomize. */
export function kustomizeRender(binDir: string, overlay: string, components: readonly string[]): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-kustomize-'));
  try {
    const rel = (path: string) => relative(dir, join(ROOT, path));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${rel(`manifests/overlays/${overlay}`)}]\ncomponents: [${components.map((c) => rel(`manifests/components/${c}`)).join(', ')}]\n`,
    );
    const out = spawnSync(join(binDir, 'kubectl'), ['kustomize', dir], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`kubectl kustomize: ${out.stderr}`);
    return parseObjects(out.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** HELM_ONLY_LABELS are the labels the chart adds that the kustomize base has no counterpart for. */
const HELM_ONLY_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance', 'app.kubernetes.io/version'];

function stripLabels(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripLabels);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (!HELM_ONLY_LABELS.includes(key)) out[key] = stripLabels(v);
  return out;
}

/**
 * normalise makes a rendering comparable: the labels only Helm adds are dropped (also from
 * selectors), the ConfigMap's kustomize name hash is removed, and certificate material is
 * dropped (the chart generates it; kustomize leaves it to cert-manager or the user), and the
 * whitespace of matchConditions expressions is collapsed. The policy stays as text; compare it
 * parsed.
 */
export function normalise(objects: readonly K8sObject[]): K8sObject[] {
  const text = JSON.stringify(objects.map(stripLabels)).replace(/"(lb-probe-webhook-policy)-[a-z0-9]{10}"/g, '"$1"');
  const out = JSON.parse(text) as K8sObject[];
  for (const object of out) {
    if (object.kind !== 'MutatingWebhookConfiguration') continue;
    for (const webhook of object.webhooks) {
      delete webhook.clientConfig.caBundle;
      // CEL ignores whitespace; kustomize re-serialises the folded YAML scalar with an extra line break.
      for (const condition of webhook.matchConditions ?? []) condition.expression = (condition.expression as string).replace(/\s+/g, ' ');
    }
  }
  return out.sort((a, b) => key(a).localeCompare(key(b)));
}

/** key names an object as kind/namespace/name. */
export function key(object: K8sObject): string {
  return `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name}`;
}
