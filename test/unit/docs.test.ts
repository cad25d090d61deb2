/**
 * Every shell example in README.md and docs/ runs here and prints what the page shows, so the
 * docs cannot drift from the code. How a page marks its examples: test/support/docs.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blocks, isShell, matches, pages, runConsole, runScript, workspace, writeBlockFile } from '../support/docs.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** anchors are the anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens. */
function anchors(page: string): Set<string> {
  const text = readFileSync(join(ROOT, page), 'utf8').replace(/^\s*```[^]*?^\s*```/gm, '');
  return new Set([...text.matchAll(/^#+ (.+)$/gm)].map((m) => (m[1] as string).toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')));
}

const counted = { run: 0, commands: 0, notRun: 0, elsewhere: 0 };

describe.each(pages())('%s', (page) => {
  it('runs its shell examples and gets the output the page shows; an example that cannot run here says why.', () => {
    const ws = workspace();
    try {
      for (const block of blocks(page)) {
        const where = `${page}:${block.line}`;
        if (block.file !== undefined) writeBlockFile(ws, block);
        if (!isShell(block)) {
          expect(block.text.split('\n').filter((l) => l.startsWith('$ ')), `${where}: a shell example in a ${block.language || 'plain'} block; make it a console block`).toEqual([]);
          continue;
        }
        if (block.notRun !== undefined) {
          counted.notRun++;
          continue;
        }
        if (block.needs !== undefined) {
          // Run by test/e2e/docs.test.ts, where the tool is built.
          counted.elsewhere++;
          continue;
        }
        counted.run++;
        if (block.language === 'console') {
          const ran = runConsole(ws, block.text);
          expect(ran.length, `${where}: a console block without a $ command`).toBeGreaterThan(0);
          ran.forEach((step, i) => {
            counted.commands++;
            const shown = `${where}: $ ${step.command}\n--- the page shows:\n${step.expected.join('\n')}\n--- it printed (exit ${step.code}):\n${step.output.join('\n')}`;
            expect(matches(step.expected, step.output), shown).toBe(true);
            if (step.code !== 0) expect(ran[i + 1]?.command, `${where}: $ ${step.command} exits ${step.code}: show it with a $ echo $? line after it`).toBe('echo $?');
          });
        } else {
          counted.commands++;
          const { code, output } = runScript(ws, block.text);
          expect(code, `${where}: the script failed:\n${output}`).toBe(0);
        }
      }
    } finally {
      ws.remove();
    }
  });
});

describe('the links between the pages', () => {
  it.each(pages())('%s links only to files and headings that exist.', (page) => {
    const text = readFileSync(join(ROOT, page), 'utf8').replace(/^\s*```[^]*?^\s*```/gm, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue;
      const [path = '', anchor] = (target as string).split('#');
      const file = path === '' ? page : normalize(join(dirname(page), path));
      if (!existsSync(join(ROOT, file))) broken.push(`${target}: no file ${file}`);
      else if (anchor !== undefined && file.endsWith('.md') && !anchors(file).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${file}`);
    }
    expect(broken).toEqual([]);
  });
});

describe('the doc examples', () => {
  it('are run by this test in their dozens: a page that stopped being found would show here.', () => {
    console.log(`doc examples: ${counted.run} blocks run (${counted.commands} commands), ${counted.elsewhere} run by the e2e docs test (they need helm), ${counted.notRun} marked not run here`);
    expect(counted.run).toBeGreaterThanOrEqual(40);
  });
});
