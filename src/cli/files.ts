/** Atomic file writes for the CLI: nothing is ever half-written. */
import { mkdir, rename, writeFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * writeFilesAtomically writes every file to a temporary name first and renames them into place
 * only once all were written. A mode of `keep` keeps the mode of the file being replaced.
 */
export async function writeFilesAtomically(files: readonly { path: string; content: string; mode: number | 'keep' }[]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const file of files) {
      await mkdir(dirname(file.path), { recursive: true });
      const temp = join(dirname(file.path), `.${process.pid}.${Date.now()}.tmp-${temps.length}`);
      temps.push(temp);
      const mode = file.mode === 'keep' ? (await stat(file.path)).mode & 0o7777 : file.mode;
      await writeFile(temp, file.content, { mode, flag: 'wx' });
    }
    for (const [i, file] of files.entries()) await rename(temps[i] as string, file.path);
  } catch (err: unknown) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw err;
  }
}
