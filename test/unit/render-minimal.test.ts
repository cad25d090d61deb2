/**
 * render changes only what it must: the added annotation lines (in a flow mapping, the added
 * entries). Shown on generated manifests in every style people write them in: block and flow
 * metadata, existing annotations in either style, odd spacing, trailing comments, quoting, CRLF
 * line endings, a missing final newline, several documents, Lists and JSON.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { processManifests } from '../../src/manifests/process.js';
import { policy } from '../support/fixtures.js';

const AZ = 'service.beta.kubernetes.io/';
const POLICIES = { tcp: policy({ provider: 'azure' }), readiness: policy({ provider: 'azure', probe: 'readiness' }) };

/** Change is an annotation render added, as check reports it. */
interface Added {
  readonly key: string;
  readonly value: string;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * removeAdded takes the added annotations out of render's output: each line `key: value` of an
 * added annotation (plain or quoted), an `annotations:` line that render wrote to hold them, and
 * in a flow mapping each added `"key": "value"` entry and the `"annotations": {...}` it created.
 */
function removeAdded(output: string, added: readonly Added[]): string {
  const scalar = (text: string) => `(?:${escape(text)}|"${escape(text)}"|'${escape(text)}')`;
  const blockLine = added.map((a) => new RegExp(`^ *${scalar(a.key)}: ${scalar(a.value)}$`));
  const isAdded = (line: string | undefined) => line !== undefined && blockLine.some((re) => re.test(line));
  // Each line with its line break; the last one may have none.
  const lines = output.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const content = (line: string | undefined) => line?.replace(/\r?\n$/, '');
  const kept: string[] = [];
  lines.forEach((line, i) => {
    if (isAdded(content(line))) return;
    if (/^ *annotations:\r?\n$/.test(line) && isAdded(content(lines[i + 1]))) return;
    let text = line;
    for (const a of added) text = text.replace(`, ${JSON.stringify(a.key)}: ${JSON.stringify(a.value)}`, '');
    for (const a of added) text = text.replace(`${JSON.stringify(a.key)}: ${JSON.stringify(a.value)}`, '');
    kept.push(text.replace(', "annotations": {}', ''));
  });
  // Lines added after a last line without a break brought that break with them: it goes with them.
  const last = lines.at(-1);
  if (last !== undefined && !last.endsWith('\n') && kept.at(-1) !== last && kept.length > 0) kept[kept.length - 1] = (kept.at(-1) as string).replace(/\r?\n$/, '');
  return kept.join('');
}

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/);
const comment = fc.constantFrom('', ' # c', '   # a comment: with a colon');
const gap = fc.constantFrom(' ', '  ', '    ');
const quoted = (value: string) => fc.constantFrom(value, `'${value}'`, `"${value}"`);

/** existing are annotations already on an object: never one the policy writes, so they stay as they are. */
const existing = fc.uniqueArray(fc.tuple(fc.constantFrom('example.com/a', 'example.com/b', 'team'), word), { selector: ([k]) => k, maxLength: 2 });

/** ports is a Service's ports: the first http, the others any of http, https, tcp; maybe Istio's status port. */
const ports = fc.tuple(fc.uniqueArray(fc.integer({ min: 80, max: 90 }), { minLength: 1, maxLength: 3 }), fc.constantFrom('http', 'https', 'tcp'), fc.boolean()).map(([numbers, other, status]) => [
  ...(status ? [{ name: 'status-port', port: 15021, appProtocol: 'tcp' }] : []),
  ...numbers.map((port, i) => ({ name: `p${port}`, port, appProtocol: i === 0 ? 'http' : other })),
]);

interface ServiceShape {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly annotations: readonly (readonly [string, string])[];
  readonly ports: readonly { name: string; port: number; appProtocol: string }[];
}

const service: fc.Arbitrary<ServiceShape> = fc.record({ name: word, namespace: fc.option(word, { nil: undefined }), annotations: existing, ports });

/** yamlService writes a Service in one of many styles, with indentation step `i`. */
const yamlService = (s: ServiceShape, eol: string) =>
  fc
    .record({
      i: fc.constantFrom(2, 4),
      flowMetadata: fc.boolean(),
      flowAnnotations: fc.boolean(),
      flowSpec: fc.boolean(),
      gap,
      nameQuote: quoted(s.name),
      comments: fc.array(comment, { minLength: 6, maxLength: 6 }),
      specFirst: fc.boolean(),
      labels: fc.boolean(),
    })
    .map(({ i, flowMetadata, flowAnnotations, flowSpec, gap: g, nameQuote, comments, specFirst, labels }) => {
      const pad = ' '.repeat(i);
      const annotationsFlow = `{${s.annotations.map(([k, v]) => `${k}: ${v}`).join(', ')}}`;
      let metadata: string;
      if (flowMetadata) {
        const entries = [`name:${g}${nameQuote}`, ...(s.namespace ? [`namespace: ${s.namespace}`] : []), ...(s.annotations.length > 0 ? [`annotations: ${annotationsFlow}`] : [])];
        metadata = `metadata: {${entries.join(',  ')}}${comments[0]}${eol}`;
      } else {
        const lines = [`metadata:${comments[0]}`, `${pad}name:${g}${nameQuote}${comments[1]}`];
        if (s.namespace) lines.push(`${pad}namespace: ${s.namespace}`);
        if (labels) lines.push(`${pad}labels: {app: ${s.name}}`);
        if (s.annotations.length > 0) {
          if (flowAnnotations) lines.push(`${pad}annotations: ${annotationsFlow}${comments[2]}`);
          else lines.push(`${pad}annotations:${comments[2]}`, ...s.annotations.map(([k, v]) => `${pad}${pad}${k}: ${v}`));
        }
        metadata = lines.map((l) => `${l}${eol}`).join('');
      }
      const portsFlow = s.ports.map((p) => `{name: ${p.name}, port: ${p.port}, appProtocol: ${p.appProtocol}}`).join(', ');
      const spec = flowSpec
        ? `spec: {type: LoadBalancer,${g}ports: [${portsFlow}]}${comments[3]}${eol}`
        : [`spec:`, `${pad}type: LoadBalancer${comments[4]}`, `${pad}ports:`, ...s.ports.flatMap((p) => [`${pad}- name: ${p.name}`, `${pad}  port: ${p.port}${comments[5]}`, `${pad}  appProtocol: ${p.appProtocol}`])]
            .map((l) => `${l}${eol}`)
            .join('');
      return `apiVersion: v1${eol}kind:${g}Service${eol}${specFirst ? spec + metadata : metadata + spec}`;
    });

/** jsonService writes a Service as JSON, compact or indented. */
const jsonService = (s: ServiceShape) =>
  fc.constantFrom(0, 2).map((space) =>
    JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: s.name, ...(s.namespace && { namespace: s.namespace }), ...(s.annotations.length > 0 && { annotations: Object.fromEntries(s.annotations) }) },
        spec: { type: 'LoadBalancer', ports: s.ports },
      },
      null,
      space,
    ),
  );

const configMap = (eol: string) => word.map((name) => `# not ours${eol}apiVersion: v1${eol}kind: ConfigMap${eol}metadata:${eol}  name: ${name}${eol}data: {a: "1"}${eol}`);

/** manifest is a stream of documents: Services in YAML or JSON and ConfigMaps, with separators, a line ending, and maybe no final newline. */
const manifest = fc.constantFrom('\n', '\r\n').chain((eol) =>
  fc
    .tuple(
      fc.array(
        fc.oneof(
          { weight: 3, arbitrary: service.chain((s) => yamlService(s, eol)) },
          { weight: 1, arbitrary: service.chain((s) => jsonService(s)).map((j) => `${j}${eol}`) },
          { weight: 1, arbitrary: configMap(eol) },
        ),
        { minLength: 1, maxLength: 4 },
      ),
      fc.boolean(),
      fc.boolean(),
    )
    .map(([docs, leadingMarker, finalNewline]) => {
      const text = (leadingMarker ? `---${eol}` : '') + docs.join(`---${eol}`);
      return finalNewline ? text : text.replace(/\r?\n$/, '');
    }),
);

describe('render changes only the added annotation lines', () => {
  it('for any manifest, removing the added annotation lines (or flow entries) from the output gives back the input byte for byte.', () => {
    let changed = 0;
    fc.assert(
      fc.property(manifest, fc.constantFrom<keyof typeof POLICIES>('tcp', 'readiness'), (input, probe) => {
        const result = processManifests([{ name: 'in.yaml', text: input }], POLICIES[probe]);
        const added = result.reports.flatMap((r) => r.decision.changes.map((c) => ({ key: c.key, value: c.value })));
        expect(added.every((a) => a.key.startsWith(AZ))).toBe(true);
        if (added.length > 0) changed++;
        expect(removeAdded(result.output, added)).toBe(input);
        // And the output is what the webhook would store: rendering it again changes nothing.
        expect(processManifests([{ name: 'out.yaml', text: result.output }], POLICIES[probe]).output).toBe(result.output);
      }),
      { numRuns: 1500 },
    );
    // Most generated manifests hold a Service the policy annotates: the property is not checked on copies alone.
    expect(changed).toBeGreaterThan(1000);
  });
});

describe('render keeps the document as written', () => {
  const render = (text: string, settings: Record<string, unknown> = { provider: 'azure' }) => processManifests([{ name: 'in.yaml', text }], policy(settings)).output;
  const head = 'apiVersion: v1\nkind: Service\n';
  const spec = 'spec:\n  type: LoadBalancer\n  ports:\n  - {name: http, port: 80, appProtocol: http}\n';

  it.each([
    [
      'spacing and a trailing comment stay',
      `${head}metadata:\n  name: web   # c\n${spec}`,
      `${head}metadata:\n  name: web   # c\n  annotations:\n    ${AZ}port_80_health-probe_protocol: tcp\n${spec}`,
    ],
    [
      'a flow metadata gets a JSON entry before its brace',
      `${head}metadata: {name: web,  namespace: a}   # c\n${spec}`,
      `${head}metadata: {name: web,  namespace: a, "annotations": {"${AZ}port_80_health-probe_protocol": "tcp"}}   # c\n${spec}`,
    ],
    [
      'an empty annotations key gets its entries on the lines below it',
      `${head}metadata:\n  name: web\n  annotations:\n${spec}`,
      `${head}metadata:\n  name: web\n  annotations:\n    ${AZ}port_80_health-probe_protocol: tcp\n${spec}`,
    ],
    [
      'an empty flow annotations map is filled in place',
      `${head}metadata:\n  name: web\n  annotations: {}\n${spec}`,
      `${head}metadata:\n  name: web\n  annotations: {"${AZ}port_80_health-probe_protocol": "tcp"}\n${spec}`,
    ],
    ['CRLF line endings stay CRLF', `${head}metadata:\n  name: web\n${spec}`.replace(/\n/g, '\r\n'), `${head}metadata:\n  name: web\n  annotations:\n    ${AZ}port_80_health-probe_protocol: tcp\n${spec}`.replace(/\n/g, '\r\n')],
  ])('%s.', (_name, input, output) => {
    expect(render(input)).toBe(output);
  });

  it('with overwrite: true a replaced value is its text replaced, and nothing else moves.', () => {
    const input = `${head}metadata:\n  name: web\n  annotations:\n    ${AZ}port_80_health-probe_protocol: "http"   # was http\n${spec}`;
    expect(render(input, { provider: 'azure', overwrite: true })).toBe(input.replace('"http"   #', 'tcp   #'));
  });

  it('a Gateway whose annotations move to a new spec.infrastructure.annotations gets the new map as lines under spec.', () => {
    const input = 'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  annotations: {team: a}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n';
    expect(render(input, { provider: 'azure', gateway: { annotationsTarget: 'infrastructure' } })).toBe(
      `${input}  infrastructure:\n    annotations:\n      team: a\n      ${AZ}port_80_health-probe_protocol: tcp\n`,
    );
  });

  it('a shape the edits do not cover (annotations: null) is written whole instead, with the annotations right.', () => {
    const input = `${head}metadata:\n  name: web   # c\n  annotations: null\n${spec}`;
    const output = render(input);
    expect(output).toContain(`  annotations:\n    ${AZ}port_80_health-probe_protocol: tcp\n`);
    expect(processManifests([{ name: 'out.yaml', text: output }], policy({ provider: 'azure' })).reports.map((r) => r.decision.changes.length)).toEqual([0]);
  });
});
