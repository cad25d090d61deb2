/**
 * Lifecycle: the serving process's states and its stop, on an injected clock. Starting and
 * stopping, /readyz fails (ready() gives the reason); on stop, the watchers end, the webhook
 * drains for delayMs while endpoints are updated (every answer says `Connection: close` from the
 * first moment), then stops accepting and finishes what it answers, with graceMs as the bound, and
 * the health server closes last.
 */
import type { Logger } from 'pino';
import { sleep, type Clock } from '../clock.js';

/** Drainable is the webhook server as the stop sequence sees it. */
export interface Drainable {
  drain(): void;
  close(graceMs: number): Promise<void>;
}

/** Closable is a server that only closes (the health server). */
export interface Closable {
  close(): Promise<void>;
}

/** Stoppable is something that runs until stopped (a file watch). */
export interface Stoppable {
  stop(): void;
}

/** LifecycleOptions are the shutdown timings and where the lifecycle logs. */
export interface LifecycleOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** delayMs is how long reviews are still answered after a stop signal, while endpoints drain. */
  readonly delayMs: number;
  /** graceMs bounds how long the answers under way may take once the webhook stops accepting. */
  readonly graceMs: number;
}

/** LifecycleState is where the process is: ready only while serving. */
export type LifecycleState = 'starting' | 'serving' | 'stopping' | 'stopped';

/** Lifecycle holds the process's state and runs its stop. */
export class Lifecycle {
  private current: LifecycleState = 'starting';

  constructor(private readonly options: LifecycleOptions) {}

  /** state is the current state. */
  get state(): LifecycleState {
    return this.current;
  }

  /** ready returns undefined while serving, else the state as the reason /readyz fails. */
  readonly ready = (): string | undefined => (this.current === 'serving' ? undefined : this.current);

  /** serving marks the start done: /readyz succeeds from now on. */
  serving(): void {
    if (this.current === 'starting') this.current = 'serving';
  }

  /**
   * stop runs the stop sequence once: not ready at once, watches stopped, the webhook drained for
   * delayMs, then closed within graceMs, then the health server closed.
   */
  async stop(reason: string, servers: { readonly webhook: Drainable; readonly health: Closable; readonly watches: readonly Stoppable[] }): Promise<void> {
    if (this.current === 'stopping' || this.current === 'stopped') return;
    this.current = 'stopping';
    const { clock, logger, delayMs, graceMs } = this.options;
    logger.info({ signal: reason, delayMs, graceMs }, 'stopping: /readyz fails now; reviews are still answered while endpoints drain');
    for (const watch of servers.watches) watch.stop();
    // Every answer from now on says Connection: close, so keep-alive clients reconnect (to another
    // replica once the endpoints have drained) instead of reusing a connection about to be closed.
    servers.webhook.drain();
    await sleep(clock, delayMs);
    await servers.webhook.close(graceMs);
    await servers.health.close();
    this.current = 'stopped';
    logger.info('stopped');
  }
}
