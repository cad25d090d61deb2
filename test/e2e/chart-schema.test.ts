/**
 * The chart's values.schema.json and the webhook's policy parser agree: the same generated
 * policies go to `helm template` (which validates the values against the schema, as `helm install`
 * does) and to parsePolicy (what `serve` runs at start and at every reload), and each must accept
 * exactly what the other accepts. Placeholders inside custom templates are the one documented
 * difference (the schema cannot know them), so the generated templates use known ones only.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { parsePolicy } from '../../src/policy/parse.js';
import { CHART, ensureHelm, helmRunner, valuesFile } from '../support/helm.js';

/** RUNS is how many generated policies go to both; each is one `helm template`. */
const RUNS = 400;

const absent = fc.constant(undefined);

/** Field is how one policy key is generated: a value both should accept (or the key left out, or null: back to the chart's default), and a wrong one. */
interface Field {
  readonly valid: fc.Arbitrary<unknown>;
  readonly wrong: fc.Arbitrary<unknown>;
}
const field = (valid: unknown[], wrong: unknown[]): Field => ({ valid: fc.oneof(absent, fc.constantFrom(...valid)), wrong: fc.constantFrom(...wrong) });

const PORTS_OK = ['status-port', 'http', 'a1', 15021, 1, 65535];
const PORTS_WRONG = [0, 70000, 'Status_Port', '8080', 'a--b', 'abcdefghijklmnop', '-a', 1.5, true];
const readiness = (): Field => ({
  valid: fc.oneof(absent, fc.record({ port: fc.oneof(absent, fc.constantFrom(...PORTS_OK, null)), path: fc.oneof(absent, fc.constantFrom('/healthz/ready', '/', '/a?b=c', null)) }, { requiredKeys: [] })),
  wrong: fc.oneof(
    fc.constantFrom('status-port', [], 5),
    fc.record({ port: fc.constantFrom(...PORTS_WRONG) }),
    fc.record({ path: fc.constantFrom('healthz', '/a b', '', 5) }),
    fc.constant({ port: 'http', bogus: 1 }),
  ),
});
const ruleMatch = fc.record({ namespaces: fc.oneof(absent, fc.constantFrom(['team-*'], ['a', 'b?'], [], null)), labels: fc.oneof(absent, fc.constantFrom({ app: 'x' }, {}, null)) }, { requiredKeys: [] });
const validRule = fc.oneof(
  fc.record({ match: ruleMatch, probe: fc.constantFrom('tcp', 'readiness', 'none') }),
  fc.record({ match: ruleMatch, readiness: readiness().valid.filter((r) => r !== undefined) }),
  fc.record({ match: ruleMatch, probe: fc.constantFrom('tcp', 'none', null), readiness: fc.constant({ port: 'admin' }) }),
  fc.record({ match: ruleMatch, probe: fc.constantFrom('tcp', 'none'), readiness: fc.constant(null) }),
);
const wrongRule = fc.oneof(
  fc.constantFrom(null, 'tcp', { probe: 'none' }, { match: {} }, { match: 'all', probe: 'tcp' }, { match: {}, probe: 'http' }, { match: {}, probe: null, readiness: null }),
  fc.constantFrom({ match: { namespaces: [''] }, probe: 'tcp' }, { match: { namespaces: 'team-a' }, probe: 'tcp' }, { match: { labels: { app: 1 } }, probe: 'tcp' }, { match: { bogus: 1 }, probe: 'tcp' }),
  fc.record({ match: ruleMatch, readiness: readiness().wrong }),
);

/** FIELDS are the policy's keys. */
const FIELDS: Readonly<Record<string, Field>> = {
  provider: field(['azure', 'aws', 'gcp', 'digitalocean', 'hetzner', 'linode', 'oci', 'alibaba', 'ibm', null], ['gce', 1, 'Azure']),
  mode: field(['enforce', 'warn', null], ['always', true]),
  probe: field(['tcp', 'readiness', 'none', null], ['http', 1]),
  readiness: readiness(),
  overwrite: field([true, false, null], ['yes', 1]),
  kinds: field([['Service'], ['Gateway', 'Service'], null], [[], ['Pod'], ['Service', 'Service'], 'Service']),
  gateway: {
    valid: fc.oneof(absent, fc.record({ annotationsTarget: fc.oneof(absent, fc.constantFrom('auto', 'infrastructure', 'metadata', null)), maxInfrastructureAnnotations: fc.oneof(absent, fc.constantFrom(1, 8, 16, null)) }, { requiredKeys: [] })),
    wrong: fc.constantFrom('auto', { annotationsTarget: 'spec' }, { maxInfrastructureAnnotations: 0 }, { maxInfrastructureAnnotations: 17 }, { maxInfrastructureAnnotations: 2.5 }, { maxInfrastructureAnnotations: '8' }),
  },
  profiles: field([[], ['istio'], ['ingress-nginx', 'haproxy-ingress'], null], [['istio', 'istio'], ['nginx'], 'istio']),
  azure: field([{ hideStatusPort: true }, { hideStatusPort: false }, { hideStatusPort: null }, {}], [true, { hideStatusPort: 'no' }, { bogus: 1 }]),
  aws: field([{ defaultTargetType: 'ip' }, { alb: true }, { defaultTargetType: 'instance', alb: false }, { defaultTargetType: null, alb: null }], [{ defaultTargetType: 'IP' }, { alb: 1 }, { bogus: 1 }]),
  custom: field([{}, { tcp: {} }, { tcp: null }, { tcp: { perPort: null } }], [{ tcp: { perPort: { 'not a key': 'x' } } }, { tcp: { perPort: { 'example.com/a': 1 } } }, { udp: {} }, 'templates']),
  rules: { valid: fc.oneof(absent, fc.array(validRule, { maxLength: 3 })), wrong: fc.oneof(fc.constantFrom('none', {}), fc.tuple(validRule, wrongRule).map(([a, b]) => [a, b])) },
  bogus: { valid: absent, wrong: fc.constant(1) },
};

/** CUSTOM is provider custom with templates (known placeholders only), or without any: both must refuse that. */
const CUSTOM = fc.constantFrom(
  { provider: 'custom', custom: { tcp: { perPort: { 'example.com/port-{port}': 'tcp' } } } },
  { provider: 'custom', custom: { readiness: { perService: { 'example.com/check': 'http:{readinessPort}{readinessPath}' } } } },
  { provider: 'custom', custom: { tcp: { perPort: {} } } },
  { provider: 'custom' },
  { provider: 'custom', custom: null },
  { provider: 'custom', custom: { tcp: null, readiness: { perPort: { 'example.com/p-{port}': 'http:{readinessPort}' } } } },
);

/** policies are policy values as a user writes them under `policy:`: valid keys, then none, one or two made wrong; sometimes provider custom. */
const policies = fc
  .tuple(
    fc.record(Object.fromEntries(Object.entries(FIELDS).map(([k, f]) => [k, f.valid]))),
    fc.uniqueArray(fc.constantFrom(...Object.keys(FIELDS)), { maxLength: 2 }),
    fc.option(CUSTOM, { freq: 6, nil: undefined }),
  )
  .chain(([valid, wrongKeys, custom]) =>
    fc.tuple(...wrongKeys.map((k) => (FIELDS[k] as Field).wrong)).map((wrongValues) => ({ ...valid, ...Object.fromEntries(wrongKeys.map((k, i) => [k, wrongValues[i]])), ...custom })),
  )
  .map((p) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)));

/**
 * SINGLE_FAULTS are one wrong value each, on an otherwise minimal policy: every kind of mistake the
 * generator knows is checked on every run, whatever the sample; the issue's `rules: [{probe: none}]`
 * among them.
 */
const SINGLE_FAULTS: readonly Record<string, unknown>[] = [
  ...['gce', 1].map((provider) => ({ provider })),
  ...[{ mode: 'always' }, { probe: 'http' }, { overwrite: 'yes' }, { kinds: [] }, { kinds: ['Service', 'Service'] }, { profiles: ['istio', 'istio'] }, { profiles: 'istio' }],
  ...PORTS_WRONG.map((port) => ({ readiness: { port } })),
  ...['healthz', '/a b', ''].map((path) => ({ readiness: { path } })),
  ...[{ annotationsTarget: 'spec' }, { maxInfrastructureAnnotations: 0 }, { maxInfrastructureAnnotations: 17 }, { maxInfrastructureAnnotations: 2.5 }].map((gateway) => ({ gateway })),
  { azure: { hideStatusPort: 'no' } },
  { aws: { defaultTargetType: 'IP' } },
  { custom: { tcp: { perPort: { 'example.com/a': 'x' } } } },
  ...[
    { probe: 'none' },
    { match: {} },
    { match: 'all', probe: 'tcp' },
    { match: {}, probe: 'http' },
    { match: {}, probe: null },
    { match: { namespaces: [''] }, probe: 'tcp' },
    { match: { labels: { app: 1 } }, probe: 'tcp' },
    { match: {}, readiness: { port: 0 } },
  ].map((r) => ({ rules: [r] })),
  { bogus: 1 },
].map((fault) => ({ provider: 'azure', ...fault }));

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * coalesced is the policy helm renders from the chart's default `policy` and the user's, by Helm's
 * own rules (pkg/chart/common/util/coalesce.go coalesceTablesFullKey): a user null removes the key,
 * tables merge key by key, any other user value replaces the default.
 */
function coalesced(user: Record<string, unknown>, defaults: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...user };
  for (const [key, value] of Object.entries(defaults)) {
    if (!(key in user)) out[key] = value;
    else if (user[key] === null) delete out[key];
    else if (isTable(value) && isTable(user[key])) out[key] = coalesced(user[key], value);
  }
  return out;
}

describe("the chart's values.schema.json and the webhook's parser", () => {
  it(`accept and refuse the same policies: each single mistake, and ${RUNS} generated policies (helm template against parsePolicy).`, async () => {
    const helm = helmRunner(ensureHelm().helm, '/nonexistent-kubeconfig', mkdtempSync(join(tmpdir(), 'lbp-schema-helm-')));
    const dir = mkdtempSync(join(tmpdir(), 'lbp-schema-'));
    const defaults = (parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { policy: Record<string, unknown> }).policy;
    const seed = Number(process.env['SCHEMA_SEED'] ?? Date.now() % 2 ** 31);
    const cases = [...SINGLE_FAULTS, ...fc.sample(policies, { numRuns: RUNS, seed })];
    const disagreements: string[] = [];
    let accepted = 0;
    try {
      const check = async (user: Record<string, unknown>, index: number) => {
        const result = await helm(['template', 'lbp', CHART, '--namespace', 'lbp', '-f', valuesFile(dir, `case-${index}`, { policy: user })]);
        const schemaRefused = result.code !== 0 && /values don't meet the specifications of the schema/.test(result.stderr);
        if (result.code !== 0 && !schemaRefused) throw new Error(`helm template failed for ${JSON.stringify(user)} for another reason: ${result.stderr}`);
        // What serve reads: the ConfigMap helm rendered, or the policy helm would have rendered.
        const configMap = schemaRefused ? undefined : parseAllDocuments(result.stdout).map((d) => d.toJS() as Record<string, any>).find((o) => o?.['kind'] === 'ConfigMap');
        const text: string = configMap?.['data']['policy.yaml'] ?? stringify(coalesced(user, defaults));
        let parserRefused: string | undefined;
        try {
          parsePolicy(text, 'policy.yaml');
        } catch (err: unknown) {
          parserRefused = (err as { details?: string[] }).details?.join('; ') ?? String(err);
        }
        if (!schemaRefused) accepted++;
        if (schemaRefused !== (parserRefused !== undefined)) {
          disagreements.push(
            `${JSON.stringify(user)}: helm ${schemaRefused ? `refused (${result.stderr.trim().split('\n').slice(-3).join(' ')})` : 'accepted'}, the parser ${parserRefused === undefined ? 'accepted' : `refused (${parserRefused})`}`,
          );
        }
      };
      // Two helm processes at a time: the machine has two cores.
      for (let i = 0; i < cases.length; i += 2) await Promise.all(cases.slice(i, i + 2).map((c, j) => check(c, i + j)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`chart schema: ${SINGLE_FAULTS.length} single mistakes and ${RUNS} generated policies (seed ${seed}): ${accepted} accepted by both, ${cases.length - accepted - disagreements.length} refused by both`);
    expect(disagreements, `seed ${seed} (SCHEMA_SEED=${seed} repeats it)`).toEqual([]);
    // Both verdicts occur often enough for agreement to mean something.
    expect(accepted).toBeGreaterThan(RUNS / 10);
    expect(cases.length - accepted).toBeGreaterThan(RUNS / 10);
  });
});
