/**
 * The benchmark's load generator, run as its own process (pinned by bench/run.ts to a core the
 * server does not use) so that it never competes with the server it measures. Keep-alive HTTPS
 * over raw TLS sockets with a minimal HTTP/1.1 response reader: far cheaper per request than
 * node:https, so one core drives more load than one server core can answer.
 *
 * Usage: load.ts JSON, where JSON is a LoadOptions; prints one LoadResult as JSON on stdout.
 * - closed loop (rate 0): each connection sends its next request as soon as it has the answer;
 * - open loop (rate > 0): requests are due at a steady rate, sent on the first free connection,
 *   and each latency is measured from the time it was due (queueing counts).
 */
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';

/** LoadOptions configures one run. */
export interface LoadOptions {
  readonly port: number;
  readonly caFile: string;
  readonly bodyFile: string;
  readonly connections: number;
  readonly seconds: number;
  /** rate is requests per second for an open-loop run, 0 for closed loop. */
  readonly rate: number;
  /** pid is the server's process id: its CPU time over the measured window is reported (Linux /proc). */
  readonly pid?: number;
  /** ticksPerSecond is the kernel's clock tick (getconf CLK_TCK), the unit of /proc/PID/stat's CPU times. */
  readonly ticksPerSecond?: number;
}

/** LoadResult is what one run measured. */
export interface LoadResult {
  readonly requests: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** failed counts answers other than 200, and requests lost to a connection error. */
  readonly failed: number;
  readonly reconnects: number;
  /**
   * sendLagP99 is, in an open-loop run, the 99th percentile of how late requests were sent after
   * they were due (ms): time spent waiting for a free connection while the server is behind, or
   * for the load generator itself. It is part of every latency.
   */
  readonly sendLagP99: number;
  /** cpuMs is the server's CPU time (all its threads, user and system) over the measured window; NaN without a pid. */
  readonly cpuMs: number;
}

/** cpuTicks reads a process's user and system CPU time, in clock ticks, from /proc/PID/stat. */
function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name (which may hold spaces) start at state; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** SETUP_TIMEOUT_MS bounds the wait for every connection's handshake and first answer before the run starts. */
const SETUP_TIMEOUT_MS = 10_000;

function run(options: LoadOptions): Promise<LoadResult> {
  const ca = readFileSync(options.caFile);
  const body = readFileSync(options.bodyFile);
  const request = Buffer.concat([
    Buffer.from(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`),
    body,
  ]);
  const latencies: number[] = [];
  const lags: number[] = [];
  let failed = 0;
  let reconnects = 0;
  let started = 0;
  const due: number[] = []; // open loop: times of requests due and not yet sent
  const idle: Connection[] = [];
  // The clock starts once every connection has finished its TLS handshake and answered one review:
  // the run measures answering reviews on open connections, as the API server keeps them, not the
  // handshakes and the server's work that follows them.
  let t0 = Infinity;
  let end = Infinity;
  let cpuAtStart = NaN;
  let cpuAtEnd = NaN;
  let warmed = 0; // connections that have had their first answer
  let setupDeadline = performance.now() + SETUP_TIMEOUT_MS;
  let onAllWarmed: () => void = () => undefined;

  class Connection {
    private socket!: TLSSocket;
    private buffer: Buffer = Buffer.alloc(0);
    private sentAt = 0;
    private busy = false;

    constructor() {
      this.open();
    }

    private open(): void {
      this.buffer = Buffer.alloc(0);
      this.socket = connect({ host: '127.0.0.1', port: options.port, ca, servername: 'localhost' });
      this.socket.setNoDelay(true);
      this.socket.once('secureConnect', () => {
        if (t0 !== Infinity) this.next();
        else this.socket.write(request); // the connection's first review, before the clock starts
      });
      this.socket.on('data', (chunk: Buffer) => this.read(chunk));
      this.socket.on('error', () => undefined);
      this.socket.once('close', () => {
        if (this.busy) {
          failed++;
          this.busy = false;
        }
        if (performance.now() < Math.min(end, setupDeadline)) {
          reconnects++;
          this.open();
        }
      });
    }

    next(): void {
      const now = performance.now();
      if (now >= end) {
        this.socket.end();
        return;
      }
      if (options.rate > 0) {
        const at = due.shift();
        if (at === undefined) {
          idle.push(this);
          return;
        }
        this.sentAt = at;
        lags.push(now - at);
      } else {
        this.sentAt = now;
      }
      this.busy = true;
      started++;
      this.socket.write(request);
    }

    private read(chunk: Buffer): void {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      const head = this.buffer.indexOf('\r\n\r\n');
      if (head < 0) return;
      const headers = this.buffer.subarray(0, head).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
      if (this.buffer.length < head + 4 + length) return;
      this.buffer = this.buffer.subarray(head + 4 + length);
      if (t0 === Infinity) {
        if (++warmed === options.connections) onAllWarmed();
        return;
      }
      this.busy = false;
      if (headers.startsWith('HTTP/1.1 200 ')) latencies.push(performance.now() - this.sentAt);
      else failed++;
      if (/\r\nconnection: *close/i.test(headers)) this.socket.end();
      else this.next();
    }
  }

  const connections: Connection[] = [];
  const start = (): void => {
    cpuAtStart = cpuTicks(options.pid);
    t0 = performance.now();
    end = t0 + options.seconds * 1000;
    setTimeout(() => (cpuAtEnd = cpuTicks(options.pid)), options.seconds * 1000);
    setupDeadline = Infinity;
    if (options.rate === 0) {
      for (const connection of connections) connection.next();
      return;
    }
    idle.push(...connections);
    const interval = 1000 / options.rate;
    let scheduled = 0;
    const tick = (): void => {
      const now = performance.now();
      while (t0 + scheduled * interval <= now && t0 + scheduled * interval < end) {
        due.push(t0 + scheduled * interval);
        scheduled++;
        idle.shift()?.next();
      }
      if (now < end) setTimeout(tick, Math.max(0, t0 + scheduled * interval - performance.now()));
    };
    tick();
  };
  return new Promise((resolve) => {
    const finish = (): void => {
      // Whatever is still unanswered a second after the end is counted as failed.
      const unanswered = started - latencies.length - failed;
      const at = (list: number[], q: number) => Math.round((list[Math.min(list.length - 1, Math.floor(q * list.length))] ?? NaN) * 100) / 100;
      latencies.sort((a, b) => a - b);
      lags.sort((a, b) => a - b);
      resolve({
        requests: latencies.length,
        rps: Math.round(latencies.length / options.seconds),
        p50: at(latencies, 0.5),
        p99: at(latencies, 0.99),
        failed: failed + Math.max(0, unanswered),
        reconnects,
        sendLagP99: lags.length === 0 ? 0 : at(lags, 0.99),
        cpuMs: ((cpuAtEnd - cpuAtStart) * 1000) / (options.ticksPerSecond ?? 100),
      });
    };
    let begun = false;
    onAllWarmed = () => {
      if (begun) return;
      begun = true;
      start();
      setTimeout(finish, options.seconds * 1000 + 1000);
    };
    // A server that never completes the handshakes still gets its run, counted from here.
    setTimeout(() => onAllWarmed(), SETUP_TIMEOUT_MS).unref();
    for (let i = 0; i < options.connections; i++) connections.push(new Connection());
  });
}

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
run(options).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
