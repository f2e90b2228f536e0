import { expect } from 'chai';
import fc from 'fast-check';
import { CarHistory, type HistorySeries } from '../../src/history/car-history.js';
import {
  HISTORY_COLUMNS, ROW_CHARGING, ROW_GEAR, ROW_INSIDE_TEMP, ROW_LATITUDE, ROW_LONGITUDE, ROW_ODOMETER, ROW_OUTSIDE_TEMP, ROW_RANGE, ROW_SOC, ROW_SPEED,
  SAMPLE_VALUES, SignalSample,
} from '../../src/history/signal-sample.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const START = Date.parse('2026-12-01T08:00:00Z');
const LATITUDE = HISTORY_COLUMNS.indexOf('latitude');
const LONGITUDE = HISTORY_COLUMNS.indexOf('longitude');
// A history column -> where its value sits in a samples row (power and chargerPower are passed apart).
const ROW_OF: Record<string, number> = {
  soc: ROW_SOC, range: ROW_RANGE, speed: ROW_SPEED, insideTemp: ROW_INSIDE_TEMP, outsideTemp: ROW_OUTSIDE_TEMP,
  latitude: ROW_LATITUDE, longitude: ROW_LONGITUDE, gear: ROW_GEAR, charging: ROW_CHARGING, odometer: ROW_ODOMETER,
};

interface Limits {
  windowMs: number;
  resolutionMs: number;
  maxRows: number;
  heartbeatMs: number;
}

/**
 * CarHistory as a plain model: every record that changes a value in its step writes its row at once
 * (what CarHistory did before it wrote a step's row once), rows grown, expired and thinned the same way.
 */
class HistoryModel {
  private readonly open = HISTORY_COLUMNS.map(() => NaN);
  private rows: Array<{ t: number; values: number[] }> = [];
  private capacity = 0;
  private allocated = false;
  late = 0;

  constructor(private readonly limits: Limits) {}

  add(at: number, columns: number[]): void {
    const lastAt = this.rows.length > 0 ? this.rows[this.rows.length - 1]!.t : Number.NEGATIVE_INFINITY;
    if (at < lastAt) {
      this.late++;
      return;
    }
    if (!this.allocated) {
      this.allocated = true;
      this.capacity = 4;
    }
    let changed = false;
    columns.forEach((value, i) => {
      if (Number.isNaN(value) || this.open[i] === value) return;
      this.open[i] = value;
      changed = true;
    });
    const stored = (): number[] => this.open.map((value, i) => (i === LATITUDE || i === LONGITUDE ? value : Math.fround(value)));
    if (this.rows.length > 0 && at - lastAt < this.limits.resolutionMs) {
      if (changed) this.rows[this.rows.length - 1]!.values = stored();
      return;
    }
    if (!changed && this.rows.length > 0 && at - lastAt < this.limits.heartbeatMs) return;
    if (this.rows.length === this.capacity) this.makeRoom(at);
    this.rows.push({ t: at, values: stored() });
  }

  trim(): void {
    if (this.allocated && this.rows.length > 0 && this.capacity > this.rows.length) this.capacity = this.rows.length;
  }

  query(from: number, to: number): HistorySeries {
    const rows = this.rows.filter((row) => row.t >= from && row.t <= to);
    const columns = Object.fromEntries(
      HISTORY_COLUMNS.map((name, i) => [
        name,
        rows.map((row) => {
          const value = row.values[i]!;
          if (Number.isNaN(value)) return null;
          return i === LATITUDE || i === LONGITUDE ? value : Math.round(value * 1000) / 1000;
        }),
      ]),
    ) as HistorySeries['columns'];
    return { t: rows.map((row) => Math.round(row.t) / 1000), columns };
  }

  private makeRoom(now: number): void {
    if (this.capacity < this.limits.maxRows) {
      this.capacity = Math.min(this.limits.maxRows, Math.max(4, this.capacity * 2));
      return;
    }
    const expired = this.rows.findIndex((row) => row.t >= now - this.limits.windowMs);
    const drop = expired < 0 ? this.rows.length : expired;
    if (drop > 0) {
      this.rows.splice(0, drop);
      return;
    }
    const half = Math.floor(this.rows.length / 2);
    const kept: Array<{ t: number; values: number[] }> = [];
    for (let from = 1; from < half; from += 2) kept.push(this.rows[from]!);
    this.rows = kept.concat(this.rows.slice(half));
  }
}

type Op = { kind: 'add'; dt: number; values: number[]; asRow: boolean } | { kind: 'query' } | { kind: 'trim' };

const value = fc.constantFrom(NaN, NaN, 1, 2, 3.25, 52.123456789);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('add' as const), dt: fc.integer({ min: -3000, max: 9000 }), values: fc.array(value, { minLength: HISTORY_COLUMNS.length, maxLength: HISTORY_COLUMNS.length }), asRow: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'query' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'trim' as const }) },
);

describe('CarHistory against a plain model', () => {
  it('stores and answers what a history writing every changed row at once does (steps, heartbeats, late records, growth, expiry, thinning, trim)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.constantFrom(8, 16, 1024), fc.constantFrom(20_000, 600_000), (ops, maxRows, windowMs) => {
        const limits = { windowMs, resolutionMs: 5000, maxRows, heartbeatMs: 20_000 };
        const history = new CarHistory(limits);
        const model = new HistoryModel(limits);
        const sample = new SignalSample();
        const row = new Float64Array(SAMPLE_VALUES + 3).fill(NaN);
        let at = START;
        for (const step of ops) {
          if (step.kind === 'query') {
            expect(history.query(0, Number.MAX_SAFE_INTEGER, 100_000)).to.deep.equal(model.query(0, Number.MAX_SAFE_INTEGER));
          } else if (step.kind === 'trim') {
            history.trim();
            model.trim();
          } else {
            at += step.dt;
            const power = step.values[HISTORY_COLUMNS.indexOf('power')]!;
            const chargerPower = step.values[HISTORY_COLUMNS.indexOf('chargerPower')]!;
            if (step.asRow) {
              // A row at an offset, as the history's queue holds them.
              row.fill(NaN);
              HISTORY_COLUMNS.forEach((name, i) => {
                if (ROW_OF[name] !== undefined) row[3 + ROW_OF[name]] = step.values[i]!;
              });
              history.addRow(row, 3, at, power, chargerPower);
            } else {
              sample.reset(at);
              const fields = sample as unknown as Record<string, number>;
              HISTORY_COLUMNS.forEach((name, i) => {
                if (ROW_OF[name] !== undefined) fields[name] = step.values[i]!;
              });
              history.add(sample, power, chargerPower);
            }
            model.add(at, step.values);
          }
        }
        expect(history.late).to.equal(model.late);
        expect(history.query(0, Number.MAX_SAFE_INTEGER, 100_000)).to.deep.equal(model.query(0, Number.MAX_SAFE_INTEGER));
        expect(history.query(START + 10_000, START + 200_000, 100_000)).to.deep.equal(model.query(START + 10_000, START + 200_000));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
