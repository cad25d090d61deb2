/**
 * Kubernetes name rules the policy and the CLI check against (k8s.io/apimachinery
 * pkg/util/validation/validation.go).
 */

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** isQualifiedName tells whether a string is a valid annotation or label key: an optional DNS subdomain prefix (≤253) and `/`, then a name of at most 63 characters. */
export function isQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME.test(name);
}

/** isPortName tells whether a string is a valid Service port name (IANA_SVC_NAME: ≤15 characters, lower case, a letter somewhere, no `--`). */
export function isPortName(name: string): boolean {
  return name.length <= 15 && IANA_SVC_NAME.test(name) && /[a-z]/.test(name) && !name.includes('--');
}

/** isDnsSubdomain tells whether a string is a DNS-1123 subdomain (a valid host name in a certificate). */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

/**
 * globToRegExpSource writes a name glob (`*` any run, `?` one character, everything else literal)
 * as the text of an anchored regular expression, the same in JavaScript and in RE2 (CEL's matches).
 */
export function globToRegExpSource(glob: string): string {
  return `^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`;
}

/** globToRegExp compiles a name glob to an anchored RegExp (globToRegExpSource). */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(globToRegExpSource(glob));
}
