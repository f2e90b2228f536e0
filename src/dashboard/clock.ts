/**
 * The dashboard stage's time: the wall clock, or one a test moves by hand so a token's expiry is
 * reached without waiting for it. Token checks read `now()`; the socket's expiry timer uses `after()`.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once `ms` of this clock's time have passed, without holding the process open; returns its cancel. */
  after(ms: number, fn: () => void): () => void;
}

export const wallClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
