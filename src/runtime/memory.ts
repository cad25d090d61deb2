/**
 * The V8 settings the memory budget rests on, made to hold however `serve` is launched. They used
 * to live only in the image's NODE_OPTIONS, so `node dist/cli/main.js serve` as the README starts
 * it ran with V8's defaults and peaked at 235 MB under hostile traffic. Now serve checks the flags
 * its own process was started with and, when one is missing or overridden, replaces itself with
 * the same command plus the flags (execve: same pid, same open stdout and stderr, nothing written
 * anywhere, so it works on a read-only root filesystem, as PID 1 of a container too).
 */
import { getHeapStatistics } from 'node:v8';

/**
 * SERVE_NODE_FLAGS, and why each:
 * - --max-old-space-size=96: 96 MB holds the idle heap (16 MB) plus the largest review's 61 MB;
 * - --max-semi-space-size=2: the young generation stays at 6 MB instead of up to 48 MB;
 * - --v8-pool-size=1: one V8 background thread; with four, concurrent marking took the core from
 *   the thread answering reviews for 20 to 80 ms at a time (p99 at 1,000 reviews/s: 23–86 ms,
 *   with one: 2.7–5.4 ms);
 * - --expose-gc: a full collection after each large review (http/bodies.ts).
 * docs/operations.md, "Memory budget", has the measurements.
 */
export const SERVE_NODE_FLAGS = ['--max-old-space-size=96', '--max-semi-space-size=2', '--v8-pool-size=1', '--expose-gc'] as const;

/** MAX_HEAP_BYTES is the most V8 may report as its heap limit under SERVE_NODE_FLAGS: 96 MB old space and three 2 MB semi-spaces. */
export const MAX_HEAP_BYTES = (96 + 3 * 2) * 1024 * 1024;

/** optionName is a flag's name, with V8's underscores read as dashes: `--max_old_space_size=4096` -> `--max-old-space-size`. */
function optionName(flag: string): string {
  const name = flag.split('=')[0] ?? flag;
  return `--${name.replace(/^--/, '').replaceAll('_', '-')}`;
}

/** normalized is a flag with its name as optionName gives it and its value as written. */
function normalized(flag: string): string {
  const eq = flag.indexOf('=');
  return eq < 0 ? optionName(flag) : `${optionName(flag)}${flag.slice(eq)}`;
}

/**
 * missingNodeFlags lists the flags of SERVE_NODE_FLAGS that the process's own command-line flags
 * (process.execArgv) do not set as they must be: absent, or overridden by a later occurrence.
 * NODE_OPTIONS is not looked at: flags on the command line win over it, and the re-exec puts
 * SERVE_NODE_FLAGS there.
 */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  return SERVE_NODE_FLAGS.filter((flag) => {
    const last = execArgv.findLast((arg) => optionName(arg) === optionName(flag));
    return last === undefined || normalized(last) !== flag;
  });
}

/** relaunchArgv is the argv of the same command with SERVE_NODE_FLAGS added last among Node's flags, so they win over earlier ones. */
export function relaunchArgv(execPath: string, execArgv: readonly string[], argv: readonly string[]): string[] {
  return [execPath, ...execArgv, ...SERVE_NODE_FLAGS, ...argv.slice(1)];
}

/** MemoryProcess is the part of the process ensureMemoryFlags uses (process itself in serve). */
export interface MemoryProcess {
  readonly execPath: string;
  readonly execArgv: readonly string[];
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  execve?(file: string, args?: readonly string[], env?: NodeJS.ProcessEnv): never;
}

/**
 * ensureMemoryFlags returns when the process runs with SERVE_NODE_FLAGS and V8 reports a heap
 * limit within MAX_HEAP_BYTES and a gc function; otherwise it replaces the process with the same
 * command and the flags (it does not return), or throws when that is not possible or did not
 * take.
 */
export function ensureMemoryFlags(proc: MemoryProcess, heapLimit = getHeapStatistics().heap_size_limit, gcExposed = typeof (globalThis as { gc?: unknown }).gc === 'function'): void {
  const missing = missingNodeFlags(proc.execArgv);
  if (missing.length === 0) {
    if (heapLimit > MAX_HEAP_BYTES || !gcExposed) {
      throw new Error(`started with ${SERVE_NODE_FLAGS.join(' ')}, but V8 reports a heap limit of ${Math.round(heapLimit / 2 ** 20)} MiB${gcExposed ? '' : ' and no gc'}; the memory budget cannot hold`);
    }
    return;
  }
  if (proc.execve === undefined) {
    throw new Error(`cannot restart with ${missing.join(' ')} (this Node has no process.execve); start it as: node ${SERVE_NODE_FLAGS.join(' ')} ${proc.argv.slice(1).join(' ')}`);
  }
  proc.execve(proc.execPath, relaunchArgv(proc.execPath, proc.execArgv, proc.argv), proc.env);
}
