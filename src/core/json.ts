/**
 * Safe readers for untrusted JSON. Admission requests and manifests arrive as arbitrary JSON,
 * so the core never assumes a shape: every read goes through these helpers and a wrong type
 * reads as absent.
 */

/** JsonObject is a plain JSON object. */
export type JsonObject = Record<string, unknown>;

/** isObject tells whether a value is a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** objectAt returns the object under key, or undefined when absent or not an object. */
export function objectAt(obj: unknown, key: string): JsonObject | undefined {
  if (!isObject(obj)) return undefined;
  const value = obj[key];
  return isObject(value) ? value : undefined;
}

/** stringAt returns the string under key, or undefined when absent or not a string. */
export function stringAt(obj: unknown, key: string): string | undefined {
  if (!isObject(obj)) return undefined;
  const value = obj[key];
  return typeof value === 'string' ? value : undefined;
}

/** numberAt returns the integer under key, or undefined when absent or not an integer. */
export function integerAt(obj: unknown, key: string): number | undefined {
  if (!isObject(obj)) return undefined;
  const value = obj[key];
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

/** arrayAt returns the array under key, or an empty array when absent or not an array. */
export function arrayAt(obj: unknown, key: string): readonly unknown[] {
  if (!isObject(obj)) return [];
  const value = obj[key];
  return Array.isArray(value) ? value : [];
}

/** stringMap returns the string-valued entries of a map (a Kubernetes annotations or labels map). */
export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
