import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '../support/fixtures.js';
import { runCli, startCli, type CliResult } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-cli-input-'));
const policy = join(tmp, 'policy.yaml');
const regularFile = join(tmp, 'regular-file');
const service = fixturePath('istio-gateway-service.yaml');
const MiB = 1024 * 1024;

beforeAll(() => {
  writeFileSync(policy, 'provider: azure\n');
  writeFileSync(regularFile, 'not a directory\n');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** billionLaughs is the classic alias bomb: each level aliases the one below ten times. */
function billionLaughs(levels: number): string {
  let text = 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
  for (let i = 1; i <= levels; i++) text += `a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]\n`;
  return text;
}

/** expectOneLineError checks the contract for every CLI error: exit 2, nothing on stdout, one message line (plus indented problem lines), no stack. */
function expectOneLineError(result: CliResult, message: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^lb-probe-webhook \w+: /);
  expect(lines.slice(1).every((l) => l.startsWith('  '))).toBe(true);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr).toMatch(message);
}

describe('render and check bound their input', () => {
  const bomb = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n${billionLaughs(9).replace(/^/gm, '  ')}`;
  it.each<[string, string, RegExp]>([
    ['an alias bomb', bomb, /<stdin>:1: too many aliases/],
    ['a YAML 1.1 merge-key bomb', `%YAML 1.1\n---\na: &a {x: 1, y: 2}\nb: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a]}\nc: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b]}\nd: &d {<<: [*c, *c, *c, *c, *c, *c, *c, *c]}\ne: {<<: [*d, *d, *d, *d, *d, *d, *d, *d]}\nkind: Service\n`, /<stdin>:\d+: too many aliases/],
    ['an alias to an anchor in an earlier document', 'kind: Service\nx: &shared {a: 1}\n---\nkind: Service\ny: *shared\n', /<stdin>:3: Unresolved alias \(the anchor must be set before the alias\): shared/],
    ['nesting 100,000 deep', `${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, /<stdin>:1: nested too deeply/],
    ['a duplicate key among 50,000', `kind: Service\nmetadata:\n  annotations:\n${Array.from({ length: 50_000 }, (_, i) => `    k${i}: v\n`).join('')}    k7: again\n`, /<stdin>:50004: duplicate key "k7" \(first at line 11\)/],
    ['a 4 MiB scalar (one document over 3 MiB)', `kind: Service\nx: "${'a'.repeat(4 * MiB)}"\n`, /<stdin>:1: a YAML document of \d+ bytes is over the 3145728-byte limit \(--max-document-bytes\)/],
    ['an unterminated flow sequence', 'kind: [Service\n', /<stdin>:\d+: /],
  ])('%s is exit 2 with the file, line and reason, and no stack.', async (_name, input, message) => {
    for (const command of ['render', 'check']) {
      const result = await runCli([command, '--policy', policy], input);
      expectOneLineError(result, message);
    }
  });

  it('binary junk is exit 2 with one line saying it is not text, never an internal error, a crash or a stack.', async () => {
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 8; i++) {
      const junk = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
      const result = await runCli(['check', '--policy', policy], junk.toString('latin1'));
      expectOneLineError(result, /^lb-probe-webhook check: <stdin>: invalid input \(1 problem\)\n {2}<stdin>:\d+: not a text file: control character U\+[0-9A-F]{4}, which YAML does not allow \(a binary file\?\)\n$/);
      expect(result.stderr).not.toMatch(/internal error/);
    }
    // The same bytes in a file that is not UTF-8 at all are named as such.
    const file = join(tmp, 'binary.yaml');
    writeFileSync(file, Buffer.from([0x6b, 0x69, 0x6e, 0x64, 0x3a, 0x20, 0xff, 0xfe, 0x00, 0x80]));
    expectOneLineError(await runCli(['render', '--policy', policy, file]), new RegExp(`^lb-probe-webhook render: ${file}: not a text file: its bytes are not UTF-8 \\(a binary file\\?\\)\n$`));
  });

  it('20,000 small documents in one stream are all processed.', async () => {
    const input = Array.from({ length: 20_000 }, (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c${i}\n`).join('---\n');
    const { code, stdout } = await runCli(['render', '--policy', policy], input);
    expect(code).toBe(0);
    expect(stdout).toBe(input);
  });

  it('input over --max-input-bytes is refused before parsing, on stdin and in files, counting all inputs.', async () => {
    expectOneLineError(await runCli(['render', '--policy', policy, '--max-input-bytes', '1Ki'], 'x'.repeat(2048)), /<stdin>: over the 1024-byte input limit, counting all inputs \(raise it with --max-input-bytes\)/);
    const half = join(tmp, 'half.yaml');
    const other = join(tmp, 'other-half.yaml');
    writeFileSync(half, `# ${'x'.repeat(700)}\n`);
    writeFileSync(other, `# ${'x'.repeat(700)}\n`);
    expect((await runCli(['render', '--policy', policy, '--max-input-bytes', '1Ki', half])).code).toBe(0);
    expectOneLineError(await runCli(['check', '--policy', policy, '--max-input-bytes', '1Ki', half, other]), /other-half\.yaml: over the 1024-byte input limit/);
  });

  it('the input limit is raisable: a 4 MiB document passes with --max-document-bytes 5Mi.', async () => {
    const input = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: "${'a'.repeat(4 * MiB)}"\n`;
    const result = await runCli(['render', '--policy', policy, '--max-document-bytes', '5Mi'], input);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(input);
  });

  it('an alias bomb in the policy file is exit 2 naming the policy file.', async () => {
    const bombPolicy = join(tmp, 'bomb-policy.yaml');
    writeFileSync(bombPolicy, `provider: azure\n${billionLaughs(9)}`);
    expectOneLineError(await runCli(['render', '--policy', bombPolicy], ''), new RegExp(`${bombPolicy}: too many aliases`));
  });

  it('a policy file over 64 KiB is refused before it is parsed.', async () => {
    const hugePolicy = join(tmp, 'huge-policy.yaml');
    writeFileSync(hugePolicy, `provider: azure\n# ${'x'.repeat(100 * 1024)}\n`);
    expectOneLineError(await runCli(['render', '--policy', hugePolicy], ''), new RegExp(`^lb-probe-webhook render: ${hugePolicy}: larger than 65536 bytes, the most a policy may be; not a policy file\\n$`));
  });
});

describe('every CLI error is one line naming the file or flag', () => {
  it.each<[string, string[], RegExp]>([
    ['an unknown flag', ['render', '--policy', 'POLICY', '--dry-run'], /^lb-probe-webhook render: unknown flag --dry-run \(`lb-probe-webhook render --help` lists its flags\)$/m],
    ['a flag missing its value', ['check', '--policy'], /^lb-probe-webhook check: --policy needs a value/],
    ['a single-value flag given twice', ['check', '--policy', 'POLICY', '--policy', 'POLICY'], /^lb-probe-webhook check: --policy is given 2 times; give it once/],
    ['a duration without a unit', ['serve', '--policy', 'POLICY', '--tls-cert', 'FILE', '--tls-key', 'FILE', '--shutdown-delay', '5'], /^lb-probe-webhook serve: --shutdown-delay must be a duration like 500ms, 30s or 1m, from 0s to 5m, got "5"/],
    ['an output format a command does not have', ['check', '--policy', 'POLICY', '-o', 'yaml'], /^lb-probe-webhook check: --output must be one of text, json, got "yaml"/],
    ['--policy - with the manifests on stdin too', ['render', '--policy', '-'], /^lb-probe-webhook render: --policy - reads the policy from stdin, so the manifests must be files or directories/],
    ['--in-place on stdin', ['render', '--policy', 'POLICY', '-i'], /^lb-probe-webhook render: --in-place rewrites files; give files or directories, not stdin/],
    ['an invalid LOG_LEVEL', ['check', '--policy', 'POLICY', 'LOGLEVEL'], /^lb-probe-webhook check: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/m],
    ['a malformed size', ['render', '--policy', 'POLICY', '--max-input-bytes', '10MB'], /--max-input-bytes must be a size like/],
    ['--out under a regular file', ['certs', '--out', 'FILE/certs', '--dns', 'localhost'], /^lb-probe-webhook certs: --out .*regular-file\/certs: cannot write the certificates, nothing written: ENOTDIR: not a directory/],
    ['a directory as the policy', ['render', '--policy', 'DIR'], /^lb-probe-webhook render: .*lbp-cli-input-\w+: cannot read the policy: EISDIR: illegal operation on a directory$/m],
    ['a manifest directory that does not exist', ['check', '--policy', 'POLICY', 'DIR/none/'], /^lb-probe-webhook check: .*lbp-cli-input-\w+\/none\/: cannot read: ENOENT: no such file or directory$/m],
    ['a manifest under a regular file', ['check', '--policy', 'POLICY', 'FILE/x.yaml'], /regular-file\/x\.yaml: cannot read: ENOTDIR/],
    ['stdin given twice', ['render', '--policy', 'POLICY', '-', '-'], /`-` \(stdin\) may be given only once/],
    ['a missing kubeconfig', ['audit', '--policy', 'POLICY', '--kubeconfig', 'FILE/none'], /^lb-probe-webhook audit: --kubeconfig .*regular-file\/none: cannot load the kubeconfig: /],
    ['a malformed request timeout', ['audit', '--policy', 'POLICY', '--request-timeout', 'soon'], /--request-timeout must be a duration like 500ms, 30s or 1m, from 100ms to 10m, got "soon"/],
    ['an unknown command', ['mutate'], /^lb-probe-webhook: unknown command "mutate"; `lb-probe-webhook help` lists the commands$/m],
  ])('%s is exit 2 with one line and no stack.', async (_name, args, message) => {
    const resolved = args.filter((a) => a !== 'LOGLEVEL').map((a) => a.replace('POLICY', policy).replace('FILE', regularFile).replace('DIR', tmp));
    const result = await runCli(resolved, service, args.includes('LOGLEVEL') ? { LOG_LEVEL: 'verbose' } : {});
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('a reader that goes away early (render | head) ends render quietly, without an EPIPE stack.', async () => {
    const input = Array.from({ length: 5000 }, (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c${i}\n`).join('---\n');
    const child = startCli(['render', '--policy', policy]);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout?.once('data', () => child.stdout?.destroy());
    child.stdin?.end(input);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('LOG_LEVEL=debug adds the stack, with the cause.', async () => {
    const result = await runCli(['certs', '--out', join(regularFile, 'certs'), '--dns', 'localhost'], '', { LOG_LEVEL: 'debug' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^lb-probe-webhook certs: --out .*ENOTDIR.*\nWebhookError: [^\n]*\n\s+at /);
    expect(result.stderr).toMatch(/caused by: Error: ENOTDIR/);
  });
});
