/** The process surface the CLI commands use. */

/** Io is the process surface the commands use, injected so the commands never reach for globals. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
}
