import { SAMPLE_VALUES, type SignalSample } from './signal-sample.js';

/**
 * Where each followed signal sits in a samples row (SAMPLE_VALUES numbers, in the order of
 * SignalSample.readRow / writeRow): the history folds a record in straight from its row, with no
 * SignalSample filled per record.
 */
export const ROW_SOC = 0;
export const ROW_RANGE = 1;
export const ROW_SPEED = 2;
export const ROW_PACK_VOLTAGE = 3;
export const ROW_PACK_CURRENT = 4;
export const ROW_AC_CHARGING_POWER = 5;
export const ROW_DC_CHARGING_POWER = 6;
export const ROW_INSIDE_TEMP = 7;
export const ROW_OUTSIDE_TEMP = 8;
export const ROW_LATITUDE = 9;
export const ROW_LONGITUDE = 10;
export const ROW_GEAR = 11;
export const ROW_CHARGING = 12;
export const ROW_ODOMETER = 13;
export const ROW_FAST_CHARGER = 14;

/** Did the row carry any followed signal? (As SignalSample.hasAny: a longitude alone does not count.) */
export function rowHasAny(values: Float64Array, at: number): boolean {
  for (let v = 0; v < SAMPLE_VALUES; v++) {
    if (v !== ROW_LONGITUDE && values[at + v] === values[at + v]) return true;
  }
  return false;
}

/** One row of its own for a sample (the paths that read a record's signals into a SignalSample). */
export class SampleRow {
  readonly values = new Float64Array(SAMPLE_VALUES);

  of(sample: SignalSample): Float64Array {
    sample.writeRow(this.values, 0);
    return this.values;
  }
}
