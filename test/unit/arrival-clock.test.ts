import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { ArrivalClock } from '../../src/vehicle/arrival-clock.js';

describe('ArrivalClock: a frame\'s epoch ms from its performance.now() reading', () => {
  it('stamps whole ms within a ms of Date.now(), never ahead of it', () => {
    const clock = new ArrivalClock();
    for (let i = 0; i < 1000; i++) {
      const before = Date.now();
      const stamp = clock.epochMs(performance.now());
      const after = Date.now();
      expect(Number.isInteger(stamp)).to.equal(true);
      expect(stamp).to.be.within(before - 1, after);
    }
  });

  it('takes the offset from the wall clock again once a second has passed (a stepped wall clock is followed)', () => {
    const clock = new ArrivalClock();
    const now = performance.now();
    const first = clock.epochMs(now);
    const realNow = Date.now;
    try {
      // The wall clock stepped forward by an hour.
      Date.now = () => realNow() + 3_600_000;
      expect(clock.epochMs(now + 500), 'within the second: the old offset').to.be.closeTo(first + 500, 2);
      // (The reading is taken as "just now": the stamp is the wall clock's.)
      expect(clock.epochMs(now + 1_500), 'past it: the new one').to.be.closeTo(realNow() + 3_600_000, 2);
      // A reading from before the anchor (another clock's) is not stamped from a stale offset either.
      Date.now = () => realNow();
      expect(clock.epochMs(now)).to.be.closeTo(realNow(), 2);
    } finally {
      Date.now = realNow;
    }
  });
});
