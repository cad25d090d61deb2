/** Test helpers: fixtures parsed fresh for every call, and policies built through the real parser. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { parsePolicy } from '../../src/policy/parse.js';
import type { Policy } from '../../src/policy/schema.js';
import type { JsonObject } from '../../src/core/json.js';

/** FIXTURES is the absolute path of test/fixtures. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** fixturePath returns the absolute path of a fixture file. */
export function fixturePath(name: string): string {
  return FIXTURES + name;
}

/** fixtures returns every document of a fixture file as a fresh object. */
export function fixtures(name: string): JsonObject[] {
  return parseAllDocuments(readFileSync(fixturePath(name), 'utf8')).flatMap((d) => (Array.isArray(d) ? [] : [d.toJS() as JsonObject]));
}

/** fixture returns the first (or the given) document of a fixture file as a fresh object. */
export function fixture(name: string, index = 0): JsonObject {
  const doc = fixtures(name)[index];
  if (doc === undefined) throw new Error(`fixture ${name} has no document ${index}`);
  return doc;
}

/** policy builds a Policy through parsePolicy, so tests only ever see validated policies. */
export function policy(settings: Record<string, unknown>): Policy {
  return parsePolicy(stringify(settings), 'test-policy.yaml');
}
