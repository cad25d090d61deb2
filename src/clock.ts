/**
 * The clock, injected: every deadline, delay and poll of the server reads time and sets timers
 * through a Clock, so that tests drive them with a manual one and assert exact behaviour instead
 * of waiting on the wall clock. systemClock is the real one.
 */

/** Cancel stops a timer set by a Clock; calling it again does nothing. */
export type Cancel = () => void;

/**
 * TimerCallback runs when a timer fires. It may return a promise (a poll that reads files): the
 * system clock leaves it running, a manual clock in tests waits for it before its advance
 * resolves. The callback handles its own errors.
 */
export type TimerCallback = () => void | Promise<void>;

/** TimerOptions: unref lets the process exit while the timer is pending (pollers, log flushes). */
export interface TimerOptions {
  readonly unref?: boolean;
}

/** Clock is the time source of the server. */
export interface Clock {
  /** now is a monotonic time in milliseconds, for durations and deadlines. */
  now(): number;
  /** epochMs is the wall-clock time in milliseconds since 1970, for log lines. */
  epochMs(): number;
  /** setTimeout runs fn once after ms. */
  setTimeout(fn: TimerCallback, ms: number, options?: TimerOptions): Cancel;
  /** setInterval runs fn every ms until cancelled. */
  setInterval(fn: TimerCallback, ms: number, options?: TimerOptions): Cancel;
}

/** sleep resolves after ms on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** systemClock is the process's own clock: performance.now, Date.now and Node's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  setTimeout(fn, ms, options = {}) {
    const timer = setTimeout(() => void fn(), ms);
    if (options.unref === true) timer.unref();
    return () => clearTimeout(timer);
  },
  setInterval(fn, ms, options = {}) {
    const timer = setInterval(() => void fn(), ms);
    if (options.unref === true) timer.unref();
    return () => clearInterval(timer);
  },
};
