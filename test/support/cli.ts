/** Runs the built CLI (dist/cli/main.js) as a child process, the way users run it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** CLI is the path of the built entry point. */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** CliResult is what a finished CLI run printed and returned. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function ensureBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

/**
 * cliEnv is the environment a spawned CLI runs with: the tests' own, the caller's additions, and
 * NODE_V8_COVERAGE when npm test collects the CLI's coverage (LBP_CLI_COVERAGE names the folder;
 * `c8 report` turns the dumps into the src/cli coverage gate, as vitest sees only its own processes).
 */
export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const coverage = process.env['LBP_CLI_COVERAGE'];
  return { ...process.env, ...(coverage === undefined || coverage === '' ? {} : { NODE_V8_COVERAGE: resolve(coverage) }), ...env };
}

/** startCli spawns the CLI with the Node that runs the tests. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  ensureBuilt();
  return spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** runCli runs the CLI to completion, feeding input on stdin. */
export function runCli(args: readonly string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = startCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin?.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** LogLine is one pino JSON line. */
export type LogLine = Record<string, unknown> & { msg?: string };

/**
 * startServe spawns `serve` and resolves once it logs `serving`, with the ports it bound and every
 * log line so far (kept up to date). It rejects if the process exits first.
 */
export function startServe(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; port: number; healthPort: number; logs: LogLine[]; stderr: () => string }> {
  const child = startCli(['serve', ...args], env);
  const logs: LogLine[] = [];
  let stderr = '';
  let buffer = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      buffer += d.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          const parsed = JSON.parse(line) as LogLine;
          logs.push(parsed);
          if (parsed.msg === 'serving') resolve({ child, port: parsed['port'] as number, healthPort: parsed['healthPort'] as number, logs, stderr: () => stderr });
        } catch {
          stderr += `${line}\n`;
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code} before serving: ${stderr}`)));
  });
}

/** stopProcess sends SIGTERM and resolves with the exit code, killing the process if it outlives the grace period. */
export function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

/**
 * startServeOnLoopback starts `serve` on free loopback ports with the given policy and certificate
 * files, no shutdown delay, and any further flags (a flag given here replaces its default: serve
 * refuses a flag given twice).
 */
export function startServeOnLoopback(files: { policy: string; cert: string; key: string }, ...flags: string[]): ReturnType<typeof startServe> {
  const defaults: Record<string, string> = {
    '--policy': files.policy, '--tls-cert': files.cert, '--tls-key': files.key,
    '--port': '0', '--health-port': '0', '--address': '127.0.0.1', '--shutdown-delay': '0s',
  };
  const given = new Set(flags.filter((f) => f.startsWith('--')));
  return startServe([...Object.entries(defaults).flatMap(([flag, value]) => (given.has(flag) ? [] : [flag, value])), ...flags]);
}
