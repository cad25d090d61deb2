/** A manual Clock for tests: time moves only when the test advances it, and timers fire in order as it does. */
import type { Cancel, Clock, TimerCallback } from '../../src/clock.js';

interface Timer {
  at: number;
  readonly seq: number;
  readonly fn: TimerCallback;
  readonly every: number | undefined;
  cancelled: boolean;
}

/** ManualClock is a Clock whose time is set by advance; its epoch starts at 2026-12-01T00:00:00Z. */
export class ManualClock implements Clock {
  private time = 0;
  private seq = 0;
  private readonly timers: Timer[] = [];

  constructor(private readonly epochStart = Date.UTC(2026, 11, 1)) {}

  now(): number {
    return this.time;
  }

  epochMs(): number {
    return this.epochStart + this.time;
  }

  setTimeout(fn: TimerCallback, ms: number): Cancel {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: TimerCallback, ms: number): Cancel {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** pending is the number of timers set and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /**
   * advance moves time forward by ms, firing every timer due on the way in order of due time (an
   * interval as often as it falls due), each at its own time, and waits for what each returns.
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const next = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.time = next.at;
      if (next.every === undefined) next.cancelled = true;
      else next.at += next.every;
      await next.fn();
      // Let what the callback started on the event loop (a socket's destroy, a resolved sleep) run before the next timer.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.time = end;
    for (let i = this.timers.length - 1; i >= 0; i--) if (this.timers[i]?.cancelled) this.timers.splice(i, 1);
  }

  private add(fn: TimerCallback, ms: number, every: number | undefined): Cancel {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, every, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
}
