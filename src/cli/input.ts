/** Bounded reads of the CLI's inputs (files, pipes, stdin): an input over its limit is refused before it is parsed. */
import { createReadStream } from 'node:fs';
import { ErrorCode, WebhookError } from '../errors.js';
import { systemErrorMessage } from './failure.js';
import type { Io } from './io.js';

/**
 * DEFAULT_MAX_INPUT_BYTES bounds the total of render's and check's inputs: 64 MiB, many times a
 * large rendered chart. The CLI holds the text, its rendered copy and one report per object in
 * memory (one document's parse tree at a time): check over 60 MiB of Services peaks at 570 MB.
 * --max-input-bytes raises it.
 */
export const DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024;

/** InputSource is one named input and its text. */
export interface InputSource {
  readonly name: string;
  readonly text: string;
}

async function readBounded(stream: NodeJS.ReadableStream, name: string, budget: number, limit: { bytes: number; flag: string }): Promise<{ text: string; size: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buffer.length;
      if (size > budget) {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        throw new WebhookError(ErrorCode.INPUT_TOO_LARGE, `${name}: over the ${limit.bytes}-byte input limit, counting all inputs (raise it with ${limit.flag})`);
      }
      chunks.push(buffer);
    }
  } catch (err: unknown) {
    if (err instanceof WebhookError) throw err;
    throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${name}: cannot read: ${systemErrorMessage(err)}`, { cause: err });
  }
  return { text: Buffer.concat(chunks).toString('utf8'), size };
}

/**
 * readInputs reads each named file (`-` for stdin; stdin alone when none) one after another, and
 * throws LBP_INPUT_TOO_LARGE as soon as their total passes maxBytes, before any of it is parsed.
 */
export async function readInputs(names: readonly string[], io: Io, maxBytes: number, flag = '--max-input-bytes'): Promise<InputSource[]> {
  const wanted = names.length === 0 ? ['-'] : names;
  if (wanted.filter((n) => n === '-').length > 1) throw new WebhookError(ErrorCode.USAGE, '`-` (stdin) may be given only once');
  const sources: InputSource[] = [];
  let left = maxBytes;
  for (const name of wanted) {
    const label = name === '-' ? '<stdin>' : name;
    const { text, size } = await readBounded(name === '-' ? io.stdin : createReadStream(name), label, left, { bytes: maxBytes, flag });
    left -= size;
    sources.push({ name: label, text });
  }
  return sources;
}
