/**
 * The admission policy compiler without an API server: what it refuses and why, the literals it
 * writes (Helm's toJson, byte for byte), the copies of its output that the chart and the kustomize
 * overlay carry, and the export command as a process. test/e2e/admission-policy.test.ts runs the
 * compiled policy on real API servers against the webhook.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { celLiteral, celString } from '../../src/admission-policy/cel.js';
import { ALB_MATCH_CONDITION, CHART_PROGRAM_FILE, chartProgram, compileAdmissionPolicy, MATCH_CONDITION } from '../../src/admission-policy/compile.js';
import { PROGRAM_PROFILES, PROVIDER_GROUPS } from '../../src/admission-policy/program.js';
import { mayCollide, MAX_CUSTOM_PER_PORT_TEMPLATES } from '../../src/admission-policy/settings.js';
import { PROFILE_NAMES } from '../../src/profiles/index.js';
import { PROVIDER_NAMES } from '../../src/providers/index.js';
import { runCli } from '../support/cli.js';
import { policy } from '../support/fixtures.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');
const objects = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Record<string, any>);

function compiled(settings: Record<string, unknown>) {
  const result = compileAdmissionPolicy(policy(settings));
  if ('refusals' in result) throw new Error(`refused: ${JSON.stringify(result.refusals)}`);
  return result;
}

function refusals(settings: Record<string, unknown>): string[] {
  const result = compileAdmissionPolicy(policy(settings));
  return 'refusals' in result ? result.refusals.map((r) => `${r.setting}: ${r.reason}`) : [];
}

describe('the compiled objects', () => {
  it('are a MutatingAdmissionPolicy and its binding, v1 by default, whose variables start with the policy\'s values and whose YAML is the objects', () => {
    const result = compiled({ provider: 'azure', probe: 'readiness' });
    expect(result.objects.map((o) => `${String(o['apiVersion'])} ${String(o['kind'])}`)).toEqual([
      'admissionregistration.k8s.io/v1 MutatingAdmissionPolicy',
      'admissionregistration.k8s.io/v1 MutatingAdmissionPolicyBinding',
    ]);
    expect(objects(result.yaml)).toEqual(result.objects);
    const spec = result.objects[0]?.['spec'] as Record<string, any>;
    expect(spec['failurePolicy']).toBe('Ignore');
    expect(spec['variables'].slice(0, 4)).toEqual([
      { name: 'provider', expression: '"azure"' },
      { name: 'mode', expression: '"enforce"' },
      { name: 'defaultProbe', expression: '"readiness"' },
      { name: 'readiness', expression: '{"path":"/healthz/ready","port":"status-port"}' },
    ]);
    expect(result.yaml).toContain('# The per-object override, lb-probe-webhook/probe; a value that is no probe setting is ignored.\n');
  });

  it('are the same text for the same policy, and v1beta1 with the other names and namespaces when asked', () => {
    const settings = { provider: 'aws', aws: { alb: true }, rules: [{ match: { namespaces: ['team-*'] }, probe: 'readiness' }] };
    expect(compiled(settings).yaml).toBe(compiled(settings).yaml);
    const result = compileAdmissionPolicy(policy(settings), { apiVersion: 'v1beta1', name: 'probes', selection: 'cluster-wide' });
    if ('refusals' in result) throw new Error('refused');
    expect(result.objects.map((o) => o['apiVersion'])).toEqual(['admissionregistration.k8s.io/v1beta1', 'admissionregistration.k8s.io/v1beta1']);
    expect((result.objects[1]?.['spec'] as any).policyName).toBe('probes');
    expect((result.objects[1]?.['spec'] as any).matchResources.namespaceSelector.matchExpressions[0].values).toEqual(['kube-system', 'kube-node-lease']);
    expect((result.objects[0]?.['spec'] as any).matchConditions[0].name).toBe('load-balanced-http-or-alb-backend');
  });

  it('write rule globs as anchored regular expressions with every other character literal, and kinds as resource rules', () => {
    const spec = compiled({ provider: 'azure', kinds: ['Gateway'], rules: [{ match: { namespaces: ['team-*', 'a.b?', '(x)'], labels: { app: 'web' } }, readiness: { port: 8080 } }] }).objects[0]?.['spec'] as any;
    expect(spec.variables.find((v: { name: string }) => v.name === 'rules').expression).toBe(
      '[{"labels":dyn({"app":"web"}),"namespaces":dyn(["^team-.*$","^a\\\\.b.$","^\\\\(x\\\\)$"]),"probe":dyn(null),"readiness":dyn({"path":"/healthz/ready","port":"8080"})}]',
    );
    expect(spec.matchConstraints.resourceRules.map((r: { resources: string[] }) => r.resources[0])).toEqual(['gateways']);
  });
});

describe('CEL literals', () => {
  it.each([
    ['plain', 'status-port', '"status-port"'],
    ['quotes and backslashes', 'a"b\\c', '"a\\"b\\\\c"'],
    ['HTML characters, as Go escapes them', '<a&b>', '"\\u003ca\\u0026b\\u003e"'],
    ['control characters and line separators', 'a\nb\u0001\u2028', '"a\\nb\\u0001\\u2028"'],
    ['characters outside the BMP, as they are', 'x😀', '"x😀"'],
  ])('a string with %s is written as Go\'s encoding/json writes it', (_name, value, literal) => {
    expect(celString(value)).toBe(literal);
  });

  it('a string with a lone surrogate, which no CEL literal can carry, is an error', () => {
    expect(() => celString('a\ud800')).toThrow(/lone surrogate/);
  });

  it('maps are written with their keys in byte order, compact', () => {
    expect(celLiteral({ b: 1, a: [true, null], 'é': 'x', Z: 'y' })).toBe('{"Z":"y","a":[true,null],"b":1,"é":"x"}');
  });
});

describe('what the compiler refuses, with the setting it names', () => {
  it(`more than ${MAX_CUSTOM_PER_PORT_TEMPLATES} custom per-port templates of one intent: their annotations for 4,096 ports exceed a CEL expression's cost budget`, () => {
    const perPort = Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [`example.com/${k}-{port}`, 'tcp']));
    expect(refusals({ provider: 'custom', custom: { tcp: { perPort } } })).toEqual([
      'custom.tcp.perPort: 4 templates, more than the 3 whose annotations for 4,096 ports fit in a CEL expression\'s cost budget',
    ]);
    expect(refusals({ provider: 'custom', custom: { tcp: { perPort: Object.fromEntries(Object.entries(perPort).slice(0, 3)) } } })).toEqual([]);
  });

  it('custom keys that may be filled into the same annotation: the webhook keeps the last value written, which the policy cannot know', () => {
    expect(refusals({ provider: 'custom', custom: { readiness: { perPort: { 'x.io/p{port}': 'a', 'x.io/p1{port}': 'b' } } } })).toEqual([
      'custom.readiness: perPort key "x.io/p{port}" and perPort key "x.io/p1{port}" may be filled into the same annotation, whose value the webhook takes from the last one written; give them a distinct beginning or end',
    ]);
    expect(refusals({ provider: 'custom', custom: { tcp: { perPort: { 'example.com/x': 'a' }, perService: { 'example.com/x': 'b' } } } })).toHaveLength(1);
  });

  it('a string the API server cannot be given as a CEL literal, naming where it is', () => {
    expect(refusals({ provider: 'azure', rules: [{ match: { labels: { app: 'a\ud800' } }, probe: 'tcp' }] })).toEqual([expect.stringMatching(/^rules: .*lone surrogate/)]);
  });

  it.each([
    ['example.com/port-{port}-probe', 'example.com/probe-owner', false],
    ['example.com/port-{port}-probe', 'example.com/port-{port}-path', false],
    ['example.com/probe', 'example.com/probe-owner', false],
    ['x.io/p{port}', 'x.io/p1{port}', true],
    ['a{port}', 'a80', true],
    ['example.com/{readinessPort}-{port}', 'example.com/{port}', true],
  ])('keys %s and %s may collide: %s', (a, b, expected) => {
    expect(mayCollide(a, b)).toBe(expected);
    expect(mayCollide(b, a)).toBe(expected);
  });
});

describe('the copies that must not drift', () => {
  it('the program knows every provider and profile of the registries (when one is added, teach it to program.ts, or export refuses it)', () => {
    expect(Object.keys(PROVIDER_GROUPS)).toEqual(PROVIDER_NAMES);
    expect(PROGRAM_PROFILES).toEqual(PROFILE_NAMES);
  });

  it('a policy whose provider or profile the program does not know is refused, naming the setting', () => {
    const known = policy({ provider: 'azure' });
    const unknown = { ...known, provider: 'example', profiles: [...known.profiles, { ...known.profiles[0]!, name: 'traefik' }] };
    const result = compileAdmissionPolicy(unknown);
    expect('refusals' in result && result.refusals.map((r) => r.setting)).toEqual(['provider', 'profiles']);
  });

  it(`the chart's ${CHART_PROGRAM_FILE} is the program (regenerate: node_modules/.bin/tsx test/helm/write-admission-policy-program.ts)`, () => {
    expect(read(`charts/lb-probe-webhook/${CHART_PROGRAM_FILE}`)).toBe(chartProgram());
  });

  it('the admission-policy overlay holds what export gives for the base policy (regenerate: lb-probe-webhook export admission-policy --policy manifests/base/policy.yaml)', () => {
    const result = compileAdmissionPolicy(policy(parse(read('manifests/base/policy.yaml')) as Record<string, unknown>));
    expect('yaml' in result && result.yaml).toBe(read('manifests/overlays/admission-policy/admission-policy.yaml'));
  });

  it('the matchConditions are the webhook registration\'s: the base\'s, and the aws-alb component\'s', () => {
    const base = parse(read('manifests/base/mutatingwebhookconfiguration.yaml'));
    expect(base.webhooks[0].matchConditions).toEqual([MATCH_CONDITION]);
    const component = parse((parse(read('manifests/components/aws-alb/kustomization.yaml'))).patches[0].patch);
    expect(component[0].value).toEqual(ALB_MATCH_CONDITION);
  });
});

describe('lb-probe-webhook export (the built CLI)', () => {
  it('export admission-policy prints the compiled objects for the policy file; --api-version v1beta1 and --namespaces cluster-wide change what they say', async () => {
    const out = await runCli(['export', 'admission-policy', '--policy', 'manifests/base/policy.yaml', '--api-version', 'v1beta1', '--namespaces', 'cluster-wide', '--name', 'probes']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const docs = objects(out.stdout);
    expect(docs.map((d) => `${d['apiVersion']} ${d['kind']} ${d['metadata'].name}`)).toEqual([
      'admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy probes',
      'admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicyBinding probes',
    ]);
    expect(docs[1]?.['spec'].matchResources.namespaceSelector.matchExpressions).toHaveLength(2);
  });

  it('a policy it cannot compile exactly is exit 2, one line naming the file, then one per setting; nothing on stdout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lbp-export-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      stringify({
        provider: 'custom',
        custom: { tcp: { perPort: Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [`example.com/${k}-{port}`, 'tcp'])), perService: { 'example.com/a-x': 'y' } } },
      }),
    );
    const out = await runCli(['export', 'admission-policy', '--policy', file]);
    rmSync(dir, { recursive: true, force: true });
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr.split('\n')).toEqual([
      `lb-probe-webhook export admission-policy: ${file}: a MutatingAdmissionPolicy cannot do exactly what the webhook does (2 settings); use the webhook for this policy`,
      `  ${file}: custom.tcp.perPort: 4 templates, more than the 3 whose annotations for 4,096 ports fit in a CEL expression's cost budget`,
      expect.stringMatching(new RegExp(`^  ${file}: custom.tcp: perPort key "example.com/a-\\{port\\}" and perService key "example.com/a-x" may be filled`)),
      '',
    ]);
  });

  it.each([
    [['export'], 'export needs a command; `lb-probe-webhook help export` lists them'],
    [['export', 'webhook', '--policy', 'manifests/base/policy.yaml'], 'unknown command "export webhook"; `lb-probe-webhook help export` lists them'],
    [['export', 'admission-policy'], '--policy is required'],
    [['export', 'admission-policy', '--policy', 'manifests/base/policy.yaml', '--api-version', 'v1alpha1'], '--api-version must be one of v1, v1beta1, got "v1alpha1"'],
    [['export', 'admission-policy', '--policy', 'manifests/base/policy.yaml', '--namespaces', 'all'], '--namespaces must be one of opt-in, cluster-wide, got "all"'],
    [['export', 'admission-policy', '--policy', 'manifests/base/policy.yaml', '--name', 'Probes'], '--name must be a DNS subdomain'],
    [['export', 'admission-policy', '--policy', 'manifests/base/policy.yaml', 'extra'], 'unexpected argument extra; this command takes no file arguments'],
  ])('%j is exit 2 with a usage message', async (args, message) => {
    const out = await runCli(args);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(message);
    expect(out.stdout).toBe('');
  });
});
