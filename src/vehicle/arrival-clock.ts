// The global `performance` is an accessor (10-20 ns a read on the per-record path); the module's binding is not.
import { performance } from 'node:perf_hooks';

/** How long the clock's offset serves before it is taken from the wall clock again. */
const REANCHOR_MS = 1000;

/**
 * A frame's arrival as epoch ms, from the performance.now() reading the frame takes anyway (for its ack
 * latency): one clock read per frame instead of two. Date.now() is a runtime call that allocates a
 * HeapNumber (~0.6 µs of a lone frame in engineer S's perf profile, BENCHMARKS.md). The offset between
 * the two clocks is read again from the wall clock at most a second after the last time, so a stepped
 * wall clock is followed within a second, as Date.now() would follow it at once. Whole ms, as Date.now();
 * the offset is taken from a whole-ms reading, so a stamp may be up to 1 ms behind Date.now().
 */
export class ArrivalClock {
  private offset: number;
  private anchoredAt: number;

  constructor() {
    this.anchoredAt = performance.now();
    this.offset = Date.now() - this.anchoredAt;
  }

  /** Epoch ms for `monotonicMs`, a performance.now() reading taken just now. */
  epochMs(monotonicMs: number): number {
    if (monotonicMs - this.anchoredAt > REANCHOR_MS || monotonicMs < this.anchoredAt) {
      this.anchoredAt = monotonicMs;
      this.offset = Date.now() - monotonicMs;
    }
    return Math.floor(this.offset + monotonicMs);
  }
}
