import type { Clock } from '../../src/dashboard/clock.js';

/**
 * A clock the test moves by hand (src/dashboard/clock.ts): it starts at the wall clock's time and
 * stands still; advance() moves it and runs, in due order, every timer whose time has come.
 */
export class TestClock implements Clock {
  private time: number;
  private readonly timers = new Set<{ due: number; fn: () => void }>();

  constructor(start = Date.now()) {
    this.time = start;
  }

  readonly now = (): number => this.time;

  after(ms: number, fn: () => void): () => void {
    const timer = { due: this.time + ms, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let next: { due: number; fn: () => void } | null = null;
      for (const timer of this.timers) if (timer.due <= target && (next === null || timer.due < next.due)) next = timer;
      if (next === null) break;
      this.timers.delete(next);
      this.time = Math.max(this.time, next.due);
      next.fn();
    }
    this.time = target;
  }
}

/**
 * The wall clock plus an offset the test moves forward: for long tests whose other parties (a fake
 * Tesla, a browser) stamp real times. Timers run on real time as usual, and advance() runs at once
 * those the jump has brought due.
 */
export class SteppedWallClock implements Clock {
  private offset = 0;
  private readonly timers = new Set<{ due: number; fn: () => void; timer: NodeJS.Timeout }>();

  readonly now = (): number => Date.now() + this.offset;

  after(ms: number, fn: () => void): () => void {
    const entry = {
      due: this.now() + ms,
      fn,
      timer: setTimeout(() => {
        this.timers.delete(entry);
        fn();
      }, ms),
    };
    entry.timer.unref();
    this.timers.add(entry);
    return () => {
      clearTimeout(entry.timer);
      this.timers.delete(entry);
    };
  }

  advance(ms: number): void {
    this.offset += ms;
    const now = this.now();
    for (const entry of [...this.timers].sort((x, y) => x.due - y.due)) {
      if (entry.due > now) break;
      clearTimeout(entry.timer);
      this.timers.delete(entry);
      entry.fn();
    }
  }
}
