/**
 * ByteBudget: a counting semaphore over bytes. A request body is read only once the budget has
 * room for it, and the room is given back when its answer has been sent; until then the request
 * waits with its socket paused, so the client is slowed by TCP flow control instead of being
 * refused, and the bytes wait in kernel buffers rather than in the heap.
 */

/** Release gives back the bytes taken by ByteBudget.acquire; calling it more than once does nothing. */
export type Release = () => void;

interface Waiter {
  readonly bytes: number;
  readonly grant: (release: Release) => void;
}

/** ByteBudget lends up to `capacity` bytes at once, first come first served. */
export class ByteBudget {
  private used = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly capacity: number) {}

  /** inUse is the number of bytes lent now. */
  get inUse(): number {
    return this.used;
  }

  /** queued is the number of requests waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * acquire lends `bytes` (at most capacity: a larger request is lent the whole budget) and calls
   * onGrant with the release function: at once when there is room and nobody waits before it, else
   * when room frees. It returns a cancel function for a request that goes away while waiting.
   */
  acquire(bytes: number, onGrant: (release: Release) => void): () => void {
    const wanted = Math.min(Math.max(bytes, 0), this.capacity);
    if (this.waiting.length === 0 && this.used + wanted <= this.capacity) {
      onGrant(this.lend(wanted));
      return () => undefined;
    }
    const waiter: Waiter = { bytes: wanted, grant: onGrant };
    this.waiting.push(waiter);
    return () => {
      const index = this.waiting.indexOf(waiter);
      if (index < 0) return;
      this.waiting.splice(index, 1);
      this.wake();
    };
  }

  private lend(bytes: number): Release {
    this.used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.wake();
    };
  }

  private wake(): void {
    // First come first served: a large request at the head is not overtaken by small ones behind
    // it, so it cannot starve. Small and large requests use separate budgets (bodies.ts).
    while (this.waiting.length > 0) {
      const head = this.waiting[0] as Waiter;
      if (this.used + head.bytes > this.capacity) return;
      this.waiting.shift();
      head.grant(this.lend(head.bytes));
    }
  }
}
