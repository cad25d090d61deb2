import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import { auditObject, formatTable } from '../../src/audit/plan.js';
import { processManifests } from '../../src/manifests/process.js';
import { WebhookError } from '../../src/errors.js';
import { fixture, fixturePath, policy } from '../support/fixtures.js';

const AZ = 'service.beta.kubernetes.io/';
const azure = policy({ provider: 'azure' });
const text = (name: string) => readFileSync(fixturePath(name), 'utf8');

describe('processManifests', () => {
  it('copies documents it does not change byte for byte, separators and comments included.', () => {
    const input = `${text('istio-chart-service.yaml')}---\n# just a comment\n---\n${text('service-clusterip.yaml')}`;
    const result = processManifests([{ name: 'in.yaml', text: input }], azure);
    expect(result.output).toBe(input);
    expect(result.reports.map((r) => [r.ref, r.decision.outcome])).toEqual([
      ['Service istio-ingress/istio-ingressgateway', 'skipped'],
      ['Service istio-ingress/gateway-internal', 'skipped'],
    ]);
  });

  it('adds the annotations in place, keeping the document’s comments, and reports file and line.', () => {
    const input = `${text('service-clusterip.yaml')}---\n${text('istio-gateway-service.yaml')}`;
    const { output, reports } = processManifests([{ name: 'in.yaml', text: input }], azure);
    expect(output.startsWith(text('service-clusterip.yaml'))).toBe(true);
    expect(output).toContain("# The Service Istio's Gateway API controller generates");
    expect(output).toContain(`  annotations:\n    ${AZ}port_80_health-probe_protocol: tcp\n    ${AZ}port_443_health-probe_protocol: tcp\n`);
    // 14 lines of the first file, the separator, two comment lines: the object starts on line 18.
    expect(reports[1]).toMatchObject({ source: 'in.yaml', line: 18, ref: 'Service istio-ingress/gateway-istio' });
  });

  it('joins several sources with a document separator.', () => {
    const { output } = processManifests(
      [
        { name: 'a.yaml', text: text('service-clusterip.yaml') },
        { name: 'b.yaml', text: text('istio-chart-service.yaml') },
      ],
      azure,
    );
    expect(output).toBe(`${text('service-clusterip.yaml')}---\n${text('istio-chart-service.yaml')}`);
  });

  it('decides each item of a List and patches it at its index.', () => {
    const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [fixture('service-clusterip.yaml'), fixture('istio-gateway-service.yaml')] });
    const { output, reports } = processManifests([{ name: '-', text: list }], azure);
    expect(reports.map((r) => r.decision.outcome)).toEqual(['skipped', 'patched']);
    const items = (parse(output) as { items: { metadata: { annotations?: object } }[] }).items;
    expect(items[0]?.metadata.annotations).toBeUndefined();
    expect(items[1]?.metadata.annotations).toEqual({ [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' });
  });

  it('an empty input gives an empty output.', () => {
    expect(processManifests([{ name: 'empty.yaml', text: '' }], azure)).toEqual({ output: '', sources: [{ name: 'empty.yaml', text: '', changed: false }], reports: [] });
  });

  it('refuses invalid YAML with every error and its line, before deciding anything.', () => {
    const attempt = () => processManifests([{ name: 'ok.yaml', text: text('istio-gateway-service.yaml') }, { name: 'bad.yaml', text: 'a: 1\na: 2\nb: [\n' }], azure);
    expect(attempt).toThrow(WebhookError);
    try {
      attempt();
    } catch (err: unknown) {
      expect((err as WebhookError).message).toBe('bad.yaml: invalid input (2 problems)');
      expect((err as WebhookError).details).toEqual([
        'bad.yaml:2: duplicate key "a" (first at line 1)',
        // The parser reports the unclosed [ at the end of the input; the line is the last one, never one past it.
        'bad.yaml:3: Flow sequence in block collection must be sufficiently indented and end with a ]',
      ]);
    }
  });
});

describe('processManifests on hostile YAML', () => {
  it('lists the first 50 problems and counts the rest.', () => {
    const attempt = () => processManifests([{ name: 'dups.yaml', text: 'a: 1\n'.repeat(200) }], azure);
    expect(attempt).toThrow('dups.yaml: invalid input (199 problems)');
    try {
      attempt();
    } catch (err: unknown) {
      const details = (err as WebhookError).details;
      expect(details).toHaveLength(51);
      expect(details[0]).toBe('dups.yaml:2: duplicate key "a" (first at line 1)');
      expect(details[50]).toBe('... and 149 more');
    }
  });

  // Pieces that each stress one part of a YAML reader: anchors, aliases, merge keys, document markers, directives, deep flow nesting, tags, junk.
  const pieces = fc.constantFrom(
    '&a ', '*a', '&b [*a, *a, *a, *a]', '<<: *a', '<<: [*a, *b]', '---\n', '...\n', '%YAML 1.1\n', '[[[[[[[[', ']]]]', '{', '}', ': ', '- ',
    'kind: Service\n', 'apiVersion: v1\n', 'metadata:\n  name: x\n', 'spec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n', '\n  ', '!!binary ',
    '!!map ', '? ', '"\\u0000"', '|\n  text\n', "'", '"', '#', '\t', '\u0000', '\uFEFF', 'items: [', 'kind: ServiceList\n',
  );
  const hostile = fc.array(fc.oneof(pieces, fc.string({ maxLength: 8 })), { maxLength: 40 }).map((parts) => parts.join(''));

  it('any mix of hostile pieces is rendered or refused with LBP_MANIFEST_INVALID naming file and line; nothing else escapes.', () => {
    fc.assert(
      fc.property(hostile, (input) => {
        try {
          processManifests([{ name: 'in.yaml', text: input }], azure);
        } catch (err: unknown) {
          expect(err).toBeInstanceOf(WebhookError);
          expect((err as WebhookError).code).toBe('LBP_MANIFEST_INVALID');
          for (const detail of (err as WebhookError).details) expect(detail).toMatch(/^in\.yaml(:\d+)?: \S/);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('auditObject', () => {
  it('finds what the policy would add and builds an apply configuration with only those keys.', () => {
    const finding = auditObject(fixture('service-user-probe.yaml'), azure);
    expect(finding?.changes.map((c) => c.key)).toEqual([`${AZ}port_443_health-probe_protocol`]);
    expect(finding?.apply).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'gateway-user', namespace: 'istio-ingress', annotations: { [`${AZ}port_443_health-probe_protocol`]: 'tcp' } },
    });
  });

  it('for a new spec.infrastructure.annotations map, applies the carried metadata annotations too.', () => {
    const finding = auditObject(fixture('gateway-azure-internal.yaml'), policy({ provider: 'azure', gateway: { annotationsTarget: 'infrastructure' } }));
    expect(finding?.apply).toEqual({
      apiVersion: 'gateway.networking.k8s.io/v1beta1',
      kind: 'Gateway',
      metadata: { name: 'internal', namespace: 'istio-ingress' },
      spec: { infrastructure: { annotations: { [`${AZ}azure-load-balancer-internal`]: 'true', [`${AZ}port_80_health-probe_protocol`]: 'tcp' } } },
    });
  });

  it('reports in warn mode too, and nothing for objects already right or not ours.', () => {
    expect(auditObject(fixture('istio-gateway-service.yaml'), policy({ provider: 'azure', mode: 'warn' }))?.changes).toHaveLength(2);
    expect(auditObject(fixture('service-clusterip.yaml'), azure)).toBeUndefined();
    expect(auditObject(fixture('service-etp-local.yaml'), azure)).toBeUndefined();
  });

  it('formatTable aligns one row per change.', () => {
    const findings = [auditObject(fixture('istio-gateway-service.yaml'), azure), auditObject(fixture('gateway-infrastructure.yaml'), azure)].flatMap((f) => (f ? [f] : []));
    expect(formatTable(findings)).toBe(
      [
        'NAMESPACE      KIND     NAME           WHERE                ANNOTATION',
        `istio-ingress  Service  gateway-istio  metadata             ${AZ}port_80_health-probe_protocol=tcp`,
        `istio-ingress  Service  gateway-istio  metadata             ${AZ}port_443_health-probe_protocol=tcp`,
        `istio-ingress  Gateway  gateway        spec.infrastructure  ${AZ}port_80_health-probe_protocol=tcp`,
        '',
      ].join('\n'),
    );
  });
});
