import {
  HISTORY_COLUMNS, ROW_CHARGING, ROW_GEAR, ROW_INSIDE_TEMP, ROW_LATITUDE, ROW_LONGITUDE, ROW_ODOMETER, ROW_OUTSIDE_TEMP, ROW_RANGE, ROW_SOC, ROW_SPEED,
  SAMPLE_VALUES, type HistoryColumn, type SignalSample,
} from './signal-sample.js';

export interface CarHistoryLimits {
  /** How long rows are kept, ms. */
  windowMs: number;
  /** Rows closer together than this are one row (the newest value in it wins), ms. */
  resolutionMs: number;
  /** Most rows one car keeps; when full, the older half is thinned to every other row. */
  maxRows: number;
  /** An unchanged row is still written after this long, so charts show the car was heard from, ms. */
  heartbeatMs: number;
}

/** Columnar series as sent to dashboards: `t` in epoch seconds, one array per column, null for unknown. */
export interface HistorySeries {
  t: number[];
  columns: Record<HistoryColumn, Array<number | null>>;
}

const COLUMN_COUNT = HISTORY_COLUMNS.length;
const LATITUDE = HISTORY_COLUMNS.indexOf('latitude');
const LONGITUDE = HISTORY_COLUMNS.indexOf('longitude');
/** Float32 slots per row: every column but the coordinates, which have their own float64 array. */
const VALUE_COUNT = COLUMN_COUNT - 2;
/** Column -> its float32 slot (-1 for the coordinates). */
const SLOT = HISTORY_COLUMNS.map((_, i) => (i === LATITUDE || i === LONGITUDE ? -1 : i - (i > LONGITUDE ? 2 : i > LATITUDE ? 1 : 0)));
// Small: most of an idle car's memory otherwise (64 bytes a row); a car that keeps sending doubles it.
const INITIAL_ROWS = 4;
/** Float64 slots before the rows: the open row (`current`), one per column. */
const CURRENT = COLUMN_COUNT;
const EMPTY_F32 = new Float32Array(0);
/** `add`'s sample as a row (addRow reads rows). */
const SCRATCH_ROW = new Float64Array(SAMPLE_VALUES);

/**
 * One car's recent history of the followed signals, kept as typed-array columns: one row per
 * `resolutionMs` at most, each holding the last known value of every column (carried forward, so a
 * record with only the speed still gives a full row). Rows that change nothing are skipped (a parked car
 * costs a row per heartbeat, not per record). Memory is bounded by `maxRows`: when full, rows past the
 * window go first, then the older half is thinned to every other row, so density falls with age and the
 * last minutes stay at full resolution. Coordinates are float64 (float32 would move a car by metres);
 * everything else float32: 64 bytes a row.
 *
 * Every column lives in one buffer (the open row, then times, coordinates and values), allocated at the
 * first followed signal: a typed array costs a few hundred bytes of its own (buffer, view, backing
 * store) on top of its rows, more than an idle car's rows. `trim` gives an idle car's spare rows back.
 */
export class CarHistory {
  /** [open row: COLUMN_COUNT][times: capacity][coordinates: 2 x capacity][values as float32]; null until the first signal. */
  private f64: Float64Array | null = null;
  private f32: Float32Array = EMPTY_F32;
  private capacity = 0;
  /** Float32 index of the first value slot. */
  private valuesAt = 0;
  private count = 0;
  /** Samples older than the newest row (a resend after an outage): not charted. */
  late = 0;
  /**
   * The newest row lags behind the open row: records within its step changed values it has not been
   * written with yet. Written once, when a later step starts or the rows are read or moved (`settle`),
   * not per record: a car sending many records a step (saturation) writes its row once a step.
   */
  private unsettled = false;

  constructor(private readonly limits: CarHistoryLimits) {}

  get rows(): number {
    return this.count;
  }

  /** Epoch ms of the newest row; -Infinity when empty. */
  get newestAt(): number {
    return this.newest();
  }

  /** newestAt as a method: what the per-record path calls (no getter through a generic LoadIC). */
  newest(): number {
    return this.count > 0 ? this.f64![CURRENT + this.count - 1]! : Number.NEGATIVE_INFINITY;
  }

  /** Bytes held by the typed arrays (what the memory budget counts). */
  get bytes(): number {
    return this.f64 === null ? 0 : this.f64.buffer.byteLength;
  }

  /** Fold the car's values at `sample.at` in; `power` and `chargerPower` are derived by the caller. */
  add(sample: SignalSample, power: number, chargerPower: number): void {
    sample.writeRow(SCRATCH_ROW, 0);
    this.addRow(SCRATCH_ROW, 0, sample.at, power, chargerPower);
  }

  /**
   * `add` from a samples row (SAMPLE_VALUES values from `o` in `values`, SignalSample.readRow's order)
   * at `at` (epoch ms): what the history's fold calls per record, with no SignalSample filled.
   */
  addRow(values: Float64Array, o: number, at: number, power: number, chargerPower: number): void {
    const lastAt = this.newest();
    if (at < lastAt) {
      this.late++;
      return;
    }
    const sameStep = this.count > 0 && at - lastAt < this.limits.resolutionMs;
    // The newest row gets its step's last values before the open row moves on to the next step.
    if (!sameStep && this.unsettled) this.settle();
    const c = this.f64 ?? this.allocate(INITIAL_ROWS);
    // Bitwise or, not ||: every column must be stored.
    const changed =
      put(c, 0, values[o + ROW_SOC]!) | put(c, 1, values[o + ROW_RANGE]!) | put(c, 2, values[o + ROW_SPEED]!) | put(c, 3, power) | put(c, 4, chargerPower) |
      put(c, 5, values[o + ROW_INSIDE_TEMP]!) | put(c, 6, values[o + ROW_OUTSIDE_TEMP]!) | put(c, LATITUDE, values[o + ROW_LATITUDE]!) |
      put(c, LONGITUDE, values[o + ROW_LONGITUDE]!) | put(c, 9, values[o + ROW_GEAR]!) | put(c, 10, values[o + ROW_CHARGING]!) | put(c, 11, values[o + ROW_ODOMETER]!);
    if (sameStep) {
      // Same step: the newest value wins, the row keeps its time (written by `settle`).
      if (changed) this.unsettled = true;
      return;
    }
    if (!changed && this.count > 0 && at - lastAt < this.limits.heartbeatMs) return;
    if (this.count === this.capacity) this.makeRoom(at);
    this.writeRow(this.count, at);
    this.count++;
  }

  /** An idle car keeps only the rows it has (it grows again, doubling, when it sends). */
  trim(): void {
    this.settle();
    if (this.f64 !== null && this.count > 0 && this.capacity > this.count) this.resize(this.count);
  }

  /** Rows with from <= t <= to, thinned evenly to at most `maxPoints`. */
  query(from: number, to: number, maxPoints: number): HistorySeries {
    this.settle();
    const first = this.lowerBound(from);
    const rows = Math.max(0, this.lowerBound(to + 1) - first);
    const points = Math.min(rows, Math.max(2, maxPoints));
    const t: number[] = [];
    const columns = Object.fromEntries(HISTORY_COLUMNS.map((name) => [name, [] as Array<number | null>])) as HistorySeries['columns'];
    const lists = HISTORY_COLUMNS.map((name) => columns[name]);
    // Evenly spaced rows, first and last included, so the chart still reaches the present.
    for (let k = 0; k < points; k++) {
      const row = first + (points === rows ? k : Math.round((k * (rows - 1)) / (points - 1)));
      t.push(Math.round(this.f64![CURRENT + row]!) / 1000);
      for (let i = 0; i < COLUMN_COUNT; i++) lists[i]!.push(this.read(row, i));
    }
    return { t, columns };
  }

  /** Write the newest row with the open row's values, if records of its step changed them since. */
  private settle(): void {
    if (!this.unsettled) return;
    this.unsettled = false;
    this.writeRow(this.count - 1, this.f64![CURRENT + this.count - 1]!);
  }

  private allocate(rows: number): Float64Array {
    const f64 = new Float64Array(CURRENT + rows * 3 + Math.ceil((rows * VALUE_COUNT) / 2));
    // The open row starts unknown (a resize copies it over).
    f64.fill(NaN, 0, CURRENT);
    this.f64 = f64;
    this.f32 = new Float32Array(f64.buffer);
    this.capacity = rows;
    this.valuesAt = (CURRENT + rows * 3) * 2;
    return f64;
  }

  private get coordinatesAt(): number {
    return CURRENT + this.capacity;
  }

  private read(row: number, column: number): number | null {
    let value: number;
    if (column === LATITUDE) value = this.f64![this.coordinatesAt + row * 2]!;
    else if (column === LONGITUDE) value = this.f64![this.coordinatesAt + row * 2 + 1]!;
    else value = this.f32[this.valuesAt + row * VALUE_COUNT + SLOT[column]!]!;
    if (Number.isNaN(value)) return null;
    return column === LATITUDE || column === LONGITUDE ? value : Math.round(value * 1000) / 1000;
  }

  private writeRow(row: number, at: number): void {
    const f64 = this.f64!;
    f64[CURRENT + row] = at;
    const base = this.valuesAt + row * VALUE_COUNT;
    for (let i = 0; i < COLUMN_COUNT; i++) if (SLOT[i]! >= 0) this.f32[base + SLOT[i]!] = f64[i]!;
    const coordinates = this.coordinatesAt + row * 2;
    f64[coordinates] = f64[LATITUDE]!;
    f64[coordinates + 1] = f64[LONGITUDE]!;
  }

  /** Grow up to maxRows; then drop what left the window; then thin the older half. */
  private makeRoom(now: number): void {
    if (this.capacity < this.limits.maxRows) {
      this.resize(Math.min(this.limits.maxRows, Math.max(INITIAL_ROWS, this.capacity * 2)));
      return;
    }
    const expired = this.lowerBound(now - this.limits.windowMs);
    if (expired > 0) {
      this.moveRows(expired, 0, this.count - expired);
      this.count -= expired;
      return;
    }
    const half = Math.floor(this.count / 2);
    // Keep the later row of each pair: it carries the values the earlier one led to.
    let to = 0;
    for (let from = 1; from < half; from += 2) this.moveRows(from, to++, 1);
    const kept = this.count - half;
    this.moveRows(half, to, kept);
    this.count = to + kept;
  }

  private resize(rows: number): void {
    const oldF64 = this.f64!;
    const oldF32 = this.f32;
    const oldCoordinates = this.coordinatesAt;
    const oldValues = this.valuesAt;
    const count = this.count;
    const f64 = this.allocate(rows);
    f64.set(oldF64.subarray(0, CURRENT + count));
    f64.set(oldF64.subarray(oldCoordinates, oldCoordinates + count * 2), this.coordinatesAt);
    this.f32.set(oldF32.subarray(oldValues, oldValues + count * VALUE_COUNT), this.valuesAt);
  }

  private moveRows(from: number, to: number, rows: number): void {
    const f64 = this.f64!;
    f64.copyWithin(CURRENT + to, CURRENT + from, CURRENT + from + rows);
    const values = this.valuesAt;
    this.f32.copyWithin(values + to * VALUE_COUNT, values + from * VALUE_COUNT, values + (from + rows) * VALUE_COUNT);
    const coordinates = this.coordinatesAt;
    f64.copyWithin(coordinates + to * 2, coordinates + from * 2, coordinates + (from + rows) * 2);
  }

  /** First row with time >= value (the times are sorted). */
  private lowerBound(value: number): number {
    const f64 = this.f64;
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (f64![CURRENT + mid]! < value) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** Keep a known value in the open row; 1 when it differs from what the row held. */
function put(row: Float64Array, index: number, value: number): number {
  if (Number.isNaN(value) || row[index] === value) return 0;
  row[index] = value;
  return 1;
}
