// parseLocationBytes (the transcoder's reading of a Location string from its UTF-8 bytes) against
// parseLocationString (the regex the reference's normalisation is written as): the same verdict and
// the same doubles, -0 included, on strings around the shape and on any string.
import { expect } from 'chai';
import fc from 'fast-check';
import { LOCATION_BYTES, parseLocationBytes, parseLocationString } from '../../src/protocol/normalise.js';

const RUNS = Number(process.env.TRANSCODER_RUNS ?? 3000);
const utf8 = new TextEncoder();

/** Checks one string; returns the bytes reader's verdict. */
function agree(text: string): number {
  const bytes = utf8.encode(`xx${text}yy`);
  const out = new Float64Array(2);
  const found = parseLocationBytes(bytes, 2, bytes.length - 2, out);
  const expected = parseLocationString(text);
  if (found === LOCATION_BYTES.LOCATION) {
    expect(expected, text).to.not.equal(null);
    expect(Object.is(out[0], expected!.latitude), `${text}: latitude ${out[0]} against ${expected!.latitude}`).to.equal(true);
    expect(Object.is(out[1], expected!.longitude), `${text}: longitude ${out[1]} against ${expected!.longitude}`).to.equal(true);
  } else if (found === LOCATION_BYTES.NOT_LOCATION) {
    expect(expected, text).to.equal(null);
  } else {
    expect(found, text).to.equal(LOCATION_BYTES.UNDECIDED);
  }
  return found;
}

const digits = fc.string({ unit: fc.constantFrom('0', '1', '2', '5', '7', '9'), minLength: 0, maxLength: 25 });
const number = fc.oneof(
  fc.tuple(digits, fc.constantFrom('', '.', '..'), digits).map(([a, dot, b]) => `${a}${dot}${b}`),
  fc.double({ min: 0, max: 200, noNaN: true }).map(String),
  fc.integer({ min: 0, max: 1_000_000_000 }).map((n) => String(n / 1_000_000)),
);
const space = fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u2003', '\ufeff', 'x'), maxLength: 2 });
const letter = (expected: string[]): fc.Arbitrary<string> => fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...expected) }, { weight: 1, arbitrary: fc.constantFrom('n', 'E', 'N', 'W', 'S', '', ',') });
const cleanNumber = fc.oneof(
  fc.tuple(fc.string({ unit: fc.constantFrom('0', '1', '3', '7', '9'), minLength: 1, maxLength: 3 }), fc.string({ unit: fc.constantFrom('0', '1', '4', '5', '8'), maxLength: 22 })).map(([a, b]) => (b === '' ? a : `${a}.${b}`)),
  fc.integer({ min: 0, max: 180_000_000 }).map((n) => String(n / 1_000_000)),
);
const cleanSpace = fc.string({ unit: fc.constantFrom(' ', ' ', '\t', '\r'), maxLength: 2 });
const clean = fc
  .tuple(cleanSpace, cleanNumber, cleanSpace, fc.constantFrom('N', 'S'), cleanSpace, cleanSpace, cleanNumber, cleanSpace, fc.constantFrom('E', 'W'), cleanSpace)
  .map(([s1, lat, s2, ns, s3, s4, lon, s5, ew, s6]) => `(${s1}${lat}${s2}${ns}${s3},${s4}${lon}${s5}${ew}${s6})`);
const noisy = fc
  .tuple(fc.constantFrom('(', '(', '(', '', '['), space, number, space, letter(['N', 'S']), space, fc.constantFrom(',', ',', ',', ';', ''), space, number, space, letter(['E', 'W']), space, fc.constantFrom(')', ')', ')', '', ')x', '))'))
  .map((parts) => parts.join(''));
const shaped = fc.oneof(clean, noisy);

describe('parseLocationBytes', () => {
  it('agrees with parseLocationString on the shapes a car sends and their edges', () => {
    for (const text of [
      '(37.412374 N, 122.145867 W)', '(33.9 S, 151.2 E)', '(0 S, 0 W)', '(0.0 N, 0.0 E)', '(90 N, 180 E)', '(90.0000001 N, 1 E)',
      '(1 N, 180.00000000000001 E)', '( 1.5 S ,2 E )', '(1.N, 2 E)', '(.5 N, 2 E)', '(1 N, 2 E) ', '(1 N, 2 E)\n', '(1 N 2 E)',
      '(37.4\u00a0N, 1 W)', '(9007199254740993 N, 1 E)', '(0.12345678901234567890123 N, 1 E)', '(1e1 N, 2 E)', '', '(', '()',
    ]) {
      agree(text);
    }
    expect(agree('(37.412374 N, 122.145867 W)')).to.equal(LOCATION_BYTES.LOCATION);
    expect(agree('(0 S, 0 W)')).to.equal(LOCATION_BYTES.LOCATION);
  });

  it(`agrees with parseLocationString on ${RUNS} strings around the shape and ${RUNS} any strings`, () => {
    const verdicts = [0, 0, 0];
    fc.assert(fc.property(shaped, (text) => { verdicts[agree(text) + 1]!++; }), { numRuns: RUNS });
    fc.assert(fc.property(fc.string({ maxLength: 40, unit: 'binary' }), (text) => { agree(text); }), { numRuns: RUNS });
    // The generator reaches every verdict, locations most (else the agreement says little).
    expect(verdicts[LOCATION_BYTES.LOCATION + 1], 'locations').to.be.greaterThan(RUNS / 10);
    expect(verdicts[LOCATION_BYTES.NOT_LOCATION + 1], 'not locations').to.be.greaterThan(RUNS / 10);
  });
});
