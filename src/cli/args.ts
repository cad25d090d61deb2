/**
 * Flag parsing for the CLI, on node:util parseArgs (strict: an unknown flag is an error).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCode, WebhookError } from '../errors.js';

/** usageError builds the LBP_USAGE error the CLI turns into exit code 2 and a usage hint. */
export function usageError(message: string, cause?: unknown): WebhookError {
  return new WebhookError(ErrorCode.USAGE, message, { cause });
}

/** parseFlags parses argv against the options; it throws LBP_USAGE for unknown flags or missing values. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: T, positionals: boolean) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals });
  } catch (err: unknown) {
    throw usageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), err);
  }
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

/** durationFlag parses a duration such as `500ms`, `5s` or `0s` into milliseconds, within bounds, or returns the fallback when absent. */
export function durationFlag(value: string | undefined, flag: string, minMs: number, maxMs: number, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const match = /^(\d+)(ms|s)$/.exec(value);
  const ms = match === null ? NaN : Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  if (!(ms >= minMs && ms <= maxMs)) {
    throw usageError(`--${flag} must be a duration like 500ms or 5s, from ${minMs}ms to ${maxMs / 1000}s, got ${JSON.stringify(value)}`);
  }
  return ms;
}

const SIZE_UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

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
