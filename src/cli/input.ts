/**
 * The CLI's manifest inputs: files, directories (read recursively, YAML and JSON files only) and
 * stdin, read with a bound on their total size, so an input over its limit is refused before it
 * is parsed, and a file that is not UTF-8 text is named as such.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
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

/** STDIN is the argument that names standard input. */
export const STDIN = '-';

/** MANIFEST_EXTENSIONS are the files a directory given as input contributes. */
export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'] as const;

/** InputSource is one named input and its text. */
export interface InputSource {
  /** name is the file's path as given or found (`<stdin>` for stdin). */
  readonly name: string;
  /** path is the file's path, or undefined for stdin. */
  readonly path: string | undefined;
  readonly text: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

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
  try {
    return { text: UTF8.decode(Buffer.concat(chunks)), size };
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${name}: not a text file: its bytes are not UTF-8 (a binary file?)`, { cause: err });
  }
}

/** walk lists the YAML and JSON files under a directory, recursively, in name order; hidden entries (.git) are skipped. */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && MANIFEST_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) files.push(path);
  }
  return files;
}

/**
 * expandInputs turns the arguments into the inputs to read: a directory becomes the YAML and JSON
 * files under it, `-` stays stdin, and no argument at all means stdin. stdin may be named once.
 */
export async function expandInputs(names: readonly string[]): Promise<string[]> {
  const wanted = names.length === 0 ? [STDIN] : names;
  if (wanted.filter((n) => n === STDIN).length > 1) throw new WebhookError(ErrorCode.USAGE, '`-` (stdin) may be given only once');
  const files: string[] = [];
  for (const name of wanted) {
    if (name === STDIN) {
      files.push(name);
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(name)).isDirectory();
    } catch (err: unknown) {
      throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${name}: cannot read: ${systemErrorMessage(err)}`, { cause: err });
    }
    if (!isDirectory) files.push(name);
    else {
      try {
        files.push(...(await walk(name)));
      } catch (err: unknown) {
        throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${name}: cannot read the directory: ${systemErrorMessage(err)}`, { cause: err });
      }
    }
  }
  return [...new Set(files)];
}

/**
 * readInputs reads each input (see expandInputs) one after another, and throws
 * LBP_INPUT_TOO_LARGE as soon as their total passes maxBytes, before any of it is parsed.
 */
export async function readInputs(names: readonly string[], io: Io, maxBytes: number, flag = '--max-input-bytes'): Promise<InputSource[]> {
  const sources: InputSource[] = [];
  let left = maxBytes;
  for (const name of await expandInputs(names)) {
    const stdin = name === STDIN;
    const label = stdin ? '<stdin>' : name;
    const { text, size } = await readBounded(stdin ? io.stdin : createReadStream(name), label, left, { bytes: maxBytes, flag });
    left -= size;
    sources.push({ name: label, path: stdin ? undefined : name, text });
  }
  return sources;
}
