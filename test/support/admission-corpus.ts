/**
 * The corpus the compiled admission policy is compared on: every fixture, every policy the README
 * and docs/ show, and generated policies and objects (fast-check). The generators draw from pools that hit
 * the decision's branches: every provider and profile, rules with globs and labels, the override
 * annotation, annotations already set, AWS ownership and target types, Gateways of Istio's class
 * and others with and without spec.infrastructure, maps near the 256 KiB limit. The objects are
 * ones the API server stores (valid names, unique ports), so a difference is a difference of the
 * two mutations, not of validation.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parseAllDocuments, parseDocument, stringify } from 'yaml';
import { compileAdmissionPolicy } from '../../src/admission-policy/compile.js';
import type { JsonObject } from '../../src/core/json.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { FIXTURES, fixtures } from './fixtures.js';

const ROOT = new URL('../../', import.meta.url);

/** DOC_FILES are the README and every page of docs/, relative to the repository's root. */
function docFiles(): string[] {
  const pages = readdirSync(fileURLToPath(new URL('docs/', ROOT)))
    .filter((f) => f.endsWith('.md'))
    .sort();
  return ['README.md', ...pages.map((f) => `docs/${f}`)];
}

/** NAMESPACES are the namespaces the corpus puts objects in; rules match some of them by glob. */
export const NAMESPACES = ['default', 'kserve', 'team-a', 'team-b7', 'istio-ingress', 'prod-1', 'ingress-nginx', 'haproxy-controller'] as const;

const GLOBS = ['kserve', 'team-*', 'prod-?', '*', 'ingress-nginx', 'team-b?', 'k*e', 'nomatch', 'istio-*'];
const LABELS: readonly (readonly [string, string])[] = [
  ['gateway.istio.io/managed', 'istio.io-gateway-controller'],
  ['istio', 'ingressgateway'],
  ['app', 'istio-ingressgateway'],
  ['app', 'my-proxy'],
  ['app.kubernetes.io/name', 'ingress-nginx'],
  ['app.kubernetes.io/component', 'controller'],
  ['app.kubernetes.io/name', 'kubernetes-ingress'],
  ['team', 'a'],
];
const AZ = 'service.beta.kubernetes.io/';
const BIG_KEY = 'example.com/big';
/** A value that brings the annotations to a few bytes under or over 256 KiB once the webhook adds its keys. */
const bigValue = (slack: number): string => 'x'.repeat(256 * 1024 - BIG_KEY.length - slack);
/** PROBE_KEYS are annotations the providers write, with a value they write and one they do not: already there, they make a group conflict or be left as it is. */
const PROBE_KEYS: readonly (readonly [string, fc.Arbitrary<string>])[] = [
  [`${AZ}port_80_health-probe_protocol`, fc.constantFrom('tcp', 'http')],
  [`${AZ}port_80_health-probe_port`, fc.constantFrom('status-port', '15021')],
  [`${AZ}port_443_health-probe_protocol`, fc.constantFrom('tcp', 'Tcp', 'http')],
  [`${AZ}port_8080_health-probe_request-path`, fc.constantFrom('/healthz/ready', '/')],
  [`${AZ}port_15021_no_lb_rule`, fc.constantFrom('true', 'false')],
  [`${AZ}aws-load-balancer-healthcheck-protocol`, fc.constantFrom('http', 'tcp')],
  [`${AZ}aws-load-balancer-healthcheck-port`, fc.constantFrom('status-port', 'traffic-port')],
  ['alb.ingress.kubernetes.io/healthcheck-path', fc.constantFrom('/healthz/ready', '/')],
  [`${AZ}do-loadbalancer-healthcheck-port`, fc.constantFrom('15021', '80')],
  ['example.com/port-80-probe', fc.constantFrom('tcp', 'http:status-port/healthz/ready')],
  ['example.com/probe-owner', fc.constantFrom('lb-probe-webhook', 'someone')],
  ['example.com/probe', fc.constantFrom('tcp', '')],
];
/** OTHER_KEYS are annotations the decision reads: the override, AWS ownership and target type, Istio's, and a map near 256 KiB. */
const OTHER_KEYS: readonly (readonly [string, fc.Arbitrary<string>])[] = [
  ['lb-probe-webhook/probe', fc.constantFrom('tcp', 'readiness', 'kube-proxy', 'none', 'bogus')],
  [`${AZ}aws-load-balancer-type`, fc.constantFrom('external', 'nlb-ip', 'nlb')],
  [`${AZ}aws-load-balancer-nlb-target-type`, fc.constantFrom('ip', 'instance', 'IP')],
  ['alb.ingress.kubernetes.io/target-type', fc.constantFrom('instance', 'ip')],
  ['networking.istio.io/service-type', fc.constantFrom('LoadBalancer', 'LoadBalancer', 'ClusterIP')],
  ['gateway.networking.k8s.io/owner', fc.constant('x')],
  ['kubectl.kubernetes.io/last-applied-configuration', fc.constant('{}')],
  [`${AZ}azure-load-balancer-internal`, fc.constant('true')],
  [BIG_KEY, fc.constantFrom(60, 100, 200, 400, 1000, 6000).map(bigValue)],
];
const ANNOTATIONS = [...PROBE_KEYS, ...OTHER_KEYS];

/** subsetOf draws a few entries of a pool as a map, later entries winning on a repeated key. */
function mapOf(pool: readonly (readonly [string, fc.Arbitrary<string>])[], max: number): fc.Arbitrary<Record<string, string>> {
  return fc
    .subarray([...pool], { maxLength: max })
    .chain((entries): fc.Arbitrary<(readonly [string, string])[]> =>
      entries.length === 0 ? fc.constant([]) : fc.tuple(...entries.map(([k, v]) => v.map((value) => [k, value] as const))),
    )
    .map((entries) => Object.fromEntries(entries));
}

const labelsArb = fc.subarray([...LABELS], { maxLength: 3 }).map((entries) => Object.fromEntries(entries));
const annotationsArb = fc.tuple(mapOf(PROBE_KEYS, 3), mapOf(OTHER_KEYS, 2)).map(([a, b]) => ({ ...a, ...b }));

/** presetsArb draws, per port, whether an Azure probe protocol is already set on it and to what (so groups conflict, or are already right). */
const presetsArb = fc.array(fc.constantFrom(undefined, undefined, undefined, 'tcp', 'http', 'Tcp'), { minLength: 6, maxLength: 6 });
function presetAnnotations(ports: readonly { port: number }[], presets: readonly (string | undefined)[]): Record<string, string> {
  return Object.fromEntries(ports.flatMap((p, i) => (presets[i] === undefined ? [] : [[`${AZ}port_${p.port}_health-probe_protocol`, presets[i]]])));
}

const PORT_NAMES = ['http', 'https', 'status-port', 'tls', 'grpc', 'admin', '8080', 'http2', 'metrics', 'web'];
const portArb = fc.record(
  {
    port: fc.constantFrom(80, 443, 15021, 8080, 8443, 1042, 9000),
    protocol: fc.constantFrom('TCP', 'TCP', 'UDP'),
    appProtocol: fc.constantFrom('http', 'http', 'https', 'https', 'HTTP', 'Https', 'tcp', 'kubernetes.io/h2c', 'grpc'),
    targetPort: fc.oneof(fc.constantFrom(8080, 15021, 80), fc.constantFrom('http', 'status', 'https')),
  },
  { requiredKeys: ['port'] },
);

/** serviceArb draws a Service the API server stores: named ports when there are several, unique port and protocol. */
export const serviceArb: fc.Arbitrary<JsonObject> = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    labels: labelsArb,
    annotations: annotationsArb,
    type: fc.constantFrom('LoadBalancer', 'LoadBalancer', 'LoadBalancer', 'LoadBalancer', 'LoadBalancer', 'ClusterIP', 'NodePort'),
    loadBalancerClass: fc.option(fc.constantFrom('service.k8s.aws/nlb', 'example.com/lb'), { nil: undefined }),
    externalTrafficPolicy: fc.option(fc.constantFrom('Local', 'Cluster'), { nil: undefined }),
    ports: fc.uniqueArray(portArb, { minLength: 1, maxLength: 6, selector: (p) => `${p.port}/${p.protocol ?? 'TCP'}` }),
    names: fc.shuffledSubarray(PORT_NAMES, { minLength: 6, maxLength: 6 }),
    unnamed: fc.boolean(),
    presets: presetsArb,
  })
  .map((s) => {
    const ports = s.ports.map((p, i) => ({ ...((s.ports.length > 1 || !s.unnamed) && { name: s.names[i] }), ...p }));
    const lb = s.type === 'LoadBalancer';
    return {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'x', namespace: s.namespace, labels: s.labels, annotations: { ...presetAnnotations(ports, s.presets), ...s.annotations } },
      spec: {
        type: s.type,
        selector: { app: 'x' },
        ports,
        ...(lb && s.loadBalancerClass !== undefined && { loadBalancerClass: s.loadBalancerClass }),
        ...(s.type !== 'ClusterIP' && s.externalTrafficPolicy !== undefined && { externalTrafficPolicy: s.externalTrafficPolicy }),
      },
    };
  });

const listenerArb = fc.record({
  port: fc.constantFrom(80, 443, 15021, 8080, 9443),
  protocol: fc.constantFrom('HTTP', 'HTTP', 'HTTPS', 'TLS', 'TCP'),
});

/** gatewayArb draws a Gateway the API server stores, of class istio or another, with or without spec.infrastructure. */
export const gatewayArb: fc.Arbitrary<JsonObject> = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    apiVersion: fc.constantFrom('gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'),
    labels: labelsArb,
    annotations: annotationsArb.map((a) => Object.fromEntries(Object.entries(a).filter(([k]) => k !== BIG_KEY))),
    className: fc.constantFrom('istio', 'istio', 'other'),
    listeners: fc.uniqueArray(listenerArb, { minLength: 1, maxLength: 4, selector: (l) => `${l.port}/${l.protocol}` }),
    presets: presetsArb,
    presetInInfrastructure: fc.boolean(),
    infrastructure: fc.option(
      fc.record({ annotations: fc.option(mapOf(ANNOTATIONS.filter(([k]) => k !== BIG_KEY), 6), { nil: undefined }), labels: fc.option(fc.constant({ tier: 'edge' }), { nil: undefined }) }),
      { nil: undefined },
    ),
  })
  .map((g) => {
    const presets = presetAnnotations(g.listeners, g.presets);
    const infrastructure = g.infrastructure === undefined ? undefined : { ...g.infrastructure, ...(g.presetInInfrastructure && { annotations: { ...g.infrastructure.annotations, ...presets } }) };
    return {
    apiVersion: g.apiVersion,
    kind: 'Gateway',
    metadata: { name: 'x', namespace: g.namespace, labels: g.labels, annotations: { ...(!g.presetInInfrastructure && presets), ...g.annotations } },
    spec: {
      gatewayClassName: g.className,
      listeners: g.listeners.map((l, i) => ({
        name: `l${i}-${l.protocol.toLowerCase()}`,
        port: l.port,
        protocol: l.protocol,
        ...(l.protocol === 'HTTPS' && { tls: { mode: 'Terminate', certificateRefs: [{ name: 'cert' }] } }),
        ...(l.protocol === 'TLS' && { hostname: 'tls.example.com', tls: { mode: 'Passthrough' } }),
      })),
      ...(infrastructure !== undefined && {
        infrastructure: { ...(infrastructure.annotations && { annotations: infrastructure.annotations }), ...(infrastructure.labels && { labels: infrastructure.labels }) },
      }),
    },
  };
  });

/** objectArb draws a Service or a Gateway. */
export const objectArb: fc.Arbitrary<JsonObject> = fc.oneof({ weight: 3, arbitrary: serviceArb }, { weight: 2, arbitrary: gatewayArb });

const PROBES = ['tcp', 'readiness', 'kube-proxy', 'none'] as const;
const readinessArb = fc.record(
  { port: fc.constantFrom<string | number>('status-port', 15021, 'http', 'admin', 8080, 'metrics'), path: fc.constantFrom('/healthz/ready', '/ready', '/healthz', '/x{port}') },
  { requiredKeys: [] },
);
const TEMPLATE_KEYS = ['example.com/port-{port}-probe', 'example.com/probe', 'example.com/{readinessPort}-{port}', 'x.io/p{port}', 'example.com/probe-owner'];
const TEMPLATE_VALUES = ['tcp', 'http:{readinessPort}{readinessPath}', '{port}', 'lb-probe-webhook', ''];
const templatesArb = fc.record({
  perPort: fc.dictionary(fc.constantFrom(...TEMPLATE_KEYS.slice(0, 4)), fc.constantFrom(...TEMPLATE_VALUES), { maxKeys: 3 }),
  perService: fc.dictionary(fc.constantFrom('example.com/probe-owner', 'example.com/check'), fc.constantFrom(...TEMPLATE_VALUES), { maxKeys: 2 }),
});
const ruleArb = fc
  .record(
    {
      match: fc.record(
        {
          namespaces: fc.subarray(GLOBS, { minLength: 1, maxLength: 2 }),
          labels: fc.subarray([...LABELS], { minLength: 1, maxLength: 2 }).map((e) => Object.fromEntries(e)),
        },
        { requiredKeys: [] },
      ),
      probe: fc.constantFrom(...PROBES),
      readiness: readinessArb,
    },
    { requiredKeys: ['match'] },
  )
  .filter((r) => r.probe !== undefined || r.readiness !== undefined);

/** policyArb draws a policy file's settings the compiler accepts (the webhook's refusals aside, see refused). */
export const policyArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      provider: fc.oneof(
        { weight: 5, arbitrary: fc.constant('azure') },
        { weight: 4, arbitrary: fc.constant('aws') },
        { weight: 3, arbitrary: fc.constant('custom') },
        { weight: 2, arbitrary: fc.constant('digitalocean') },
        { weight: 2, arbitrary: fc.constantFrom('gcp', 'hetzner', 'linode', 'oci', 'alibaba', 'ibm') },
      ),
      mode: fc.constantFrom('enforce', 'enforce', 'enforce', 'enforce', 'enforce', 'enforce', 'enforce', 'warn'),
      probe: fc.constantFrom('tcp', 'tcp', 'readiness', 'readiness', 'readiness', 'kube-proxy', 'none'),
      readiness: readinessArb,
      overwrite: fc.boolean(),
      kinds: fc.constantFrom(['Service', 'Gateway'], ['Service', 'Gateway'], ['Service', 'Gateway'], ['Service', 'Gateway'], ['Service'], ['Gateway']),
      gateway: fc.record({ annotationsTarget: fc.constantFrom('auto', 'infrastructure', 'metadata'), maxInfrastructureAnnotations: fc.integer({ min: 1, max: 16 }) }, { requiredKeys: [] }),
      profiles: fc.subarray(['haproxy-ingress', 'ingress-nginx', 'istio']),
      azure: fc.record({ hideStatusPort: fc.boolean() }),
      aws: fc.record({ defaultTargetType: fc.constantFrom('instance', 'ip'), alb: fc.boolean() }),
      custom: fc.record({ tcp: templatesArb, readiness: templatesArb, 'kube-proxy': templatesArb }, { requiredKeys: [] }),
      rules: fc.array(ruleArb, { maxLength: 3 }),
    },
    { requiredKeys: ['provider'] },
  )
  .map((p) => {
    const { custom, aws, azure, ...rest } = p;
    return {
      ...rest,
      ...(p.provider === 'custom' && { custom: custom ?? { tcp: { perPort: { 'example.com/port-{port}-probe': 'tcp' } } } }),
      ...(p.provider === 'aws' && aws !== undefined && { aws }),
      ...(p.provider === 'azure' && azure !== undefined && { azure }),
    };
  })
  .filter((p) => accepted(p));

/** accepted tells whether the webhook's parser takes the policy and the compiler compiles it. */
export function accepted(settings: Record<string, unknown>): boolean {
  try {
    return !('refusals' in compileAdmissionPolicy(parsePolicy(stringify(settings))));
  } catch {
    return false;
  }
}

/** fixtureObjects returns every object of every fixture file, with the file's name. */
export function fixtureObjects(): { name: string; object: JsonObject }[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((file) => fixtures(file).map((object, i) => ({ name: `${file}#${i}`, object })));
}

/**
 * README_SHAPES are the policies the README's tables and paragraphs describe without a yaml block
 * of their own: each provider with each probe (Providers), the provider settings, the Gateway
 * targets, the modes and switches (Policy reference).
 */
const README_SHAPES: readonly { name: string; text: string }[] = [
  ...['azure', 'aws', 'gcp', 'digitalocean', 'hetzner', 'linode', 'oci', 'alibaba', 'ibm'].flatMap((provider) =>
    ['tcp', 'readiness', 'kube-proxy'].map((probe) => ({ name: `Providers: ${provider}, probe ${probe}`, text: `provider: ${provider}\nprobe: ${probe}\n` })),
  ),
  { name: 'Providers: azure.hideStatusPort', text: 'provider: azure\nprobe: readiness\nazure: { hideStatusPort: true }\n' },
  { name: 'Profiles: aws with aws.alb, probe tcp', text: 'provider: aws\naws: { alb: true }\n' },
  { name: 'Profiles: aws with aws.alb, probe readiness', text: 'provider: aws\nprobe: readiness\naws: { alb: true }\n' },
  { name: 'Policy reference: aws.defaultTargetType ip', text: 'provider: aws\nprobe: readiness\naws: { defaultTargetType: ip }\n' },
  { name: 'What it changes: gateway.annotationsTarget infrastructure', text: 'provider: azure\ngateway: { annotationsTarget: infrastructure }\n' },
  { name: 'Policy reference: gateway.annotationsTarget metadata, 16 entries', text: 'provider: azure\ngateway: { annotationsTarget: metadata, maxInfrastructureAnnotations: 16 }\n' },
  { name: 'Policy reference: mode warn', text: 'provider: azure\nmode: warn\n' },
  { name: 'What it changes: overwrite true', text: 'provider: azure\nprobe: readiness\noverwrite: true\n' },
  { name: 'Policy reference: probe none', text: 'provider: azure\nprobe: none\n' },
  { name: 'Policy reference: kinds Service', text: 'provider: azure\nkinds: [Service]\n' },
  { name: 'Profiles: no profiles', text: 'provider: azure\nprobe: readiness\nprofiles: []\n' },
];

/**
 * docPolicies returns every policy the README and the pages of docs/ show that the compiler
 * compiles: each yaml block, and each policy file a console example writes with printf, that is a policy (it has a provider, or rules or custom with the
 * provider they go with), as the text of a policy file, and the README_SHAPES. A block the compiler
 * refuses on purpose (docs/admission-policy.md shows one) is left out: it has nothing to compare.
 */
export function docPolicies(): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  for (const file of docFiles()) {
    const text = readFileSync(fileURLToPath(new URL(file, ROOT)), 'utf8');
    // yaml blocks, and the files console examples write with printf ('provider: aws\nprobe: readiness\n').
    const blocks = [
      ...[...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => ({ where: 'yaml block', block: m[1] ?? '' })),
      ...[...text.matchAll(/^\$ printf '([^']*)' > \S+\.yaml$/gm)].map((m) => ({ where: 'printf', block: (m[1] ?? '').replaceAll('\\n', '\n') })),
    ];
    blocks.forEach(({ where, block }, i) => {
      const value = parseDocument(block).toJS() as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      const keys = Object.keys(value);
      if (!keys.some((k) => ['provider', 'rules', 'custom', 'probe'].includes(k))) return;
      const policy = keys.includes('provider') ? block : `provider: azure\n${block}`;
      try {
        if ('refusals' in compileAdmissionPolicy(parsePolicy(policy))) return;
      } catch {
        return;
      }
      out.push({ name: `${file} ${where} ${i + 1}`, text: policy });
    });
  }
  return [...out, ...README_SHAPES];
}

/** documents parses a multi-document YAML text into objects. */
export function documents(text: string): JsonObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as JsonObject);
}
