/**
 * Flag parsing for the CLI, on node:util parseArgs (strict: an unknown flag is an error). Each
 * command declares its flags once, as FlagSpecs in commands.ts; the parser, the help text and
 * the shell completion are all made from that one declaration.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCode, WebhookError } from '../errors.js';

/** usageError builds the LBP_USAGE error the CLI turns into exit code 2 and a usage hint. */
export function usageError(message: string, cause?: unknown): WebhookError {
  return new WebhookError(ErrorCode.USAGE, message, { cause });
}

/** FlagSpec declares one flag of a command: how it parses, how help shows it, how the shell completes it. */
export interface FlagSpec {
  /** name is the long name, without the dashes. */
  readonly name: string;
  /** short is the one-letter alias, without the dash. */
  readonly short?: string;
  /** type is `string` for a flag that takes a value, `boolean` for a switch. */
  readonly type: 'string' | 'boolean';
  /** multiple lets the flag be given more than once; any other flag given twice is an error. */
  readonly multiple?: boolean;
  /** value names the value in help (FILE, DIR, DURATION, SIZE, N, NAME, IP, FORMAT). */
  readonly value?: string;
  /** choices are the only values accepted, and what the shell offers. */
  readonly choices?: readonly string[];
  /** default is the value that applies when the flag is absent, as help shows it. */
  readonly default?: string;
  /** required makes the flag's absence an error. */
  readonly required?: boolean;
  /** complete says what the shell offers for the value when there are no choices: files or directories. */
  readonly complete?: 'file' | 'dir';
  /** help is one sentence on what the flag does. */
  readonly help: string;
}

/** HELP_FLAG is the flag every command has. */
export const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', type: 'boolean', help: 'Print this help and exit' };

/** ParsedArgs is a command line parsed against its command's flags. */
export interface ParsedArgs {
  /** argv is the command line after the command name, as given. */
  readonly argv: readonly string[];
  readonly positionals: readonly string[];
  /** string returns a single-value flag, or its declared default, or undefined. */
  string(name: string): string | undefined;
  /** required returns a single-value flag that must be there (declared or not as required). */
  required(name: string): string;
  /** boolean tells whether a switch was given. */
  boolean(name: string): boolean;
  /** strings returns every value of a repeatable flag, in order. */
  strings(name: string): readonly string[];
}

/** wantsHelp tells whether the command line asks for help (-h or --help before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/**
 * parseCommandLine parses argv against the declared flags and throws LBP_USAGE, naming the flag,
 * for an unknown flag, a missing value, a value not among its choices, a required flag that is
 * absent, and a single-value flag given more than once (no silent last-one-wins).
 */
export function parseCommandLine(argv: readonly string[], flags: readonly FlagSpec[], positionals: boolean): ParsedArgs {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const flag of flags) {
    options[flag.name] = { type: flag.type, ...(flag.short !== undefined && { short: flag.short }), ...(flag.multiple === true && { multiple: true }) };
  }
  const parsed = parseFlags(argv, options, positionals);
  const values = parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>;
  for (const flag of flags) {
    const value = values[flag.name];
    if (flag.required === true && (value === undefined || value === '')) throw usageError(`--${flag.name} is required`);
    if (flag.choices !== undefined && typeof value === 'string' && !flag.choices.includes(value)) {
      throw usageError(`--${flag.name} must be one of ${flag.choices.join(', ')}, got ${JSON.stringify(value)}`);
    }
  }
  const declared = (name: string): FlagSpec => {
    const flag = flags.find((f) => f.name === name);
    if (flag === undefined) throw new Error(`flag --${name} is not declared`);
    return flag;
  };
  return {
    argv,
    positionals: parsed.positionals,
    string: (name) => {
      const value = values[name];
      return typeof value === 'string' ? value : declared(name).default;
    },
    required: (name) => requireString(values[name], name),
    boolean: (name) => {
      declared(name);
      return values[name] === true;
    },
    strings: (name) => {
      declared(name);
      const value = values[name];
      return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
    },
  };
}

/** parseFlags parses argv against parseArgs options; it throws LBP_USAGE for unknown flags, missing values and a single-value flag given twice. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: T, positionals: boolean) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals, tokens: true });
  } catch (err: unknown) {
    const message = (err as Error).message
      .replace(/\. To specify a positional argument.*$/s, '')
      .replace(/^Unknown option '(.*)'$/s, 'unknown flag $1')
      .replace(/^Option '(-\w, )?(--[\w-]+) <value>' argument missing$/s, '$2 needs a value')
      .replace(/^Unexpected argument '(.*?)'(\. .*)?$/s, 'unexpected argument $1; this command takes no file arguments');
    throw usageError(message, err);
  }
  const seen = new Map<string, number>();
  for (const token of parsed.tokens) if (token.kind === 'option') seen.set(token.name, (seen.get(token.name) ?? 0) + 1);
  for (const [name, count] of seen) if (count > 1 && options[name]?.multiple !== true) throw usageError(`--${name} is given ${count} times; give it once`);
  return parsed;
}

/** requireString returns a required string flag or throws LBP_USAGE naming it. */
export function requireString(value: string | boolean | undefined | (string | boolean)[], flag: string): string {
  if (typeof value !== 'string' || value.length === 0) throw usageError(`--${flag} is required`);
  return value;
}

/** integerFlag parses an integer flag within bounds, or returns the fallback when absent. */
export function integerFlag(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw usageError(`--${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** parseDuration reads a duration with units, as Go and kubectl write them (`500ms`, `30s`, `1m`, `1h30m`), in milliseconds; NaN when it is not one. */
export function parseDuration(value: string): number {
  if (!/^(?:\d+(?:ms|h|m|s))+$/.test(value)) return NaN;
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+)(ms|h|m|s)/g)) ms += Number(amount) * (DURATION_UNITS[unit ?? ''] ?? NaN);
  return ms;
}

/** formatDuration writes milliseconds in the largest unit that divides them (`90s`, `5m`, `1h`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** durationFlag parses a duration such as `500ms`, `30s`, `1m` or `1h30m` into milliseconds, within bounds, or returns the fallback when absent. */
export function durationFlag(value: string | undefined, flag: string, minMs: number, maxMs: number, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = parseDuration(value);
  if (!(ms >= minMs && ms <= maxMs)) {
    throw usageError(`--${flag} must be a duration like 500ms, 30s or 1m, from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, got ${JSON.stringify(value)}`);
  }
  return ms;
}

const SIZE_UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** formatSize writes a byte count in the largest binary unit that divides it (`64Mi`, `512Ki`, `1000`). */
export function formatSize(bytes: number): string {
  for (const unit of ['Gi', 'Mi', 'Ki']) {
    const size = SIZE_UNITS[unit] as number;
    if (bytes > 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** sizeFlag parses a byte count such as `1048576`, `512Ki`, `64Mi` or `1Gi`, within bounds, or returns the fallback when absent. */
export function sizeFlag(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(value);
  const bytes = match === null ? NaN : Number(match[1]) * (SIZE_UNITS[match[2] ?? ''] ?? NaN);
  if (!(bytes >= min && bytes <= max)) {
    throw usageError(`--${flag} must be a size like 1048576, 512Ki or 64Mi, from ${min} to ${max} bytes, got ${JSON.stringify(value)}`);
  }
  return bytes;
}
