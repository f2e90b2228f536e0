import { HISTORY_COLUMNS, type HistoryColumn, type SignalSample } from './signal-sample.js';

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

/**
 * One car's recent history of the followed signals, kept as typed-array columns: one row per
 * `resolutionMs` at most, each holding the last known value of every column (carried forward, so a
 * record with only the speed still gives a full row). Rows that change nothing are skipped (a parked car
 * costs a row per heartbeat, not per record). Memory is bounded by `maxRows`: when full, rows past the
 * window go first, then the older half is thinned to every other row, so density falls with age and the
 * last minutes stay at full resolution. Coordinates are float64 (float32 would move a car by metres);
 * everything else float32: 64 bytes a row.
 */
export class CarHistory {
  private times: Float64Array;
  private values: Float32Array;
  private coordinates: Float64Array;
  private count = 0;
  /** The newest row is still open: later samples in its resolution step overwrite it. */
  private readonly current = new Float64Array(COLUMN_COUNT).fill(NaN);
  /** Samples older than the newest row (a resend after an outage): not charted. */
  late = 0;

  constructor(private readonly limits: CarHistoryLimits) {
    this.times = new Float64Array(INITIAL_ROWS);
    this.values = new Float32Array(INITIAL_ROWS * VALUE_COUNT);
    this.coordinates = new Float64Array(INITIAL_ROWS * 2);
  }

  get rows(): number {
    return this.count;
  }

  /** Epoch ms of the newest row; -Infinity when empty. */
  get newestAt(): number {
    return this.count > 0 ? this.times[this.count - 1]! : Number.NEGATIVE_INFINITY;
  }

  /** Bytes held by the typed arrays (what the memory budget counts). */
  get bytes(): number {
    return this.times.byteLength + this.values.byteLength + this.coordinates.byteLength + this.current.byteLength;
  }

  /** Fold the car's values at `sample.at` in; `power` and `chargerPower` are derived by the caller. */
  add(sample: SignalSample, power: number, chargerPower: number): void {
    const at = sample.at;
    const lastAt = this.count > 0 ? this.times[this.count - 1]! : Number.NEGATIVE_INFINITY;
    if (at < lastAt) {
      this.late++;
      return;
    }
    const c = this.current;
    // Bitwise or, not ||: every column must be stored.
    const changed =
      put(c, 0, sample.soc) | put(c, 1, sample.range) | put(c, 2, sample.speed) | put(c, 3, power) | put(c, 4, chargerPower) |
      put(c, 5, sample.insideTemp) | put(c, 6, sample.outsideTemp) | put(c, LATITUDE, sample.latitude) | put(c, LONGITUDE, sample.longitude) |
      put(c, 9, sample.gear) | put(c, 10, sample.charging) | put(c, 11, sample.odometer);
    if (this.count > 0 && at - lastAt < this.limits.resolutionMs) {
      // Same step: the newest value wins, the row keeps its time.
      if (changed) this.writeRow(this.count - 1, lastAt);
      return;
    }
    if (!changed && this.count > 0 && at - lastAt < this.limits.heartbeatMs) return;
    if (this.count === this.times.length) this.makeRoom(at);
    this.writeRow(this.count, at);
    this.count++;
  }

  /** Rows with from <= t <= to, thinned evenly to at most `maxPoints`. */
  query(from: number, to: number, maxPoints: number): HistorySeries {
    const first = lowerBound(this.times, this.count, from);
    const rows = Math.max(0, lowerBound(this.times, this.count, to + 1) - first);
    const points = Math.min(rows, Math.max(2, maxPoints));
    const t: number[] = [];
    const columns = Object.fromEntries(HISTORY_COLUMNS.map((name) => [name, [] as Array<number | null>])) as HistorySeries['columns'];
    const lists = HISTORY_COLUMNS.map((name) => columns[name]);
    // Evenly spaced rows, first and last included, so the chart still reaches the present.
    for (let k = 0; k < points; k++) {
      const row = first + (points === rows ? k : Math.round((k * (rows - 1)) / (points - 1)));
      t.push(Math.round(this.times[row]!) / 1000);
      for (let i = 0; i < COLUMN_COUNT; i++) lists[i]!.push(this.read(row, i));
    }
    return { t, columns };
  }

  private read(row: number, column: number): number | null {
    let value: number;
    if (column === LATITUDE) value = this.coordinates[row * 2]!;
    else if (column === LONGITUDE) value = this.coordinates[row * 2 + 1]!;
    else value = this.values[row * VALUE_COUNT + SLOT[column]!]!;
    if (Number.isNaN(value)) return null;
    return column === LATITUDE || column === LONGITUDE ? value : Math.round(value * 1000) / 1000;
  }

  private writeRow(row: number, at: number): void {
    this.times[row] = at;
    const base = row * VALUE_COUNT;
    for (let i = 0; i < COLUMN_COUNT; i++) if (SLOT[i]! >= 0) this.values[base + SLOT[i]!] = this.current[i]!;
    this.coordinates[row * 2] = this.current[LATITUDE]!;
    this.coordinates[row * 2 + 1] = this.current[LONGITUDE]!;
  }

  /** Grow up to maxRows; then drop what left the window; then thin the older half. */
  private makeRoom(now: number): void {
    if (this.times.length < this.limits.maxRows) {
      this.resize(Math.min(this.limits.maxRows, this.times.length * 2));
      return;
    }
    const expired = lowerBound(this.times, this.count, now - this.limits.windowMs);
    if (expired > 0) {
      this.moveRows(expired, 0, this.count - expired);
      this.count -= expired;
      return;
    }
    const half = Math.floor(this.count / 2);
    // Keep the later row of each pair: it carries the values the earlier one led to.
    let to = 0;
    for (let from = 1; from < half; from += 2) this.copyRow(from, to++);
    const kept = this.count - half;
    this.moveRows(half, to, kept);
    this.count = to + kept;
  }

  private resize(rows: number): void {
    const times = new Float64Array(rows);
    const values = new Float32Array(rows * VALUE_COUNT);
    const coordinates = new Float64Array(rows * 2);
    times.set(this.times.subarray(0, this.count));
    values.set(this.values.subarray(0, this.count * VALUE_COUNT));
    coordinates.set(this.coordinates.subarray(0, this.count * 2));
    this.times = times;
    this.values = values;
    this.coordinates = coordinates;
  }

  private copyRow(from: number, to: number): void {
    this.times[to] = this.times[from]!;
    this.values.copyWithin(to * VALUE_COUNT, from * VALUE_COUNT, (from + 1) * VALUE_COUNT);
    this.coordinates.copyWithin(to * 2, from * 2, from * 2 + 2);
  }

  private moveRows(from: number, to: number, rows: number): void {
    this.times.copyWithin(to, from, from + rows);
    this.values.copyWithin(to * VALUE_COUNT, from * VALUE_COUNT, (from + rows) * VALUE_COUNT);
    this.coordinates.copyWithin(to * 2, from * 2, (from + rows) * 2);
  }
}

/** Keep a known value in the open row; 1 when it differs from what the row held. */
function put(row: Float64Array, index: number, value: number): number {
  if (Number.isNaN(value) || row[index] === value) return 0;
  row[index] = value;
  return 1;
}

/** First index in the sorted `times[0..count)` with times[i] >= value. */
function lowerBound(times: Float64Array, count: number, value: number): number {
  let low = 0;
  let high = count;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (times[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
