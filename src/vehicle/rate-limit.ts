/**
 * A token bucket for one car connection: `perSecond` frames a second on average, with bursts of up to
 * one second's worth (a car catching up after a short gap sends a burst; a flood is sustained).
 * Time is passed in, so the bucket is exact in tests and costs no clock read of its own.
 */
export class FrameBudget {
  private tokens: number;
  private refilledAt: number;
  private readonly capacity: number;
  private readonly perMs: number;

  constructor(perSecond: number, now: number) {
    if (!(perSecond > 0)) throw new RangeError(`perSecond must be positive, got ${perSecond}`);
    this.capacity = Math.max(1, perSecond);
    this.perMs = perSecond / 1000;
    this.tokens = this.capacity;
    this.refilledAt = now;
  }

  /** Spends one frame's token; false when the budget is used up (the frame is refused). */
  take(now: number): boolean {
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.refilledAt) * this.perMs);
      this.refilledAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** 0 turns the limit off: no bucket at all, so the hot path pays one null check. */
export function frameBudgetFor(perSecond: number, now: number): FrameBudget | null {
  return perSecond > 0 ? new FrameBudget(perSecond, now) : null;
}
