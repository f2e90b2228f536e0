import { expect } from 'chai';
import fc from 'fast-check';
import { rowHasAny } from '../../src/history/sample-row.js';
import * as places from '../../src/history/signal-sample.js';
import { SAMPLE_VALUES, SignalSample } from '../../src/history/signal-sample.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const FIELD_OF: Record<string, keyof SignalSample> = {
  ROW_SOC: 'soc', ROW_RANGE: 'range', ROW_SPEED: 'speed', ROW_PACK_VOLTAGE: 'packVoltage', ROW_PACK_CURRENT: 'packCurrent',
  ROW_AC_CHARGING_POWER: 'acChargingPower', ROW_DC_CHARGING_POWER: 'dcChargingPower', ROW_INSIDE_TEMP: 'insideTemp',
  ROW_OUTSIDE_TEMP: 'outsideTemp', ROW_LATITUDE: 'latitude', ROW_LONGITUDE: 'longitude', ROW_GEAR: 'gear', ROW_CHARGING: 'charging',
  ROW_ODOMETER: 'odometer', ROW_FAST_CHARGER: 'fastCharger',
};

describe('samples row places (sample-row)', () => {
  it('name where SignalSample.writeRow puts each signal, every place once', () => {
    const sample = new SignalSample();
    const names = Object.values(FIELD_OF);
    const fields = sample as unknown as Record<string, number>;
    names.forEach((name, i) => (fields[name] = 100 + i));
    const row = new Float64Array(SAMPLE_VALUES);
    sample.writeRow(row, 0);
    const used = new Set<number>();
    for (const [constant, field] of Object.entries(FIELD_OF)) {
      const at = (places as unknown as Record<string, number>)[constant]!;
      expect(row[at], constant).to.equal(fields[field]);
      used.add(at);
    }
    expect(used.size).to.equal(SAMPLE_VALUES);
  });

  it('rowHasAny answers as SignalSample.hasAny for any row, at any offset', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(NaN, NaN, NaN, 0, 1.5), { minLength: SAMPLE_VALUES, maxLength: SAMPLE_VALUES }), fc.nat(5), (values, offset) => {
        const row = new Float64Array(offset + SAMPLE_VALUES).fill(7);
        row.set(values, offset);
        const sample = new SignalSample();
        sample.readRow(row, offset);
        expect(rowHasAny(row, offset)).to.equal(sample.hasAny());
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
