/**
 * The export command: `export admission-policy` prints the objects that make the API server apply
 * the policy itself (src/admission-policy), or refuses, one line per setting, what CEL cannot do
 * exactly. Its flags are its own, parsed with the shared helpers.
 */
import { compileAdmissionPolicy, type ApiVersion, type Selection } from '../admission-policy/compile.js';
import { isDnsSubdomain } from '../core/names.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { loadPolicyFile } from '../policy/load.js';
import { usageError, type ParsedArgs } from './args.js';
import type { Io } from './io.js';

/** runExport prints the compiled objects on stdout, or exits 2 naming each setting it refuses. The command table checks the flags and their choices. */
export async function runExport(args: ParsedArgs, io: Io): Promise<number> {
  const apiVersion = args.string('api-version') as ApiVersion;
  const selection = args.string('namespaces') as Selection;
  const name = args.string('name') ?? 'lb-probe-webhook';
  if (!isDnsSubdomain(name)) throw usageError(`--name must be a DNS subdomain (lower case letters, digits, '-' and '.'), got ${JSON.stringify(name)}`);
  const file = args.required('policy');
  const policy = await loadPolicyFile(file, io.stdin);
  const compiled = compileAdmissionPolicy(policy, { apiVersion, name, selection });
  if ('refusals' in compiled) {
    throw new WebhookError(
      ErrorCode.ADMISSION_POLICY_UNSUPPORTED,
      `${file}: a MutatingAdmissionPolicy cannot do exactly what the webhook does (${compiled.refusals.length} ${compiled.refusals.length === 1 ? 'setting' : 'settings'}); use the webhook for this policy`,
      { details: compiled.refusals.map((r) => `${file}: ${r.setting}: ${r.reason}`) },
    );
  }
  io.stdout.write(compiled.yaml);
  return 0;
}
