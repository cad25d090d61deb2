/**
 * The doc-example harness: the shell examples of README.md and docs/*.md, found and run.
 *
 * What a page may hold (docs/development.md, "Examples in the docs"):
 * - ```console blocks: lines starting with `$ ` are commands (a line ending in `\` continues on
 *   the next); the lines after a command, up to the next one, are its output as a terminal shows
 *   it (stdout and stderr together). `...` alone on a line stands for any number of lines, and
 *   `…` inside a line for any text. A command that exits non-zero must be followed by `$ echo $?`,
 *   so every exit code a reader could meet is shown.
 * - ```sh (or bash, shell) blocks: a script that must exit 0; its output is not shown.
 * - `<!-- not run: REASON -->` on the line before a shell block: the block is not run here, for
 *   the reason given (a real cloud, a cluster, a network).
 * - `<!-- needs: helm -->` on the line before a shell block: the block needs the helm that
 *   test/helm/build.sh builds; test/e2e/docs.test.ts runs it with that helm on PATH.
 * - `<!-- file: NAME -->` on the line before any block: its text is written to NAME in the page's
 *   working directory before the blocks after it run (a policy, a manifest shown on the page).
 * - A `$ ` line in any other block (```text) is an error: shell examples are console blocks.
 *
 * A page's blocks run in order, in one fresh directory that holds copies of test/fixtures/,
 * manifests/ and charts/, with `lb-probe-webhook` on PATH running the built dist/cli/main.js.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from './cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** SHELL_LANGUAGES are the fence languages of shell examples. */
const SHELL_LANGUAGES = new Set(['console', 'sh', 'bash', 'shell']);

/** Block is one fenced block of a page. */
export interface Block {
  readonly page: string;
  /** line is the line of the opening fence, 1-based. */
  readonly line: number;
  readonly language: string;
  readonly text: string;
  /** notRun is the reason given in `<!-- not run: ... -->`, if any. */
  readonly notRun?: string;
  /** file is the name given in `<!-- file: ... -->`, if any. */
  readonly file?: string;
  /** needs is the tool given in `<!-- needs: ... -->` (helm), if any. */
  readonly needs?: string;
}

/** pages lists README.md and every docs/*.md, as paths from the repository root. */
export function pages(): string[] {
  return ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
}

/** blocks finds the fenced blocks of a page, with the markers on the line before each. */
export function blocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})([\w-]*)\s*$/.exec(lines[i] ?? '');
    if (open === null) continue;
    const [, indent = '', fence = '```', language = ''] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end] ?? '').startsWith(`${indent}${fence}`)) end++;
    const before = i > 0 ? (lines[i - 1] ?? '').trim() : '';
    const notRun = /^<!-- not run: (.+) -->$/.exec(before)?.[1];
    const file = /^<!-- file: (\S+) -->$/.exec(before)?.[1];
    const needs = /^<!-- needs: (\S+) -->$/.exec(before)?.[1];
    found.push({
      page,
      line: i + 1,
      language,
      text: lines
        .slice(i + 1, end)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n'),
      ...(notRun !== undefined && { notRun }),
      ...(file !== undefined && { file }),
      ...(needs !== undefined && { needs }),
    });
    i = end;
  }
  return found;
}

/** isShell tells whether a block is a shell example. */
export function isShell(block: Block): boolean {
  return SHELL_LANGUAGES.has(block.language);
}

/** Step is one command of a console block and the output the page shows for it. */
export interface Step {
  readonly command: string;
  readonly expected: readonly string[];
}

/** steps splits a console block into its commands and their shown output. */
export function steps(text: string): Step[] {
  const out: { command: string; expected: string[] }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('$ ')) {
      let command = line.slice(2);
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command}\n${lines[++i] ?? ''}`;
      out.push({ command, expected: [] });
    } else if (out.length > 0) out.at(-1)?.expected.push(line);
    else if (line.trim() !== '') throw new Error(`output before the first command: ${line}`);
  }
  for (const step of out) while (step.expected.length > 0 && step.expected.at(-1) === '') step.expected.pop();
  return out;
}

/** matches tells whether actual output lines match the shown ones (`...` lines, `…` in a line). */
export function matches(expected: readonly string[], actual: readonly string[]): boolean {
  const line = (want: string, got: string) =>
    want.includes('…') ? new RegExp(`^${want.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(got) : want === got;
  const from = (e: number, a: number): boolean => {
    if (e === expected.length) return a === actual.length;
    if (expected[e] === '...') {
      for (let k = a; k <= actual.length; k++) if (from(e + 1, k)) return true;
      return false;
    }
    return a < actual.length && line(expected[e] as string, actual[a] as string) && from(e + 1, a + 1);
  };
  return from(0, 0);
}

/** Workspace is a page's working directory, with lb-probe-webhook on PATH. */
export interface Workspace {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  remove(): void;
}

/** workspace makes a fresh directory with copies of test/fixtures/, manifests/ and charts/, and a bin/ that runs the built CLI. */
export function workspace(tools: Readonly<Record<string, string>> = {}): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-docs-'));
  const work = join(dir, 'work');
  const bin = join(dir, 'bin');
  mkdirSync(join(work, 'test'), { recursive: true });
  mkdirSync(bin);
  cpSync(join(ROOT, 'test/fixtures'), join(work, 'test/fixtures'), { recursive: true });
  cpSync(join(ROOT, 'manifests'), join(work, 'manifests'), { recursive: true });
  cpSync(join(ROOT, 'charts'), join(work, 'charts'), { recursive: true });
  writeFileSync(join(bin, 'lb-probe-webhook'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
  chmodSync(join(bin, 'lb-probe-webhook'), 0o755);
  for (const [name, path] of Object.entries(tools)) symlinkSync(path, join(bin, name));
  const env: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: dir, LANG: 'C.UTF-8' };
  return { dir: work, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** writeBlockFile writes a `<!-- file: NAME -->` block into the workspace. */
export function writeBlockFile(ws: Workspace, block: Block): void {
  const path = join(ws.dir, block.file as string);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${block.text}\n`);
}

/** Ran is what one command printed and its exit code. */
export interface Ran {
  readonly command: string;
  readonly expected: readonly string[];
  readonly output: readonly string[];
  readonly code: number;
}

const MARK = '\u001e';

/** runConsole runs a console block's commands in one bash, in order, and returns each one's output and exit code. */
export function runConsole(ws: Workspace, text: string): Ran[] {
  const all = steps(text);
  // Each command's output ends with a marker that carries its exit code, which is then restored so `echo $?` shows it.
  const script = all.map((s) => `{ ${s.command}\n} 2>&1; __s=$?; printf '${MARK}%d${MARK}\\n' "$__s"; (exit $__s)`).join('\n');
  const run = spawnSync('bash', ['-c', script], { cwd: ws.dir, env: ws.env, encoding: 'utf8', timeout: 120_000 });
  if (run.error !== undefined) throw run.error;
  const parts = run.stdout.split(new RegExp(`${MARK}(\\d+)${MARK}\\n`));
  return all.map((s, i) => {
    const chunk = parts[i * 2] ?? '';
    const lines = chunk.length === 0 ? [] : chunk.replace(/\n$/, '').split('\n');
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return { command: s.command, expected: s.expected, output: lines, code: Number(parts[i * 2 + 1] ?? NaN) };
  });
}

/** runScript runs a sh block as a bash script that stops at the first failure; it returns the exit code and the output. */
export function runScript(ws: Workspace, text: string): { code: number | null; output: string } {
  const run = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', text], { cwd: ws.dir, env: ws.env, encoding: 'utf8', timeout: 120_000 });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}
