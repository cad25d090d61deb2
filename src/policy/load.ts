/** loadPolicyFile reads and validates a policy file; the only place a policy touches the file system. */
import { readFile } from 'node:fs/promises';
import { ErrorCode, WebhookError } from '../errors.js';
import { parsePolicy } from './parse.js';
import type { Policy } from './schema.js';

/** loadPolicyFile returns the validated policy in path, or throws LBP_POLICY_INVALID naming the file. */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: unknown) {
    throw new WebhookError(ErrorCode.POLICY_INVALID, `cannot read policy ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parsePolicy(text, path);
}
