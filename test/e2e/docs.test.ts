/**
 * The doc examples that need helm (`<!-- needs: helm -->`), run with the helm test/helm/build.sh
 * builds; test/unit/docs.test.ts runs all the others. How a page marks its examples:
 * test/support/docs.ts.
 */
import { describe, expect, it } from 'vitest';
import { blocks, isShell, matches, pages, runConsole, workspace, writeBlockFile } from '../support/docs.js';
import { ensureHelm } from '../support/helm.js';

describe('the doc examples that need helm', () => {
  it('run with the helm the suite builds and print what their page shows.', () => {
    const helm = ensureHelm().helm;
    let run = 0;
    for (const page of pages()) {
      const ws = workspace({ helm });
      try {
        for (const block of blocks(page)) {
          if (block.file !== undefined) writeBlockFile(ws, block);
          if (!isShell(block) || block.needs !== 'helm') continue;
          expect(block.language, `${page}:${block.line}: a helm example is a console block`).toBe('console');
          run++;
          const ran = runConsole(ws, block.text);
          ran.forEach((step, i) => {
            const shown = `${page}:${block.line}: $ ${step.command}\n--- the page shows:\n${step.expected.join('\n')}\n--- it printed (exit ${step.code}):\n${step.output.join('\n')}`;
            expect(matches(step.expected, step.output), shown).toBe(true);
            if (step.code !== 0) expect(ran[i + 1]?.command, `${page}:${block.line}: $ ${step.command} exits ${step.code}: show it with a $ echo $? line after it`).toBe('echo $?');
          });
        }
      } finally {
        ws.remove();
      }
    }
    console.log(`doc examples that need helm: ${run} blocks run`);
    expect(run).toBeGreaterThan(0);
  });
});
