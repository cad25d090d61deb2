/** The validate command: a policy file alone, read and checked as serve reads it, every problem reported. */
import { loadPolicyFile } from '../policy/load.js';
import type { ParsedArgs } from './args.js';
import type { Io } from './io.js';

/** runValidate loads the policy with the pipeline serve uses and prints one line saying what it holds; an invalid policy throws (exit 2, every problem). */
export async function runValidate(args: ParsedArgs, io: Io): Promise<number> {
  const path = args.required('policy');
  const policy = await loadPolicyFile(path, io.stdin);
  const name = path === '-' ? '<stdin>' : path;
  const rules = `${policy.rules.length} ${policy.rules.length === 1 ? 'rule' : 'rules'}`;
  io.stdout.write(`lb-probe-webhook validate: ${name}: valid (provider ${policy.provider}, mode ${policy.mode}, probe ${policy.probe}, ${rules})\n`);
  return 0;
}
