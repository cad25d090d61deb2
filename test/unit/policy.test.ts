import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyFile, MAX_POLICY_BYTES } from '../../src/policy/load.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { DEFAULT_POLICY, type Policy } from '../../src/policy/schema.js';
import { WebhookError } from '../../src/errors.js';

/** view is a compiled policy as plain data: profiles by name, rules without their matcher, the provider by name. */
function view(policy: Policy): Record<string, unknown> {
  const { boundProvider, profiles, rules, ...rest } = policy;
  expect(boundProvider.name).toBe(policy.provider);
  return { ...rest, profiles: profiles.map((p) => p.name), rules: rules.map((rule) => ({ ...rule })) };
}

/** DEFAULT_VIEW is the view of a policy naming only the Azure provider. */
const DEFAULT_VIEW = {
  provider: 'azure',
  ...DEFAULT_POLICY,
  settings: { azure: { hideStatusPort: false }, aws: { defaultTargetType: 'instance', alb: false }, custom: {} },
  profiles: ['istio', 'ingress-nginx', 'haproxy-ingress'],
  rules: [],
};

function problems(text: string): readonly string[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err: unknown) {
    if (err instanceof WebhookError) {
      expect(err.code).toBe('LBP_POLICY_INVALID');
      return err.details;
    }
    throw err;
  }
  throw new Error('the policy was accepted');
}

describe('parsePolicy', () => {
  it('A policy naming only the provider gets every default.', () => {
    expect(view(parsePolicy('provider: azure\n'))).toEqual(DEFAULT_VIEW);
  });

  it('The shipped default policy file parses to the defaults.', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../../manifests/base/policy.yaml', import.meta.url), 'utf8');
    expect(view(parsePolicy(text))).toEqual(DEFAULT_VIEW);
  });

  it('Every key can be set.', () => {
    const policy = parsePolicy(`
provider: custom
mode: warn
probe: readiness
readiness: { port: 15021, path: /ready }
overwrite: true
kinds: [Gateway]
gateway: { annotationsTarget: infrastructure, maxInfrastructureAnnotations: 16 }
profiles: [haproxy-ingress, istio]
azure: { hideStatusPort: true }
aws: { defaultTargetType: ip, alb: true }
custom:
  readiness:
    perPort: { "example.com/p-{port}": "{readinessPort}{readinessPath}" }
rules:
  - match: { namespaces: [kserve, "team-*"], labels: { tier: edge } }
    probe: none
  - match: { labels: { app: web } }
    readiness: { port: admin }
`);
    expect(view(policy)).toEqual({
      provider: 'custom',
      mode: 'warn',
      probe: 'readiness',
      readiness: { port: 15021, path: '/ready' },
      overwrite: true,
      kinds: ['Gateway'],
      gateway: { annotationsTarget: 'infrastructure', maxInfrastructureAnnotations: 16 },
      settings: {
        azure: { hideStatusPort: true },
        aws: { defaultTargetType: 'ip', alb: true },
        custom: { readiness: { perPort: { 'example.com/p-{port}': '{readinessPort}{readinessPath}' }, perService: {} } },
      },
      profiles: ['istio', 'haproxy-ingress'],
      rules: [
        { match: { namespaces: ['kserve', 'team-*'], labels: { tier: 'edge' } }, probe: 'none' },
        { match: { labels: { app: 'web' } }, readiness: { port: 'admin', path: '/ready' } },
      ],
    });
  });

  it('Every problem is reported at once, in line order, each with its path and line.', () => {
    expect(
      problems(`provider: openstack
mode: strict
probe: http
readiness:
  port: Not_A_Port
  path: healthz
  scheme: http
overwrite: "yes"
kinds: [Service, Ingress, Service]
gateway: { annotationsTarget: spec, maxInfrastructureAnnotations: 40 }
azure: { hideStatusPort: 1 }
aws: { defaultTargetType: IP, targetType: ip, alb: yes }
rules:
  - match: { namespaces: [""], labels: { a: 1 } }
    probe: maybe
  - 7
  - match: {}
    readiness: { port: 0, path: / }
profiles: [istio, traefik, istio]
extra: true
`),
    ).toEqual([
      'p.yaml:1: provider: unknown provider "openstack"; one of "azure", "aws", "gcp", "digitalocean", "hetzner", "linode", "oci", "alibaba", "ibm", "custom"',
      'p.yaml:2: mode: must be one of "enforce", "warn", got "strict"',
      'p.yaml:3: probe: must be one of "tcp", "readiness", "kube-proxy", "none", got "http"',
      'p.yaml:5: readiness.port: must be a port number (1-65535) or a Service port name, got "Not_A_Port"',
      'p.yaml:6: readiness.path: must be an HTTP path starting with "/" and without spaces, got "healthz"',
      'p.yaml:7: readiness.scheme: unknown key; allowed: port, path',
      'p.yaml:8: overwrite: must be true or false, got "yes"',
      'p.yaml:9: kinds[1]: must be one of "Service", "Gateway", got "Ingress"',
      'p.yaml:9: kinds[2]: Service is listed twice',
      'p.yaml:10: gateway.annotationsTarget: must be one of "auto", "infrastructure", "metadata", got "spec"',
      'p.yaml:10: gateway.maxInfrastructureAnnotations: must be a whole number from 1 to 16 (8 up to Gateway API v1.5, 16 from v1.6), got 40',
      'p.yaml:11: azure.hideStatusPort: must be true or false, got 1',
      'p.yaml:12: aws.targetType: unknown key; allowed: defaultTargetType, alb',
      'p.yaml:12: aws.defaultTargetType: must be one of "instance", "ip", got "IP"',
      'p.yaml:12: aws.alb: must be true or false, got "yes"',
      'p.yaml:14: rules[0].match.namespaces: must be a list of namespace names or globs',
      'p.yaml:14: rules[0].match.labels.a: must be a string (quote it), got 1',
      'p.yaml:15: rules[0].probe: must be one of "tcp", "readiness", "kube-proxy", "none", got "maybe"',
      'p.yaml:16: rules[1]: must be a mapping',
      'p.yaml:18: rules[2].readiness.port: must be a port number (1-65535) or a Service port name, got 0',
      'p.yaml:19: profiles[1]: unknown profile "traefik"; one of "istio", "ingress-nginx", "haproxy-ingress"',
      'p.yaml:19: profiles[2]: istio is listed twice',
      'p.yaml:20: extra: unknown key; allowed: provider, mode, probe, readiness, overwrite, kinds, gateway, profiles, azure, aws, custom, rules',
    ]);
  });

  it.each([
    ['an empty file', '', ['p.yaml: (root): the policy is empty; at least `provider` is required']],
    ['a list', '- azure\n', ['p.yaml:1: (root): must be a mapping']],
    ['a missing provider', 'mode: warn\n', ['p.yaml:1: provider: is required; one of "azure", "aws", "gcp", "digitalocean", "hetzner", "linode", "oci", "alibaba", "ibm", "custom"']],
    // The parser reports the unclosed [ at the end of the input: the line is the last one, never one past it.
    ['YAML that does not parse', 'provider: azure\nmode: [warn\n', ['p.yaml:2: Flow sequence in block collection must be sufficiently indented and end with a ]']],
    ['a duplicate key', 'provider: azure\nprovider: aws\n', ['p.yaml:2: duplicate key "provider" (first at line 1)']],
    ['two YAML documents', 'provider: azure\n---\nprovider: aws\n', ['p.yaml:2: a policy is one YAML document; this file has 2 (remove the --- that starts the next one)']],
    ['a binary file', 'provider: azure\nmode: \u0000\u0001\n', ['p.yaml:2: not a text file: control character U+0000, which YAML does not allow (a binary file?)']],
    ['a rule without match', 'provider: azure\nrules:\n  - probe: none\n', ['p.yaml:3: rules[0].match: is required (`match: {}` matches every object)']],
    ['an empty kinds list', 'provider: azure\nkinds: []\n', ['p.yaml:2: kinds: must be a non-empty list of "Service", "Gateway"']],
    ['an aws section that is not a mapping', 'provider: aws\naws: instance\n', ['p.yaml:2: aws: must be a mapping']],
    ['rules that are not a list', 'provider: azure\nrules: {}\n', ['p.yaml:2: rules: must be a list of { match, probe, readiness }']],
    ['a rule with neither probe nor readiness', 'provider: azure\nrules:\n  - match: {}\n', ['p.yaml:3: rules[0]: needs probe, readiness or both']],
    ['profiles that are not a list', 'provider: azure\nprofiles: istio\n', ['p.yaml:2: profiles: must be a list of "istio", "ingress-nginx", "haproxy-ingress" (an empty list recognizes none)']],
    ['custom templates with another provider', 'provider: azure\ncustom: { tcp: { perPort: { "a/{port}": x } } }\n', ['p.yaml:2: custom: templates are only read with provider "custom", not "azure"']],
    ['provider custom without templates', 'provider: custom\n', ['p.yaml:1: custom: provider "custom" needs at least one template under custom.tcp, custom.readiness or custom.kube-proxy']],
    [
      'an unknown placeholder, {port} per Service, and a key that is no annotation key',
      'provider: custom\ncustom:\n  tcp:\n    perPort: { "a/{host}": x }\n    perService: { "b/{port}": x, "not a key": y }\n',
      [
        'p.yaml:4: custom.tcp.perPort.a/{host}: unknown placeholder {host}; allowed here: {port}, {readinessPort}, {readinessPath}',
        'p.yaml:4: custom.tcp.perPort.a/{host}: is not a valid annotation key once filled in (a/{host})',
        'p.yaml:5: custom.tcp.perService.b/{port}: unknown placeholder {port}; allowed here: {readinessPort}, {readinessPath}',
        'p.yaml:5: custom.tcp.perService.not a key: is not a valid annotation key once filled in (not a key)',
      ],
    ],
  ])('%s is refused with a clear message.', (_name, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });

  it('aws.defaultTargetType defaults to instance, the AWS Load Balancer Controller’s own default, and aws.alb to false.', () => {
    expect(parsePolicy('provider: aws\n').settings['aws']).toEqual({ defaultTargetType: 'instance', alb: false });
    expect(parsePolicy('provider: aws\naws: { defaultTargetType: ip }\n').settings['aws']).toEqual({ defaultTargetType: 'ip', alb: false });
  });

  it('The compiled policy carries the chosen provider bound to its settings: AWS with alb acts on any Service type, without it only on LoadBalancers.', () => {
    expect(parsePolicy('provider: aws\naws: { alb: true }\n').boundProvider).toMatchObject({ name: 'aws', title: 'AWS', anyServiceType: true });
    expect(parsePolicy('provider: aws\n').boundProvider).toMatchObject({ name: 'aws', anyServiceType: false });
    expect(parsePolicy('provider: azure\naws: { alb: true }\n').boundProvider).toMatchObject({ name: 'azure', anyServiceType: false });
  });

  it('An empty profiles list recognizes no workload.', () => {
    expect(parsePolicy('provider: azure\nprofiles: []\n').profiles).toEqual([]);
  });

  it('A compiled rule matches namespace globs and labels, and a rule without a namespace list matches objects without a namespace.', () => {
    const [byNamespace, byLabel] = parsePolicy(
      'provider: azure\nrules:\n  - match: { namespaces: ["team-*"] }\n    probe: none\n  - match: { labels: { tier: edge } }\n    readiness: { path: /ready }\n',
    ).rules;
    expect([byNamespace?.matches('team-a', {}), byNamespace?.matches('other', {}), byNamespace?.matches(undefined, {})]).toEqual([true, false, false]);
    expect([byLabel?.matches(undefined, { tier: 'edge' }), byLabel?.matches('x', { tier: 'core' })]).toEqual([true, false]);
    expect(byLabel?.readiness).toEqual({ port: 'status-port', path: '/ready' });
    expect(byLabel?.probe).toBeUndefined();
  });

  it('A policy nested deeper than the parser can follow (within the 64 KiB cap) is one problem, "nested too deeply", not the engine\'s stack overflow.', () => {
    const deep = `provider: azure\nrules: ${'['.repeat(30_000)}${']'.repeat(30_000)}\n`;
    const refused = (() => {
      try {
        parsePolicy(deep, 'deep.yaml');
      } catch (err: unknown) {
        return err as WebhookError;
      }
      return undefined;
    })();
    expect(refused?.details).toEqual(['deep.yaml:2: nested too deeply']);
  });

  it('The error message names the file and counts the problems.', () => {
    expect(() => parsePolicy('provider: x\nmode: y\n', 'policy.yaml')).toThrow('policy.yaml: invalid policy (2 problems)');
  });
});

describe('loadPolicyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-policy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** padded is a valid Azure policy followed by a comment that makes it exactly bytes long. */
  const padded = (bytes: number) => {
    const head = 'provider: azure\n# ';
    return `${head}${'x'.repeat(bytes - head.length - 1)}\n`;
  };
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads and validates a policy file of exactly MAX_POLICY_BYTES (64 KiB).', async () => {
    expect(MAX_POLICY_BYTES).toBe(64 * 1024);
    expect(view(await loadPolicyFile(write('full.yaml', padded(MAX_POLICY_BYTES))))).toEqual(DEFAULT_VIEW);
  });

  it.each([
    ['a file one byte over MAX_POLICY_BYTES, before parsing it', () => write('over.yaml', padded(MAX_POLICY_BYTES + 1)), (path: string) => `${path}: larger than 65536 bytes, the most a policy may be; not a policy file`, []],
    ['a file that does not exist', () => join(dir, 'missing.yaml'), (path: string) => `${path}: cannot read the policy: ENOENT: no such file or directory`, []],
    [
      'a directory',
      () => {
        mkdirSync(join(dir, 'a-directory'), { recursive: true });
        return join(dir, 'a-directory');
      },
      (path: string) => `${path}: cannot read the policy: EISDIR: illegal operation on a directory`,
      [],
    ],
    ['an invalid policy, with every problem and its line', () => write('invalid.yaml', 'provider: azure\nmode: loud\nprobe: maybe\n'), (path: string) => `${path}: invalid policy (2 problems)`, [/invalid\.yaml:2: mode: must be one of/, /invalid\.yaml:3: probe: must be one of/]],
  ])('refuses %s with LBP_POLICY_INVALID naming the file.', async (_name, file, message, details) => {
    const path = file();
    const refused = await loadPolicyFile(path).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WebhookError);
    const { code, message: actual, details: lines } = refused as WebhookError;
    expect({ code, message: actual, details: lines }).toEqual({ code: 'LBP_POLICY_INVALID', message: message(path), details: details.map((d): unknown => expect.stringMatching(d)) });
  });
});
