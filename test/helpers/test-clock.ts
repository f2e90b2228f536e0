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
