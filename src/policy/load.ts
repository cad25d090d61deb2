/** loadPolicyFile reads and validates a policy file; the only place a policy touches the file system. */
import { createReadStream } from 'node:fs';
import { ErrorCode, systemMessage, WebhookError } from '../errors.js';
import { MAX_POLICY_BYTES, parsePolicy } from './parse.js';
import type { Policy } from './schema.js';

export { MAX_POLICY_BYTES };

/** STDIN names standard input where a policy path is expected (`--policy -`). */
export const STDIN = '-';

async function readBounded(chunks: AsyncIterable<unknown>, name: string, stop: () => void): Promise<string> {
  const kept: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_POLICY_BYTES) {
      stop();
      throw new WebhookError(ErrorCode.POLICY_INVALID, `${name}: larger than ${MAX_POLICY_BYTES} bytes, the most a policy may be; not a policy file`);
    }
    kept.push(buffer);
  }
  return Buffer.concat(kept).toString('utf8');
}

/**
 * loadPolicyFile reads the policy at path (`-`: from stdin) and returns it validated and compiled
 * by parsePolicy, the one pipeline a policy goes through at start and at every reload. The read
 * stops one byte past MAX_POLICY_BYTES, so a huge file is refused without being read whole. It
 * throws LBP_POLICY_INVALID naming the file.
 */
export async function loadPolicyFile(path: string, stdin?: AsyncIterable<unknown>): Promise<Policy> {
  const name = path === STDIN ? '<stdin>' : path;
  let text: string;
  try {
    if (path === STDIN) {
      if (stdin === undefined) throw new WebhookError(ErrorCode.POLICY_INVALID, '<stdin>: no standard input to read the policy from');
      text = await readBounded(stdin, name, () => undefined);
    } else {
      const stream = createReadStream(path);
      text = await readBounded(stream, name, () => stream.destroy());
    }
  } catch (err: unknown) {
    if (err instanceof WebhookError) throw err;
    throw new WebhookError(ErrorCode.POLICY_INVALID, `${name}: cannot read the policy: ${systemMessage(err)}`, { cause: err });
  }
  try {
    return parsePolicy(text, name);
  } catch (err: unknown) {
    if (err instanceof WebhookError) throw err;
    // The yaml parser recurses per nesting level: a hostile file can exhaust the stack.
    const reason = err instanceof RangeError ? 'nested too deeply' : systemMessage(err);
    throw new WebhookError(ErrorCode.POLICY_INVALID, `${name}: invalid policy: ${reason}`, { cause: err });
  }
}
