/**
 * watchFiles polls a set of files and reports when their content changes. Polling, not inotify:
 * a mounted Secret or ConfigMap is updated by swapping a `..data` symlink, which file watches on
 * the old target miss, while reading the path again always sees the new content.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../clock.js';

/** FileWatch stops a watchFiles poller. */
export interface FileWatch {
  stop(): void;
}

/** WatchOptions configures watchFiles. */
export interface WatchOptions {
  readonly paths: readonly string[];
  readonly intervalMs: number;
  readonly clock: Clock;
  /** onChange receives the new contents, in the order of paths, whenever any of them changed. */
  readonly onChange: (contents: readonly string[]) => void | Promise<void>;
  /** onError receives read errors (a file deleted, or unreadable), once per episode: again only after a successful read. */
  readonly onError: (err: unknown) => void;
}

function digest(contents: readonly string[]): string {
  const hash = createHash('sha256');
  for (const content of contents) hash.update(content).update('\0');
  return hash.digest('hex');
}

/**
 * watchFiles starts polling. The first poll records the current contents without reporting them:
 * the caller has loaded those already. Each change is reported once, also when the caller refuses
 * it, so a bad file is logged once rather than every interval.
 */
export async function watchFiles(options: WatchOptions): Promise<FileWatch> {
  const read = () => Promise.all(options.paths.map((p) => readFile(p, 'utf8')));
  let last = digest(await read());
  let busy = false;
  let failing = false;
  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const contents = await read();
      failing = false;
      const current = digest(contents);
      if (current === last) return;
      last = current;
      await options.onChange(contents);
    } catch (err: unknown) {
      if (failing) return;
      failing = true;
      options.onError(err);
    } finally {
      busy = false;
    }
  };
  const stop = options.clock.setInterval(poll, options.intervalMs, { unref: true });
  return { stop };
}
