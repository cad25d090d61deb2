/**
 * The process's log: a pino logger, and beside it the one small adapter that writes a
 * pre-rendered line in pino's exact format for the hot path (one line per review), built here
 * from the same destination, bindings and clock as the logger, so nothing reaches into pino's
 * internals and a test can pin the line against pino's own rendering of the same fields.
 *
 * On a file descriptor (the real stdout) lines are buffered up to LOG_BUFFER_BYTES and written
 * asynchronously, flushed every LOG_FLUSH_MS and at close: one write per ninety-odd review lines
 * under load, and no line waits longer than LOG_FLUSH_MS when traffic is low. At most
 * LOG_MAX_PENDING_BYTES wait for a stdout nobody reads; the rest are dropped and reported.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Clock } from '../clock.js';

/** LOG_FLUSH_MS bounds how long a log line may wait in the buffer. */
export const LOG_FLUSH_MS = 250;
/**
 * LOG_BUFFER_BYTES: lines are written in batches of this size (about ninety review lines), or every
 * LOG_FLUSH_MS. Each write goes through libuv's thread pool, a thread switch on the one core the
 * webhook has: at 8 KiB a batch the writes cost about 4 µs of CPU per review more (bench, closed loop).
 */
export const LOG_BUFFER_BYTES = 32 * 1024;
/**
 * LOG_MAX_PENDING_BYTES bounds the lines waiting for stdout, about 3,500 review lines. When
 * nothing reads stdout (a stalled container runtime), lines beyond it are dropped and reported to
 * onDrop: reviews keep being answered, and memory stays inside its budget.
 */
export const LOG_MAX_PENDING_BYTES = 1024 * 1024;

/** LogLevel is a pino level name. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** LogOptions configures createLog. */
export interface LogOptions {
  readonly level: LogLevel;
  /** destination is a file descriptor (buffered, asynchronous) or a stream that takes each line as a string. */
  readonly destination: number | DestinationStream;
  readonly clock: Clock;
  /** bindings are written on every line after level and time (pino's base). */
  readonly bindings?: Readonly<Record<string, string>>;
  /** onDrop is called for each line dropped because the file descriptor was not read fast enough. */
  readonly onDrop?: () => void;
}

/** InfoLine writes one info line with a fixed message; members are JSON members, each led by a comma (`,"uid":"…"`). */
export interface InfoLine {
  /** enabled tells whether the logger writes info lines at all; when false, write does nothing. */
  readonly enabled: boolean;
  write(members: string): void;
}

/** Log is the logger, the hot-path line writer on the same destination, and the buffer's flush. */
export interface Log {
  readonly logger: Logger;
  /** infoLine returns the writer of info lines with message msg, in the logger's exact format. */
  infoLine(msg: string): InfoLine;
  /** close stops the flush timer and writes every buffered line synchronously. */
  close(): void;
}

/** createLog builds the logger and its line writer on one destination. */
export function createLog(options: LogOptions): Log {
  const { clock } = options;
  const bindings = options.bindings ?? {};
  let sink: DestinationStream;
  let close = (): void => undefined;
  if (typeof options.destination === 'number') {
    // contentMode buffer holds each line as a Buffer of its own: in utf8 mode sonic-boom measures
    // the whole pending batch as a string on every write, a cost that grows with the batch.
    // maxWrite, the most sonic-boom writes at once (16 KiB by default), must be above minLength.
    const sonic = pino.destination({ dest: options.destination, sync: false, minLength: LOG_BUFFER_BYTES, maxWrite: 2 * LOG_BUFFER_BYTES, maxLength: LOG_MAX_PENDING_BYTES, contentMode: 'buffer' });
    if (options.onDrop !== undefined) sonic.on('drop', options.onDrop);
    const bytes = sonic as unknown as { write(chunk: Buffer): boolean };
    sink = { write: (line: string) => void bytes.write(Buffer.from(line)) };
    const cancel = clock.setInterval(() => sonic.flush(), LOG_FLUSH_MS, { unref: true });
    close = () => {
      cancel();
      sonic.flushSync();
    };
  } else {
    sink = options.destination;
  }
  const logger = pino({ level: options.level, base: bindings, timestamp: () => `,"time":${clock.epochMs()}` }, sink);
  let prefix = '';
  for (const [key, value] of Object.entries(bindings)) prefix += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  const infoLevel = logger.levels.values['info'] ?? 30;
  return {
    logger,
    infoLine(msg) {
      const suffix = `,"msg":${JSON.stringify(msg)}}\n`;
      const enabled = logger.isLevelEnabled('info');
      return {
        enabled,
        write(members) {
          if (enabled) sink.write(`{"level":${infoLevel},"time":${clock.epochMs()}${prefix}${members}${suffix}`);
        },
      };
    },
    close,
  };
}
