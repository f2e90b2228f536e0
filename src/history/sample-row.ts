import { ROW_LONGITUDE, SAMPLE_VALUES, type SignalSample } from './signal-sample.js';

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
