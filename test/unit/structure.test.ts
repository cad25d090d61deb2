/**
 * The import structure, checked: no import cycle anywhere in src/, and in the pure core each layer
 * imports only from itself and the layers below it (README, Layout):
 *
 *   core (the model) <- profiles, providers <- policy <- decision <- everything else
 *
 * profiles and providers are siblings: neither imports the other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** imports maps every module of src/ (path relative to src/) to the src/ modules it imports, types included. */
function imports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^(?:import|export)\b[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms)].map((m) =>
      relative(SRC, resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
    );
    graph.set(relative(SRC, file), targets);
  }
  return graph;
}

/** LAYERS ranks the folders of the pure core; a module may import only from its own rank or lower (siblings of one rank excepted). */
const LAYERS: Readonly<Record<string, number>> = { core: 0, 'errors.ts': 0, profiles: 1, providers: 1, policy: 2, decision: 3 };

function layerOf(module: string): string {
  return module.split('/')[0]!;
}

describe('the import structure of src/', () => {
  const graph = imports();

  it('finds the modules of every layer, so the checks below look at something.', () => {
    const layers = new Set([...graph.keys()].map(layerOf));
    for (const layer of Object.keys(LAYERS)) expect(layers, layer).toContain(layer);
    expect(graph.get('decision/decide.ts')).toContain('core/target.ts');
  });

  it('has no import cycle.', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (module: string, stack: string[]): void => {
      state.set(module, 'open');
      stack.push(module);
      for (const next of graph.get(module) ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
        else if (state.get(next) === undefined) visit(next, stack);
      }
      stack.pop();
      state.set(module, 'done');
    };
    for (const module of graph.keys()) if (state.get(module) === undefined) visit(module, []);
    expect(cycles).toEqual([]);
  });

  it('never imports from a higher layer into the pure core, and profiles and providers never import each other.', () => {
    const upward: string[] = [];
    for (const [module, targets] of graph) {
      const from = LAYERS[layerOf(module)];
      if (from === undefined) continue;
      for (const target of targets) {
        const to = LAYERS[layerOf(target)];
        const sibling = to === from && layerOf(target) !== layerOf(module) && from > 0;
        if (to === undefined || to > from || sibling) upward.push(`${module} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('keeps the decision free of registries: it reaches providers and profiles only through the compiled policy’s types.', () => {
    const decision = [...graph.entries()].filter(([module]) => layerOf(module) === 'decision').flatMap(([, targets]) => targets);
    expect(decision.filter((t) => t.endsWith('/index.ts') || t.startsWith('policy/parse') || t.startsWith('policy/load'))).toEqual([]);
  });
});
