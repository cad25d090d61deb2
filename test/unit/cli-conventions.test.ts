/**
 * The CLI's conventions, as kubectl, helm and kyverno users expect them, through the built binary:
 * help on every command, version, machine-readable output, no silent pass in CI, in-place
 * rendering, directories and stdin as input, and shell completion made from the same table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { COMMANDS } from '../../src/cli/commands.js';
import { CLI, runCli } from '../support/cli.js';
import { fixturePath } from '../support/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-cli-conventions-'));
const AZ = 'service.beta.kubernetes.io/';
const azure = join(tmp, 'azure.yaml');
const aws = join(tmp, 'aws.yaml');
const gateway = fixturePath('istio-gateway-service.yaml');
const PKG = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

beforeAll(() => {
  writeFileSync(azure, 'provider: azure\n');
  writeFileSync(aws, 'provider: aws\nprobe: readiness\n');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('help', () => {
  it.each(COMMANDS.map((c) => [c.name]))('%s --help and -h print its help to stdout, exit 0, with a usage line and every flag the command declares.', async (name) => {
    const command = COMMANDS.find((c) => c.name === name);
    for (const flag of ['--help', '-h']) {
      const { code, stdout, stderr } = await runCli([...name.split(' '), flag]);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(stdout).toContain(`Usage:\n  lb-probe-webhook ${name}`);
      for (const f of command?.flags ?? []) expect(stdout).toContain(`--${f.name}`);
      expect(stdout).toContain('-h, --help');
    }
  });

  it('help COMMAND prints the same as COMMAND --help; help and --help print the command list; --help wins over other flags.', async () => {
    expect((await runCli(['help', 'render'])).stdout).toBe((await runCli(['render', '--help'])).stdout);
    const list = await runCli(['help']);
    expect(list.code).toBe(0);
    for (const c of COMMANDS) expect(list.stdout).toMatch(new RegExp(`^ {2}${c.name} +${c.summary.replace(/[()]/g, '\\$&')}$`, 'm'));
    expect((await runCli(['--help'])).stdout).toBe(list.stdout);
    expect(await runCli(['render', '--policy', 'none.yaml', '--bogus', '-h'])).toMatchObject({ code: 0, stderr: '' });
  });

  it('render --help shows the defaults the command really uses.', async () => {
    const { stdout } = await runCli(['render', '--help']);
    expect(stdout).toMatch(/--max-input-bytes SIZE +The most all inputs together may hold \(Ki, Mi, Gi\) \(default 64Mi\)/);
    expect(stdout).toMatch(/-o, --output yaml\|json/);
    // 64Mi is what the bound is: one byte over it is refused.
    const big = join(tmp, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(64 * 1024 * 1024)}\n`);
    expect((await runCli(['render', '--policy', azure, big])).stderr).toMatch(/over the 67108864-byte input limit/);
    rmSync(big);
  });

  it('help for an unknown command is exit 2 with one line.', async () => {
    expect(await runCli(['help', 'mutate'])).toEqual({ code: 2, stdout: '', stderr: 'lb-probe-webhook help: no command "mutate"; `lb-probe-webhook help` lists the commands (`lb-probe-webhook help --help` lists its flags)\n' });
  });
});

describe('version', () => {
  it('version and --version print the package version, the Node.js version and the commit dist/commit records; -o json the same as JSON.', async () => {
    const commit = readFileSync(new URL('../../dist/commit', import.meta.url), 'utf8').trim() || 'unknown';
    const line = `lb-probe-webhook ${PKG.version} (commit ${commit}, node ${process.version})\n`;
    expect(await runCli(['version'])).toEqual({ code: 0, stdout: line, stderr: '' });
    expect(await runCli(['--version'])).toEqual({ code: 0, stdout: line, stderr: '' });
    expect(JSON.parse((await runCli(['version', '-o', 'json'])).stdout)).toEqual({ version: PKG.version, commit, node: process.version });
    // The build records the commit it was made from when git knows it.
    const head = spawnSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], { encoding: 'utf8' });
    if (head.status === 0) expect(commit).toMatch(/^[0-9a-f]{12}|^v?\d/);
  });
});

describe('check and render in CI', () => {
  it.each([
    ['an empty file', ''],
    ['a comment-only file', '# nothing here\n'],
    ['a scalar', 'just a string\n'],
    ['only Pods', 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n'],
    ['only a ClusterIP Service', readFileSync(fixturePath('service-clusterip.yaml'), 'utf8')],
  ])('check of %s is exit 2 saying nothing was checked; --allow-empty makes it 0.', async (_name, text) => {
    const file = join(tmp, `empty-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    const refused = await runCli(['check', '--policy', azure, file]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^lb-probe-webhook check: nothing checked: (no Kubernetes object in the input|none of the 1 object read is one the policy handles \(.*\)); --allow-empty accepts that\n$/);
    expect(await runCli(['check', '--policy', azure, '--allow-empty', file])).toEqual({ code: 0, stdout: '0 changes in 0 of 0 objects the policy handles\n', stderr: '' });
  });

  it('check of empty stdin is exit 2 too.', async () => {
    expect(await runCli(['check', '--policy', azure], '')).toEqual({ code: 2, stdout: '', stderr: 'lb-probe-webhook check: nothing checked: no Kubernetes object in the input; --allow-empty accepts that\n' });
  });

  it('--strict makes a warning a failure: check and render exit 1 on a Service the provider cannot fix, and 0 without --strict.', async () => {
    const warning = `lb-probe-webhook check: ${gateway}:3: Service istio-ingress/gateway-istio: AWS: for a readiness check, set loadBalancerClass service.k8s.aws/nlb`;
    const plain = await runCli(['check', '--policy', aws, gateway]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe('0 changes in 0 of 1 object the policy handles, 1 warning\n');
    expect(plain.stderr.startsWith(warning)).toBe(true);
    const strict = await runCli(['check', '--policy', aws, '--strict', gateway]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toBe('0 changes in 0 of 1 object the policy handles, 1 warning (--strict: failing)\n');
    expect((await runCli(['render', '--policy', aws, gateway])).code).toBe(0);
    const render = await runCli(['render', '--policy', aws, '--strict', gateway]);
    expect(render.code).toBe(1);
    expect(render.stdout).toBe(readFileSync(gateway, 'utf8'));
  });

  it('check -o json prints one entry per object with its decision, changes, warnings and notes, and the same exit codes.', async () => {
    const { code, stdout } = await runCli(['check', '--policy', azure, '-o', 'json', gateway, fixturePath('service-etp-local.yaml')]);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report).toEqual({
      apiVersion: 'lb-probe-webhook/v1',
      kind: 'CheckReport',
      summary: { objects: 2, changed: 1, changes: 2, warnings: 0, failed: true },
      objects: [
        {
          file: gateway,
          line: 3,
          kind: 'Service',
          namespace: 'istio-ingress',
          name: 'gateway-istio',
          decision: 'patched',
          probe: 'tcp',
          profile: 'istio',
          changes: [
            { location: 'metadata.annotations', key: `${AZ}port_80_health-probe_protocol`, value: 'tcp', previous: null, reason: 'Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)' },
            { location: 'metadata.annotations', key: `${AZ}port_443_health-probe_protocol`, value: 'tcp', previous: null, reason: 'Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)' },
          ],
          warnings: [],
          notes: [],
        },
        {
          file: fixturePath('service-etp-local.yaml'),
          line: 2,
          kind: 'Service',
          namespace: 'istio-ingress',
          name: 'gateway-local',
          decision: 'unchanged',
          probe: 'tcp',
          profile: null,
          changes: [],
          warnings: [],
          notes: ["Azure: externalTrafficPolicy Local is probed on kube-proxy's health check node port; nothing to change"],
        },
      ],
    });
  });

  it('render -o json prints one object as itself and several as a v1 List, with the mutation applied.', async () => {
    const one = JSON.parse((await runCli(['render', '--policy', azure, '-o', 'json', gateway])).stdout);
    expect(one.kind).toBe('Service');
    expect(one.metadata.annotations).toEqual({ [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' });
    const two = JSON.parse((await runCli(['render', '--policy', azure, '-o', 'json', gateway, fixturePath('service-clusterip.yaml')])).stdout);
    expect([two.apiVersion, two.kind, two.items.map((i: { kind: string; metadata: { name: string } }) => i.metadata.name)]).toEqual(['v1', 'List', ['gateway-istio', 'gateway-internal']]);
  });

  it('render in mode warn leaves the manifests as they are and says on stderr what it would change.', async () => {
    const warn = join(tmp, 'warn.yaml');
    writeFileSync(warn, 'provider: azure\nmode: warn\n');
    const { code, stdout, stderr } = await runCli(['render', '--policy', warn, gateway]);
    expect({ code, stdout }).toEqual({ code: 0, stdout: readFileSync(gateway, 'utf8') });
    expect(stderr).toBe(
      `lb-probe-webhook render: ${gateway}:3: Service istio-ingress/gateway-istio: would change (mode warn): Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)\n` +
        `lb-probe-webhook render: ${gateway}:3: Service istio-ingress/gateway-istio: would change (mode warn): Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)\n`,
    );
  });

  it.each([
    ['port: 99999', '99999', /spec\.ports\[0\]\.port: must be a port number from 1 to 65535, got 99999/],
    ['port: "80"', '"80"', /spec\.ports\[0\]\.port: must be a port number from 1 to 65535, got "80"/],
  ])('an invalid port (%s) is exit 2 naming the file, line and object, in render and check.', async (_name, port, message) => {
    const file = join(tmp, `bad-port-${port.length}.yaml`);
    writeFileSync(file, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\nspec:\n  type: LoadBalancer\n  ports:\n  - {port: ${port}, appProtocol: http}\n`);
    for (const command of ['render', 'check']) {
      const { code, stdout, stderr } = await runCli([command, '--policy', azure, file]);
      expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
      expect(stderr.split('\n')[0]).toBe(`lb-probe-webhook ${command}: ${file}: invalid input (1 problem)`);
      expect(stderr.split('\n')[1]).toMatch(new RegExp(`^ {2}${file}:5: Service a/web: ${message.source}`));
    }
  });
});

describe('inputs', () => {
  it('a directory is read recursively, YAML and JSON files only, in name order; hidden ones are skipped.', async () => {
    const dir = join(tmp, 'tree');
    mkdirSync(join(dir, 'b', 'c'), { recursive: true });
    mkdirSync(join(dir, '.git'), { recursive: true });
    writeFileSync(join(dir, 'b', 'c', 'svc.yml'), readFileSync(gateway));
    writeFileSync(join(dir, 'a.json'), JSON.stringify(parse(readFileSync(fixturePath('service-user-probe.yaml'), 'utf8'))));
    writeFileSync(join(dir, 'README.md'), 'kind: [not yaml\n');
    writeFileSync(join(dir, '.git', 'x.yaml'), 'kind: [not yaml\n');
    const { code, stdout } = await runCli(['check', '--policy', azure, dir]);
    expect(code).toBe(1);
    expect(stdout.split('\n').map((l) => l.split(':')[0])).toEqual([join(dir, 'a.json'), join(dir, 'b/c/svc.yml'), join(dir, 'b/c/svc.yml'), '3 changes in 2 of 2 objects the policy handles', '']);
  });

  it('--policy - reads the policy from stdin.', async () => {
    const { code, stdout } = await runCli(['check', '--policy', '-', gateway], 'provider: azure\nprobe: readiness\n');
    expect(code).toBe(1);
    expect(stdout).toContain(`add metadata.annotations[${AZ}port_80_health-probe_port]="status-port"`);
    expect(await runCli(['validate', '--policy', '-'], 'provider: aws\n')).toEqual({ code: 0, stdout: 'lb-probe-webhook validate: <stdin>: valid (provider aws, mode enforce, probe tcp, 0 rules)\n', stderr: '' });
  });

  it('validate reports every problem of a policy with its line, exit 2.', async () => {
    const bad = join(tmp, 'bad-policy.yaml');
    writeFileSync(bad, 'provider: azure\nmode: loud\nrules:\n  - probe: none\n');
    expect(await runCli(['validate', '--policy', bad])).toEqual({
      code: 2,
      stdout: '',
      stderr: `lb-probe-webhook validate: ${bad}: invalid policy (2 problems)\n  ${bad}:2: mode: must be one of "enforce", "warn", got "loud"\n  ${bad}:4: rules[0].match: is required (\`match: {}\` matches every object)\n`,
    });
  });
});

describe('render --in-place', () => {
  it('rewrites each changed file atomically with its mode kept, leaves unchanged files untouched, and says which it wrote.', async () => {
    const dir = join(tmp, 'in-place');
    mkdirSync(dir);
    const changed = join(dir, 'gateway.yaml');
    const unchanged = join(dir, 'clusterip.yaml');
    writeFileSync(changed, readFileSync(gateway));
    writeFileSync(unchanged, readFileSync(fixturePath('service-clusterip.yaml')));
    chmodSync(changed, 0o640);
    const before = statSync(unchanged).mtimeMs;
    const expected = (await runCli(['render', '--policy', azure, changed])).stdout;
    const { code, stdout, stderr } = await runCli(['render', '--policy', azure, '-i', dir]);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '', stderr: `lb-probe-webhook render: rewrote ${changed}\n` });
    expect(readFileSync(changed, 'utf8')).toBe(expected);
    expect(statSync(changed).mode & 0o777).toBe(0o640);
    expect(statSync(unchanged).mtimeMs).toBe(before);
    expect(readdirSync(dir).sort()).toEqual(['clusterip.yaml', 'gateway.yaml']);
    // A second run changes nothing.
    expect((await runCli(['render', '--policy', azure, '-i', dir])).stderr).toBe('lb-probe-webhook render: nothing to change\n');
  });

  it('an input that fails leaves every file as it was.', async () => {
    const dir = join(tmp, 'in-place-bad');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), readFileSync(gateway));
    writeFileSync(join(dir, 'b.yaml'), 'kind: [Service\n');
    const { code } = await runCli(['render', '--policy', azure, '-i', dir]);
    expect(code).toBe(2);
    expect(readFileSync(join(dir, 'a.yaml'), 'utf8')).toBe(readFileSync(gateway, 'utf8'));
  });
});

describe('shell completion', () => {
  const complete = (shell: 'bash' | 'zsh', words: string[]): string[] => {
    const script = join(tmp, `completion.${shell}`);
    writeFileSync(script, execFileSync(process.execPath, [CLI, 'completion', shell], { encoding: 'utf8' }));
    const array = words.map((w) => `'${w}'`).join(' ');
    const cword = words.length - 1;
    const cur = words[cword] ?? '';
    // zsh runs the function the way its bashcompinit does for a completion widget: through its compgen -F.
    const body =
      shell === 'bash'
        ? `source ${script}; COMP_WORDS=(${array}); COMP_CWORD=${cword}; _lb_probe_webhook; printf '%s\\n' "\${COMPREPLY[@]}"`
        : `autoload -U +X compinit && compinit -u -D; source ${script}; words=(${array}); CURRENT=${cword + 1}; COMP_WORDS=("\${words[@]}"); COMP_CWORD=${cword}; compgen -F _lb_probe_webhook -- '${cur}'`;
    const out = spawnSync(shell, ['-c', body], { encoding: 'utf8', cwd: tmp, env: { ...process.env, HOME: tmp } });
    if (out.error !== undefined) throw new Error(`${shell} is needed for this test: ${out.error.message}`);
    // zsh's compgen lists every candidate and leaves matching the typed prefix to zsh: match it here.
    return out.stdout.split('\n').filter((w) => w !== '' && w.startsWith(cur));
  };

  it.each(['bash', 'zsh'] as const)('%s completes commands, the flags of a command, and the choices of a flag, from the command table.', (shell) => {
    expect(complete(shell, ['lb-probe-webhook', 're'])).toEqual(['render']);
    expect(complete(shell, ['lb-probe-webhook', ''])).toEqual([...COMMANDS.map((c) => c.name.split(' ')[0]), '--help', '--version']);
    expect(complete(shell, ['lb-probe-webhook', 'check', '--st'])).toEqual(['--strict']);
    expect(complete(shell, ['lb-probe-webhook', 'check', '-o', ''])).toEqual(['text', 'json']);
    expect(complete(shell, ['lb-probe-webhook', 'render', '--output', 'j'])).toEqual(['json']);
    expect(complete(shell, ['lb-probe-webhook', 'completion', ''])).toEqual(['bash', 'zsh']);
    const certs = COMMANDS.find((c) => c.name === 'certs');
    expect(complete(shell, ['lb-probe-webhook', 'certs', '--'])).toEqual([...(certs?.flags ?? []).map((f) => `--${f.name}`), '--help']);
    // A flag that takes a file completes file names.
    writeFileSync(join(tmp, 'policy-for-completion.yaml'), 'provider: azure\n');
    expect(complete(shell, ['lb-probe-webhook', 'check', '--policy', 'policy-for-'])).toEqual(['policy-for-completion.yaml']);
  });
});
