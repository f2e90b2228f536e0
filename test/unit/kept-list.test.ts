import { expect } from 'chai';
import fc from 'fast-check';
import { KeptList } from '../../src/history/kept-list.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

type Op = { kind: 'push' } | { kind: 'drop' } | { kind: 'read' };

describe('KeptList', () => {
  it('keeps what an array pushed and shifted past its bound keeps, in order, whatever the pushes, drops and reads', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 8, arbitrary: fc.constant({ kind: 'push' as const }) },
      { weight: 2, arbitrary: fc.constant({ kind: 'drop' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'read' as const }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 400 }), (max, ops) => {
        const list = new KeptList<{ n: number }>(max);
        const model: Array<{ n: number }> = [];
        let n = 0;
        for (const step of ops) {
          if (step.kind === 'push') {
            const item = { n: n++ };
            list.push(item);
            model.push(item);
            if (model.length > max) model.shift();
          } else if (step.kind === 'drop') {
            list.dropFirst();
            model.shift();
          } else {
            expect(list.all()).to.deep.equal(model);
          }
          expect(list.length).to.equal(model.length);
          expect(list.oldest()).to.equal(model[0]);
        }
        expect(list.all()).to.deep.equal(model);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('holds no dropped item (its slot is cleared at once) and no more than twice its bound of slots', () => {
    const list = new KeptList<object>(4);
    const items = Array.from({ length: 11 }, () => ({}));
    for (const item of items) list.push(item);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the list's slots, read to check what it holds
    const slots = (list as any).items as Array<object | null>;
    expect(slots.length).to.be.at.most(8);
    expect(slots.filter((slot) => slot !== null)).to.deep.equal(items.slice(-4));
  });
});
