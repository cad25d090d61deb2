/** loadPolicyFile reads and validates a policy file; the only place a policy touches the file system. */
import { createReadStream } from 'node:fs';
import { ErrorCode, WebhookError } from '../errors.js';
import { parsePolicy } from './parse.js';
import type { Policy } from './schema.js';

/**
 * MAX_POLICY_BYTES bounds a policy file: 64 KiB, ten times a long policy, so a wrong path (a log,
 * a dump) or a hostile file is refused before it is parsed, here and at reload. The parser's
 * duplicate-key check is quadratic in a map's size: 255 KiB of keys took 18 s, 64 KiB about 1 s.
 */
export const MAX_POLICY_BYTES = 64 * 1024;

async function readBounded(path: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  const stream = createReadStream(path);
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_POLICY_BYTES) {
      stream.destroy();
      throw new WebhookError(ErrorCode.POLICY_INVALID, `policy ${path}: larger than ${MAX_POLICY_BYTES} bytes; not a policy file`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** loadPolicyFile returns the validated policy in path, or throws LBP_POLICY_INVALID naming the file. */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readBounded(path);
  } catch (err: unknown) {
    if (err instanceof WebhookError) throw err;
    throw new WebhookError(ErrorCode.POLICY_INVALID, `cannot read policy ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parsePolicy(text, path);
  } catch (err: unknown) {
    if (err instanceof WebhookError) throw err;
    // The yaml parser recurses per nesting level: a hostile file can exhaust the stack.
    const reason = err instanceof RangeError ? 'nested too deeply' : (err as Error).message;
    throw new WebhookError(ErrorCode.POLICY_INVALID, `${path}: invalid policy: ${reason}`, { cause: err });
  }
}
