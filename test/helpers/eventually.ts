/** Polls `check` until it holds; throws once `timeoutMs` has passed without it. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * "Nothing (else) happened", checked after a known point instead of after a guessed sleep: once
 * `barrier` has resolved (an event that comes after anything `check` could see: a later frame's
 * ack, a close the server counted), `check` must keep holding for a bounded settle, which covers
 * work still in flight on other paths (the bus, timers). `check` throws (an assertion) when it fails.
 */
export async function holdsAfter(barrier: Promise<unknown>, check: () => void | Promise<void>, settleMs = 100): Promise<void> {
  await barrier;
  const until = Date.now() + settleMs;
  for (;;) {
    await check();
    const left = until - Date.now();
    if (left <= 0) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(25, left)));
  }
}
