import { expect } from 'chai';
import { powerOfTwoAtLeast } from '../../src/decode/decode-pool.js';

describe('powerOfTwoAtLeast (a new batch buffer starts at the size the last one needed)', () => {
  it('gives the smallest power of two not below n, as 2 ** ceil(log2(n)) did', () => {
    for (let n = 1; n <= 70_000; n++) expect(powerOfTwoAtLeast(n), String(n)).to.equal(2 ** Math.ceil(Math.log2(n)));
    for (let shift = 1; shift <= 31; shift++) {
      const power = 2 ** shift;
      expect(powerOfTwoAtLeast(power)).to.equal(power);
      if (shift < 31) expect(powerOfTwoAtLeast(power + 1)).to.equal(2 * power);
      expect(powerOfTwoAtLeast(power - 1)).to.equal(shift === 1 ? 1 : power);
    }
  });
});
