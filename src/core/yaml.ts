/**
 * YAML checks shared by the policy parser and the manifest renderer, worded for people rather
 * than in the yaml library's own terms: duplicate keys found in linear time and named, a file
 * that is not text named as such, and line numbers that never point past the end of the file.
 */
import { isScalar, visit, type Document, type LineCounter } from 'yaml';

/** YamlProblem is one problem found in a text, at an offset of it. */
export interface YamlProblem {
  readonly offset: number;
  readonly message: string;
}

/**
 * duplicateKeys finds every key that repeats within one mapping, naming the key and the line of
 * its first use. The yaml library's own uniqueKeys check compares every key with every other
 * (quadratic in a map's size); a Set per map is linear, so a map of 100,000 keys costs
 * milliseconds.
 */
export function duplicateKeys(doc: Document, lines: LineCounter): YamlProblem[] {
  const problems: YamlProblem[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const id = `${typeof pair.key.value}:${String(pair.key.value)}`;
        const offset = pair.key.range?.[0] ?? 0;
        const first = seen.get(id);
        if (first === undefined) seen.set(id, offset);
        else problems.push({ offset, message: `duplicate key ${JSON.stringify(String(pair.key.value))} (first at line ${lines.linePos(first).line})` });
      }
    },
  });
  return problems;
}

/**
 * NOT_PRINTABLE matches a character YAML does not allow in a stream (outside its c-printable set:
 * C0 controls but tab, line feed and carriage return; DEL; C1 controls but NEL), which is what a
 * binary file given by mistake is made of.
 */
// eslint-disable-next-line no-control-regex
const NOT_PRINTABLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u0084\u0086-\u009F\uFFFE\uFFFF]/;

/** binaryProblem returns the problem of a text that holds a character no YAML file may hold, at the first such character. */
export function binaryProblem(text: string): YamlProblem | undefined {
  const match = NOT_PRINTABLE.exec(text);
  if (match === null) return undefined;
  const code = match[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return { offset: match.index, message: `not a text file: control character U+${code}, which YAML does not allow (a binary file?)` };
}

/**
 * lineAt is the 1-based line of an offset, never past the last line of the text: the yaml library
 * reports an error at the end of the input on the line after a final newline, which does not exist.
 */
export function lineAt(lines: LineCounter, text: string, offset: number): number {
  const clamped = Math.max(0, Math.min(offset, text.endsWith('\n') ? text.length - 1 : text.length));
  return lines.linePos(clamped).line;
}
