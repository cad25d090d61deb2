/**
 * The real node's host journal (test/support/host.ts), on changes a test may make anywhere: a
 * folder and a process. A run that is killed leaves its journal behind; the next run's recover()
 * undoes what it holds, and never kills a process that only reuses a journaled pid.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostJournal, processStart } from '../support/host.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-journal-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** sleeper starts a process that would outlive the test, and ends it if the test did not; exit resolves with the signal that ended it. */
function sleeper(): { pid: number; alive: () => boolean; end: () => void; exit: Promise<NodeJS.Signals | null> } {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = child.pid as number;
  const exit = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return { pid, alive: () => child.exitCode === null && child.signalCode === null, end: () => child.kill('SIGKILL'), exit };
}

const exited = (check: () => boolean) => new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    if (!check()) {
      clearInterval(timer);
      resolve();
    }
  }, 20);
});

describe('HostJournal', () => {
  it('undoes what a killed run journaled when the next run recovers: the process ends, the folder goes, and so does the journal', async () => {
    const journalDir = tempDir();
    const folder = join(tempDir(), 'node-folder');
    const proc = sleeper();
    try {
      const journal = new HostJournal(journalDir);
      journal.record({ kind: 'folder', path: folder });
      mkdirSync(folder);
      journal.recordProcess(proc.pid, 'sleep');
      expect(readFileSync(join(journalDir, 'journal.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
      // The run is killed here: nothing undone. A new journal refuses to start over the old one.
      expect(() => new HostJournal(journalDir)).toThrow(/journal.jsonl exists: call HostJournal.recover\(\) first/);

      expect(HostJournal.recover(journalDir)).toBe(2);
      await exited(proc.alive);
      expect(proc.alive()).toBe(false);
      expect(existsSync(folder)).toBe(false);
      expect(existsSync(join(journalDir, 'journal.jsonl'))).toBe(false);
      expect(HostJournal.recover(journalDir)).toBe(0);
    } finally {
      proc.end();
    }
  });

  it('never kills a process whose pid was journaled with another start time (a pid used again)', async () => {
    const journalDir = tempDir();
    const proc = sleeper();
    try {
      const journal = new HostJournal(journalDir);
      const start = processStart(proc.pid);
      expect(start).toMatch(/^\d+$/);
      journal.record({ kind: 'process', pid: proc.pid, start: String(Number(start) - 1), name: 'an earlier process with this pid' });
      journal.undoAll();
      // Had undoAll killed it, SIGKILL would already be on its way; the SIGTERM sent now would not be the signal that ended it.
      process.kill(proc.pid, 'SIGTERM');
      expect(await proc.exit).toBe('SIGTERM');
    } finally {
      proc.end();
    }
  });

  it('ignores a last line cut short by the kill, as a change that was never made', () => {
    const journalDir = tempDir();
    const folder = join(tempDir(), 'kept');
    mkdirSync(folder);
    const journal = new HostJournal(journalDir);
    journal.record({ kind: 'folder', path: join(tempDir(), 'gone') });
    // A torn write: half of the record that would have named the folder.
    appendFileSync(join(journalDir, 'journal.jsonl'), `{"kind":"folder","path":"${folder}`);
    expect(HostJournal.recover(journalDir)).toBe(1);
    expect(existsSync(folder)).toBe(true);
  });
});
