/**
 * The import structure, checked (docs/development.md, "The import rule"). In src/ there is no import
 * cycle, and each folder imports only from its own rank or lower (two folders of one rank never
 * import each other):
 *
 *   0  core (the model), errors.ts, config.ts, clock.ts
 *   1  profiles, providers           the plug-ins, each registry beside them
 *      metrics, tls, certs, log      adapters of one concern each
 *   2  policy                        parse (pure) and load (reads the file)
 *   3  decision
 *   4  manifests, audit, admission,  uses of the decision (admission: the review seam and its log and metrics wrappers;
 *      admission-policy              admission-policy: the decision compiled to CEL for the API server)
 *   5  http, runtime                 the servers; live reload and the process's lifecycle
 *   6  cli                           the commands; no module imports the entry point cli/main.ts
 *
 * The pure core (core, profiles, providers, policy, decision, manifests, audit, admission-policy) imports no adapter,
 * no Node.js built-in and no package other than yaml and fast-json-patch; policy/load.ts is the one
 * module of it that reads a file. Outside src/, tests and the benchmark share code only through
 * test/support/: an import that leaves its own folder (test/unit, test/e2e, test/conformance,
 * test/helm, bench) goes to test/support/ or src/, and test/support/ imports only itself and src/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A static import or export, with or without bindings; a dynamic import() of a literal path. */
const RELATIVE_IMPORTS = [/^(?:import|export)\b[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms, /^import\s+'(\.{1,2}\/[^']+)'/gm, /\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g];
/** The packages an import names (node: built-ins included), static or dynamic. */
const PACKAGE_IMPORTS = [/^(?:import|export)\b[^;]*?\sfrom\s+'([^.'][^']*)'/gms, /^import\s+'([^.'][^']*)'/gm, /\bimport\(\s*'([^.'][^']*)'\s*\)/g];

interface Module {
  /** imports are the project's modules it imports, as paths from the repository root (types included). */
  readonly imports: readonly string[];
  /** packages are the package names it imports, node: built-ins included. */
  readonly packages: readonly string[];
  readonly text: string;
}

/** modules reads every .ts file under the given folders of the repository, keyed by its path from the root (with /). */
function modules(...folders: string[]): Map<string, Module> {
  const found = new Map<string, Module>();
  const posix = (path: string) => path.split(sep).join('/');
  for (const folder of folders) {
    for (const entry of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const file = join(entry.parentPath, entry.name);
      const text = readFileSync(file, 'utf8');
      const imports = RELATIVE_IMPORTS.flatMap((re) => [...text.matchAll(re)]).map((m) => posix(relative(ROOT, resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')))));
      const packages = PACKAGE_IMPORTS.flatMap((re) => [...text.matchAll(re)]).map((m) => m[1]!);
      found.set(posix(relative(ROOT, file)), { imports, packages, text });
    }
  }
  return found;
}

/** RANKS ranks the folders (and top-level files) of src/; a module may import only from its own folder, a lower rank, or (at rank 0) its rank. */
const RANKS: Readonly<Record<string, number>> = {
  core: 0,
  'errors.ts': 0,
  'config.ts': 0,
  'clock.ts': 0,
  profiles: 1,
  providers: 1,
  metrics: 1,
  tls: 1,
  certs: 1,
  log: 1,
  policy: 2,
  decision: 3,
  manifests: 4,
  audit: 4,
  admission: 4,
  'admission-policy': 4,
  http: 5,
  runtime: 5,
  cli: 6,
};

/** PURE are the folders of the pure core: no I/O, no adapter. */
const PURE = new Set(['core', 'errors.ts', 'profiles', 'providers', 'policy', 'decision', 'manifests', 'audit', 'admission-policy']);
/** PURE_PACKAGES are the only packages the pure core may import. */
const PURE_PACKAGES = new Set(['yaml', 'fast-json-patch']);
/** FILE_READERS are the modules of the pure folders that read a file, by design. */
const FILE_READERS = new Set(['src/policy/load.ts']);

/** folderOf names a src/ module's folder (or top-level file): src/http/app.ts -> http. */
function folderOf(module: string): string {
  return module.split('/')[1]!;
}

/** areaOf names the part of the repository a module belongs to: src, bench, or test/<folder>. */
function areaOf(module: string): string {
  const [top, second] = module.split('/');
  return top === 'test' ? `test/${second}` : top!;
}

const graph = modules('src', 'test', 'bench');
const src = [...graph].filter(([module]) => module.startsWith('src/'));

describe('the import structure of src/', () => {
  it('finds the modules of every ranked folder, and reads static, type-only and dynamic imports, so the checks below look at something.', () => {
    const folders = new Set(src.map(([module]) => folderOf(module)));
    expect([...folders].sort()).toEqual(Object.keys(RANKS).sort());
    expect(graph.get('src/decision/decide.ts')?.imports).toContain('src/core/target.ts');
    expect(graph.get('src/runtime/reload.ts')?.imports).toContain('src/metrics/metrics.ts');
    expect(graph.get('src/cli/commands.ts')?.imports).toContain('src/cli/serve.ts');
  });

  it('has no import cycle.', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (module: string, stack: string[]): void => {
      state.set(module, 'open');
      stack.push(module);
      for (const next of graph.get(module)?.imports ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
        else if (state.get(next) === undefined) visit(next, stack);
      }
      stack.pop();
      state.set(module, 'done');
    };
    for (const [module] of src) if (state.get(module) === undefined) visit(module, []);
    expect(cycles).toEqual([]);
  });

  it('never imports from a higher rank or from another folder of the same rank (rank 0 aside), and never from outside src/.', () => {
    const wrong: string[] = [];
    for (const [module, { imports }] of src) {
      const from = RANKS[folderOf(module)];
      for (const target of imports) {
        const to = target.startsWith('src/') ? RANKS[folderOf(target)] : undefined;
        const sibling = to === from && folderOf(target) !== folderOf(module) && from !== 0;
        if (from === undefined || to === undefined || to > from || sibling) wrong.push(`${module} -> ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps the pure core pure: it imports no adapter, no Node.js built-in, no package but yaml and fast-json-patch, and never reads process (policy/load.ts alone reads its file).', () => {
    const impure: string[] = [];
    for (const [module, { imports, packages, text }] of src) {
      if (!PURE.has(folderOf(module))) continue;
      for (const target of imports) if (!PURE.has(folderOf(target))) impure.push(`${module} -> ${target}`);
      for (const name of packages) if (!PURE_PACKAGES.has(name) && !(FILE_READERS.has(module) && name === 'node:fs')) impure.push(`${module} -> ${name}`);
      if (/\bprocess\.(?:env|argv|exit|exitCode|cwd|on|stdout|stderr|stdin)\b/.test(text)) impure.push(`${module} reads process`);
    }
    expect(impure).toEqual([]);
  });

  it('keeps the decision free of registries: it reaches providers and profiles only through the compiled policy’s types.', () => {
    const decision = src.filter(([module]) => folderOf(module) === 'decision').flatMap(([, { imports }]) => imports);
    expect(decision.filter((t) => t.endsWith('/index.ts') || t.startsWith('src/policy/parse') || t.startsWith('src/policy/load'))).toEqual([]);
  });

  it('has no module, in src/, test/ or bench/, that imports the entry point cli/main.ts (it runs the command when imported).', () => {
    const importers = [...graph].filter(([, { imports }]) => imports.includes('src/cli/main.ts')).map(([module]) => module);
    expect(importers).toEqual([]);
  });
});

describe('the import structure of test/ and bench/', () => {
  const outside = [...graph].filter(([module]) => !module.startsWith('src/'));

  it('finds the harness in test/support/ and its users in every test folder and bench/, so the checks below look at something.', () => {
    const users = new Set(outside.filter(([module, { imports }]) => areaOf(module) !== 'test/support' && imports.some((t) => areaOf(t) === 'test/support')).map(([module]) => areaOf(module)));
    expect([...users].sort()).toEqual(['bench', 'test/conformance', 'test/e2e', 'test/node', 'test/unit']);
    expect(graph.get('bench/run.ts')?.imports).toContain('test/support/controlplane.ts');
  });

  it('never imports a test file.', () => {
    const wrong = [...graph].flatMap(([module, { imports }]) => imports.filter((t) => t.endsWith('.test.ts')).map((t) => `${module} -> ${t}`));
    expect(wrong).toEqual([]);
  });

  it('leaves its own folder only for test/support/ or src/: no test folder or bench/ imports another’s modules.', () => {
    const wrong: string[] = [];
    for (const [module, { imports }] of outside) {
      for (const target of imports) {
        const to = areaOf(target);
        if (to !== areaOf(module) && to !== 'test/support' && to !== 'src') wrong.push(`${module} -> ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps test/support/ independent of the scenarios: it imports only itself and src/.', () => {
    const support = outside.filter(([module]) => areaOf(module) === 'test/support');
    expect(support.length).toBeGreaterThan(0);
    const wrong = support.flatMap(([module, { imports }]) => imports.filter((t) => !['test/support', 'src'].includes(areaOf(t))).map((t) => `${module} -> ${t}`));
    expect(wrong).toEqual([]);
  });
});
