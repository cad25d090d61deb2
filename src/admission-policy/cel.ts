/**
 * CEL literals for the policy's values. The text is the one Helm's toJson gives for the same value
 * (Go's encoding/json: map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 and control characters as
 * \u escapes), so the chart renders byte for byte what `export admission-policy` prints. JSON's
 * string escapes are CEL's too (cel-spec, "String and Bytes Values").
 */

/** celString renders a string as a double-quoted CEL literal; it throws on a string with a lone surrogate, which no escape can carry. */
export function celString(value: string): string {
  if (!value.isWellFormed()) throw new Error(`the string ${JSON.stringify(value)} holds a lone surrogate, which a CEL literal cannot carry`);
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '"') out += '\\"';
    else if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || char === '<' || char === '>' || char === '&' || code === 0x2028 || code === 0x2029) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return `${out}"`;
}

/** compareCodePoints orders strings by code point, which is the byte order of their UTF-8 (Go's sort of map keys). */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** CelValue is a value a policy literal holds. */
export type CelValue = string | number | boolean | null | readonly CelValue[] | { readonly [key: string]: CelValue };

/** celLiteral renders a value as a CEL literal: compact JSON, map keys sorted by code point, as Helm's toJson writes it. */
export function celLiteral(value: CelValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return celString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${(value as readonly CelValue[]).map(celLiteral).join(',')}]`;
  const entries = Object.entries(value as { readonly [key: string]: CelValue }).sort(([a], [b]) => compareCodePoints(a, b));
  return `{${entries.map(([k, v]) => `${celString(k)}:${celLiteral(v)}`).join(',')}}`;
}
