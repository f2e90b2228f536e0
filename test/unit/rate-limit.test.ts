import { expect } from 'chai';
import { FrameBudget, frameBudgetFor } from '../../src/vehicle/rate-limit.js';

describe('FrameBudget (per-connection token bucket)', () => {
  it('allows a burst of one second of budget, then refuses until time refills it', () => {
    const budget = new FrameBudget(10, 0);
    const taken = Array.from({ length: 15 }, () => budget.take(0));
    expect(taken.filter(Boolean)).to.have.length(10);
    expect(taken.slice(10)).to.deep.equal([false, false, false, false, false]);
    expect(budget.take(99)).to.equal(false, 'less than one token refilled after 99 ms');
    expect(budget.take(100)).to.equal(true, 'one token after 100 ms at 10/s');
    expect(budget.take(100)).to.equal(false);
  });

  it('holds a sustained flood to the configured rate', () => {
    const budget = new FrameBudget(200, 0);
    let accepted = 0;
    // 10,000 frames a second for 5 seconds
    for (let t = 0; t < 5000; t += 0.1) if (budget.take(t)) accepted++;
    // burst (200) + 5 s * 200/s
    expect(accepted).to.be.within(1190, 1201);
  });

  it('never stores more than the burst however long the car was quiet', () => {
    const budget = new FrameBudget(5, 0);
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (budget.take(3_600_000)) accepted++;
    expect(accepted).to.equal(5);
  });

  it('ignores a clock that goes backwards instead of minting tokens', () => {
    const budget = new FrameBudget(1, 1000);
    expect(budget.take(1000)).to.equal(true);
    expect(budget.take(0)).to.equal(false);
    expect(budget.take(1000)).to.equal(false);
    expect(budget.take(2000)).to.equal(true);
  });

  it('keeps a fractional rate usable (at least one frame of burst)', () => {
    const budget = new FrameBudget(0.5, 0);
    expect(budget.take(0)).to.equal(true);
    expect(budget.take(1000)).to.equal(false);
    expect(budget.take(2000)).to.equal(true);
  });

  it('0 means no limit at all, and a negative rate is refused', () => {
    expect(frameBudgetFor(0, 0)).to.equal(null);
    expect(frameBudgetFor(3, 0)).to.be.instanceOf(FrameBudget);
    expect(() => new FrameBudget(-1, 0)).to.throw(RangeError);
    expect(() => new FrameBudget(Number.NaN, 0)).to.throw(RangeError);
  });
});
