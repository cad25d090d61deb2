/**
 * The export command: `export admission-policy` prints the objects that make the API server apply
 * the policy itself (src/admission-policy), or refuses, one line per setting, what CEL cannot do
 * exactly. Its flags are its own, parsed with the shared helpers.
 */
import { compileAdmissionPolicy, type ApiVersion, type Selection } from '../admission-policy/compile.js';
import { isDnsSubdomain } from '../core/names.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { loadPolicyFile } from '../policy/load.js';
import { parseFlags, requireString, usageError } from './args.js';
import type { Io } from './io.js';

const TARGETS = ['admission-policy'] as const;
const API_VERSIONS: readonly ApiVersion[] = ['v1', 'v1beta1'];
const SELECTIONS: readonly Selection[] = ['opt-in', 'cluster-wide'];

function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw usageError(`--${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
}

/** runExport prints the compiled objects on stdout, or exits 2 naming each setting it refuses. */
export async function runExport(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { policy: { type: 'string' }, 'api-version': { type: 'string' }, namespaces: { type: 'string' }, name: { type: 'string' } },
    true,
  );
  const [target, ...extra] = positionals;
  if (target === undefined) throw usageError(`what to export is required: ${TARGETS.join(', ')}`);
  if (!(TARGETS as readonly string[]).includes(target)) throw usageError(`cannot export ${JSON.stringify(target)}; one of ${TARGETS.join(', ')}`);
  if (extra.length > 0) throw usageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const apiVersion = oneOf(values['api-version'], 'api-version', API_VERSIONS, 'v1');
  const selection = oneOf(values.namespaces, 'namespaces', SELECTIONS, 'opt-in');
  const name = values.name ?? 'lb-probe-webhook';
  if (!isDnsSubdomain(name)) throw usageError(`--name must be a DNS subdomain (lower case letters, digits, '-' and '.'), got ${JSON.stringify(name)}`);
  const file = requireString(values.policy, 'policy');
  const policy = await loadPolicyFile(file);
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
