import { expect } from 'chai';
import fc from 'fast-check';
import { DatumValueList, SAMPLE_VALUES, SignalSample, readSampleFromDatumValues, writeSampleRowFromDatumValues } from '../../src/history/signal-sample.js';
import { fieldNames } from '../../src/protocol/proto-schema.js';
import { DATUM_VALUE_COLUMNS } from '../../src/protocol/transcoder.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const FOLLOWED = ['Soc', 'BatteryLevel', 'EstBatteryRange', 'VehicleSpeed', 'PackVoltage', 'PackCurrent', 'ACChargingPower', 'DCChargingPower', 'InsideTemp', 'OutsideTemp', 'Odometer', 'FastChargerPresent', 'Gear', 'DetailedChargeState', 'Location'];
const SIGNALS = new DatumValueList().signals;
const CODES = FOLLOWED.map((name) => SIGNALS[fieldNames().indexOf(name)]!);
// Value texts a datum read back from the JSON points at (canonical and not), back to back in one text.
const VALUE_TEXTS = [
  '{"doubleValue":12.5}', '{"stringValue":"42"}', '{"shiftStateValue":"ShiftStateD"}', '{"shiftStateValue":"ShiftStateR"}',
  '{"detailedChargeStateValue":"DetailedChargeStateCharging"}', '{"locationValue":{"latitude":52.5,"longitude":13.4}}',
  '{"intValue":7}', '{"booleanValue":true}', '{"invalid":true}', '{"stringValue":"nope"}',
];
const TEXT = new TextEncoder().encode(VALUE_TEXTS.join(','));
const STARTS = VALUE_TEXTS.map((_, i) => VALUE_TEXTS.slice(0, i).join(',').length + (i > 0 ? 1 : 0));

describe('writeSampleRowFromDatumValues', () => {
  it('writes the row readSampleFromDatumValues + writeRow write, for any gathered datums (numbers of any double, enums of any member, locations, values read back)', () => {
    const numberArb = fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1, 3, 5), fc.integer({ min: -10, max: 10 }));
    const datumArb = fc.record({
      signal: fc.constantFrom(...CODES),
      kind: fc.integer({ min: 0, max: 3 }),
      a: numberArb,
      b: fc.oneof(numberArb, fc.constantFrom(9, 32, 9, 32, 10)),
      text: fc.integer({ min: 0, max: VALUE_TEXTS.length - 1 }),
    });
    fc.assert(
      fc.property(fc.array(datumArb, { maxLength: 20 }), fc.integer({ min: 0, max: 3 }), (datums, rowIndex) => {
        const list = new DatumValueList();
        for (const { signal, kind, a, b, text } of datums) {
          if (list.n + DATUM_VALUE_COLUMNS > list.values.length) list.room();
          list.values.set([signal, kind, a, b, STARTS[text]!], list.n);
          list.n += DATUM_VALUE_COLUMNS;
        }
        const expected = new Float64Array(4 * SAMPLE_VALUES).fill(7);
        readSampleFromDatumValues(list, TEXT, TEXT.length, new SignalSample()).writeRow(expected, rowIndex * SAMPLE_VALUES);
        // Whatever the row held before (a recycled buffer) is overwritten.
        const got = new Float64Array(4 * SAMPLE_VALUES).fill(7);
        got[rowIndex * SAMPLE_VALUES + 3] = 1;
        writeSampleRowFromDatumValues(list, TEXT, TEXT.length, got, rowIndex * SAMPLE_VALUES);
        for (let i = 0; i < got.length; i++) expect(Object.is(got[i], expected[i]), `value ${i}: ${got[i]} against ${expected[i]} (${JSON.stringify(datums)})`).to.equal(true);
      }),
      { numRuns: 3000, seed: SEED + 31 },
    );
  });
});
