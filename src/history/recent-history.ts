import type { Logger } from 'pino';
import type { BusRecord, RecordBus, RecordHold } from '../bus/record-bus.js';
import type { LocalVehicleState } from '../bus/vehicle-state.js';
import { CarActivity, type ActivityEvents, type ChargingSession, type Trip } from './car-activity.js';
import { CarHistory, type HistorySeries } from './car-history.js';
import type { HistoryMetrics } from './history-metrics.js';
import { SampleRow, rowHasAny } from './sample-row.js';
import { SAMPLE_VALUES, SignalSample, readSample, readSampleFromDatums, rfc3339Ms } from './signal-sample.js';

export interface RecentHistoryOptions {
  windowMs: number;
  resolutionMs: number;
  maxRowsPerCar: number;
  heartbeatMs?: number;
  maxTripsPerCar?: number;
  maxTrackPoints?: number;
  metrics: HistoryMetrics;
  logger: Logger;
  /**
   * NATS mode: whether this instance is where the car's records are published (it counts their trips
   * and charges); records of cars connected elsewhere also reach it for the VINs it watches.
   */
  isLocal?: (vin: string) => boolean;
  /** Idle time after which a VIN read back from the stream is forgotten (NATS mode), ms. */
  streamCacheMs?: number;
}

/** What a `history` request gets back for one car. */
export interface HistoryAnswer {
  vin: string;
  from: number;
  to: number;
  series: HistorySeries;
  trips: Trip[];
  charges: ChargingSession[];
  /** A trip or charge is under way. */
  driving: boolean;
  charging: boolean;
}

/** Trips and charging sessions as they end, for other outputs (PostgreSQL sink, MQTT). */
export interface ActivityListener {
  tripEnded?(vin: string, trip: Trip): void;
  chargeEnded?(vin: string, session: ChargingSession): void;
}

/** Records folded in per event-loop turn (a few microseconds each). */
const RECORDS_PER_TURN = 1000;
/**
 * How long a record may wait before it is folded in. Nothing reads the history without folding the
 * queue in first (requests, the sweep), so the wait is seen only by trips and charges ending up to this
 * much later. It spares a lone record (a fleet of cars at a frame a second: one record per event-loop
 * turn) a turn of its own: a setImmediate per record costs the loop an extra turn, the wait a timer per
 * window. A burst reaching RECORDS_PER_TURN is folded in on the next turn, so the queue stays short.
 * 100 ms rather than 20: a sparse fleet's lone records (1,000 cars at a frame a second) are folded ~100
 * at a time, so the fold runs optimised and warm instead of ~20 records in baseline code from a timer
 * that fires 50 times a second (BENCHMARKS.md, engineer W, session 8); the queue holds no decode batch
 * (samples are copied), so a longer wait keeps no result buffer from being recycled.
 */
const FOLLOW_WINDOW_MS = 100;
/**
 * Numbers per queue entry (RecentHistory.queueRows): receivedAt, created_at in epoch ms (NaN: none), the
 * stream sequence (-1: none), then the record's SAMPLE_VALUES followed signals.
 */
const QUEUE_ROW = 3 + SAMPLE_VALUES;
const Q_RECEIVED_AT = 0;
const Q_CREATED_MS = 1;
const Q_SEQ = 2;
const Q_VALUES = 3;
/** Entries the queue's numbers have room for at first (grown by doubling, given back after a burst). */
const QUEUE_START = 256;
/**
 * Entries past which the queue's numbers are given back once drained (a burst's): a power of two, as
 * the queue grows by doubling, above what a busy server's turns fill between drains (RECORDS_PER_TURN
 * and a turn's more); ~590 KB at most kept.
 */
const QUEUE_KEPT = 4096;
/** How often cars are swept; a car with no new row for this long is idle (its spare rows go back). */
const SWEEP_MS = 60_000;

/** CarState.fold's sample as a row (the rare paths that read a record into a SignalSample). */
const SCRATCH_ROW = new SampleRow();

/** Where a car's finished trips and charges go (counted in metrics and told to listeners when `counted`). */
interface ActivitySink {
  activityEnded(vin: string, counted: boolean, trip: Trip | null, session: ChargingSession | null): void;
}

/** One car's history and activity; it is its activity's events itself, so a car costs no closures. */
class CarState implements ActivityEvents {
  readonly history: CarHistory;
  readonly activity: CarActivity;
  lastSeq = 0;
  lastUsedAt = 0;
  /** Forgotten by the sweep: an actor's cached reference to it (LocalVehicleState.historyCar) is stale. */
  dropped = false;
  /** The actor it is cached on (LocalVehicleState.historyCar), cleared there when the sweep forgets it. */
  cachedOn: LocalVehicleState | null = null;

  constructor(
    options: Required<Omit<RecentHistoryOptions, 'isLocal'>>,
    readonly vin: string,
    private readonly counted: boolean,
    readonly sink: ActivitySink,
  ) {
    this.history = new CarHistory({
      windowMs: options.windowMs,
      resolutionMs: options.resolutionMs,
      maxRows: options.maxRowsPerCar,
      heartbeatMs: options.heartbeatMs,
    });
    this.activity = new CarActivity({ windowMs: options.windowMs, maxKept: options.maxTripsPerCar, maxTrackPoints: options.maxTrackPoints }, this);
  }

  tripEnded(trip: Trip): void {
    this.sink.activityEnded(this.vin, this.counted, trip, null);
  }

  chargeEnded(session: ChargingSession): void {
    this.sink.activityEnded(this.vin, this.counted, null, session);
  }

  /**
   * Fold in one record's signals: SAMPLE_VALUES values from `at` in `values` (SignalSample.readRow's
   * order), `createdMs` its created_at in epoch ms (NaN: none), `seq` its stream sequence (-1: none).
   * Read from the row itself: no SignalSample is filled per record.
   */
  add(values: Float64Array, at: number, receivedAt: number, createdMs: number, seq: number): void {
    const time = Number.isFinite(createdMs) && createdMs <= receivedAt + 300_000 ? createdMs : receivedAt;
    this.foldRow(values, at, time, seq);
  }

  /** Fold in a record's signals already read into `sample` (left as it is). */
  fold(sample: SignalSample, seq: number): void {
    this.foldRow(SCRATCH_ROW.of(sample), 0, sample.at, seq);
  }

  private foldRow(values: Float64Array, at: number, time: number, seq: number): void {
    if (seq >= 0) this.lastSeq = seq;
    if (!rowHasAny(values, at)) return;
    // A resend older than what is charted would reopen trips that already ended: both skip it.
    if (time < this.history.newest()) {
      this.history.late++;
      return;
    }
    const activity = this.activity;
    activity.addRow(values, at, time);
    this.history.addRow(values, at, time, activity.packPower(), activity.chargerPower());
  }

  addQueued(entry: Queued): void {
    this.add(entry.values, entry.at, entry.receivedAt, entry.createdMs, entry.seq);
  }

  get bytes(): number {
    return this.history.bytes + this.activity.bytes;
  }
}

/**
 * A record as the history keeps it until it is folded in: where its signals are (a decode batch's
 * samples, or a row read here) and its times; not the record itself, whose text would otherwise live
 * (and be copied by the young-generation GC) for as long as it waits.
 */
interface Queued {
  values: Float64Array;
  at: number;
  receivedAt: number;
  createdMs: number;
  seq: number;
}

/** Reads a record that came without samples (located datums, else its JSON) into `sample`, time included. */
function readRecord(record: BusRecord, sample: SignalSample): void {
  if (record.datums !== undefined && record.datumText !== undefined) readSampleFromDatums(record.datums, record.datumText, record.createdAt ?? null, record.receivedAt, sample, record.createdAtMs, record.datumBase);
  else readSample(record.recordJson!, record.receivedAt, sample);
}

/** What `sample` holds as an entry of its own (the rare paths that keep one: NATS reads). */
function entryOf(sample: SignalSample, receivedAt: number, seq: number): Queued {
  const values = new Float64Array(SAMPLE_VALUES);
  sample.writeRow(values, 0);
  // sample.at is already the record's time (its created_at when it counts, else receivedAt).
  return { values, at: 0, receivedAt, createdMs: sample.at, seq };
}

/** The record's created_at in epoch ms as the decode stage parsed it (else parsed here); NaN without one. */
function createdMsOf(record: BusRecord): number {
  // The number first: a decoded record's created_at text is made only when read (DecodedRecord.createdAt).
  const ms = record.createdAtMs ?? 0;
  if (ms > 0) return ms;
  const createdAt = record.createdAt ?? null;
  return createdAt === null ? NaN : rfc3339Ms(createdAt);
}

/**
 * The recent history of every car, fed from the record bus as a subscriber (never on the ack path: the
 * bus hands records over synchronously, so they are queued and folded in within FOLLOW_WINDOW_MS).
 *
 * In one process every record passes here. With NATS the stream is the source of truth, so a request
 * for a car reads its window back from the stream (then keeps it current by watching the VIN) and every
 * instance answers the same; the locally fed state only counts this instance's trips and charges.
 */
export class RecentHistory implements ActivitySink {
  private readonly options: Required<Omit<RecentHistoryOptions, 'isLocal'>> & Pick<RecentHistoryOptions, 'isLocal'>;
  private readonly cars = new Map<string, CarState>();
  private readonly streamCars = new Map<string, CarState>();
  private readonly loading = new Map<string, Promise<CarState>>();
  private readonly held = new Map<string, Queued[]>();
  private readonly listeners: ActivityListener[] = [];
  private readonly sample = new SignalSample();
  /**
   * Records waiting to be folded in, as columns (entry i is the i-th of each): no object per record, and
   * nothing of the record kept but its signals and its times. A record with the decode stage's samples
   * has them copied into its row of `queueRows` (QUEUE_ROW numbers: times, then the signals), so the
   * history holds no decode batch while it waits: the batch's result buffer goes back to the pool at
   * once, and the window can be long enough for a fold to run over many records, optimised and warm,
   * without keeping a result buffer per record out of recycling. Entries before `head` are folded in
   * already.
   */
  private readonly queueVins: string[] = [];
  /** The record's actor (BusRecord.origin), where its car's entry is cached; null for others. */
  private readonly queueOrigins: Array<LocalVehicleState | null> = [];
  /** Times and signals per entry (QUEUE_ROW each; the signals are read only when the entry has them). */
  private queueRows = new Float64Array(QUEUE_START * QUEUE_ROW);
  /** The record itself when it came without samples: read when folded in, not on the ack path. */
  private readonly queueRecords: Array<BusRecord | null> = [];
  /** The record's hold (BusRecord.hold: its decode buffer is recycled after letGo), else null. */
  private readonly queueHeld: Array<RecordHold | null> = [];
  private head = 0;
  /**
   * Entries in use are [head, tail). The columns are not emptied when everything is folded in, only
   * written over from 0 again: emptied, each column would be grown again, step by step, after
   * every drain (what a push past the end costs). Entries past `tail` are stale; the references among
   * them (signals, records) are let go of as they are folded in.
   */
  private tail = 0;
  /** A drain is running (one asked for from an activity listener returns: the running one folds the queue in). */
  private draining = false;
  /** A drain is due: on the window's timer, or on the next turn (`soon`). */
  private scheduled = false;
  private soon = false;
  /**
   * One interval while records keep coming, stopped by the first tick that finds none queued since the
   * last drain. A timeout re-armed per window (refresh) cost more: the timer list of its duration had
   * emptied when it fired, so each re-arm made the list again and rescheduled libuv's timer
   * (BENCHMARKS.md, engineer L). A record waits at most one window either way.
   */
  private window: NodeJS.Timeout | null = null;
  private readonly drainLater = (): void => this.drain(false);
  private readonly windowTick = (): void => {
    if (!this.scheduled) {
      clearInterval(this.window!);
      this.window = null;
      return;
    }
    this.drain(false);
  };
  private bus: RecordBus | null = null;
  private unsubscribe: (() => void) | null = null;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(options: RecentHistoryOptions) {
    this.options = {
      heartbeatMs: 600_000,
      maxTripsPerCar: 100,
      maxTrackPoints: 1000,
      streamCacheMs: 600_000,
      ...options,
    };
    options.metrics.collectFrom(this);
  }

  /** Follow the bus; with `replay` (NATS) requests read the stream. */
  start(bus: RecordBus): void {
    this.bus = bus;
    this.unsubscribe ??= bus.subscribe((record) => {
      if (record.topic !== 'V') return;
      // A record with the decode stage's samples has its JSON (they were read from it): not sliced to ask.
      if ((record.sampleAt === undefined || record.sampleAt < 0) && record.recordJson === null) return;
      const queued = this.enqueue(record) - this.head;
      if (!this.scheduled) {
        this.scheduled = true;
        this.window ??= setInterval(this.windowTick, FOLLOW_WINDOW_MS);
      }
      if (queued >= RECORDS_PER_TURN && !this.soon) {
        this.soon = true;
        setImmediate(this.drainLater);
      }
    }, { holdsRecords: true });
    this.sweeper ??= setInterval(() => this.sweep(Date.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    if (this.window !== null) clearInterval(this.window);
    this.window = null;
    this.drain();
    for (const vin of this.streamCars.keys()) this.bus?.unwatch(vin);
    this.streamCars.clear();
  }

  onActivity(listener: ActivityListener): void {
    this.listeners.push(listener);
  }

  get carCount(): number {
    return this.cars.size + this.streamCars.size;
  }

  get bytes(): number {
    let bytes = 0;
    for (const car of this.cars.values()) bytes += car.bytes;
    for (const car of this.streamCars.values()) bytes += car.bytes;
    return bytes;
  }

  get windowMs(): number {
    return this.options.windowMs;
  }

  get streamBacked(): boolean {
    return this.bus?.replay !== undefined;
  }

  /** Queue a record's entry (see Queued); returns the queue's length. */
  private enqueue(record: BusRecord): number {
    const samples = record.samples;
    const n = this.tail++;
    let rows = this.queueRows;
    const row = n * QUEUE_ROW;
    if (row + QUEUE_ROW > rows.length) {
      const grown = new Float64Array(rows.length * 2);
      grown.set(rows);
      this.queueRows = rows = grown;
    }
    this.queueVins[n] = record.vin;
    this.queueOrigins[n] = record.origin ?? null;
    rows[row + Q_RECEIVED_AT] = record.receivedAt;
    rows[row + Q_SEQ] = record.streamSeq ?? -1;
    const sampleAt = record.sampleAt;
    if (samples !== undefined && sampleAt !== undefined && sampleAt >= 0) {
      // Copied now (15 numbers): nothing of the batch is read after this listener returns, so it is not held.
      rows[row + Q_CREATED_MS] = createdMsOf(record);
      for (let v = 0; v < SAMPLE_VALUES; v++) rows[row + Q_VALUES + v] = samples[sampleAt + v]!;
      this.queueRecords[n] = null;
      this.queueHeld[n] = null;
    } else {
      // Read when folded in, after this turn (the bus hands the record over before its ack is written): held until then.
      rows[row + Q_CREATED_MS] = NaN;
      this.queueRecords[n] = record;
      this.queueHeld[n] = record.hold !== undefined ? record.hold() : null;
    }
    return this.tail;
  }

  /** Fold queued records in now (requests, the sweep, tests and shutdown; otherwise within the window). */
  drain(all = true): void {
    this.scheduled = false;
    this.soon = false;
    const from = this.head;
    const length = this.tail;
    if (from === length || this.draining) return;
    let to = length;
    if (!all && length - from > RECORDS_PER_TURN) {
      // A bounded slice per turn: folding records in never holds the event loop (and acks) for long.
      to = from + RECORDS_PER_TURN;
      this.scheduled = this.soon = true;
      setImmediate(this.drainLater);
    }
    this.head = to;
    this.draining = true;
    try {
      this.fold(from, to);
    } finally {
      this.draining = false;
    }
    // Folded in: their samples and records are not read again. (A fold that threw lets go of nothing:
    // those buffers are then not recycled, never read after a worker wrote them again.)
    const held = this.queueHeld;
    for (let i = from; i < to; i++) {
      held[i]?.letGo();
      held[i] = null;
    }
    const columns = (): unknown[][] => [this.queueVins, this.queueOrigins, this.queueRecords, this.queueHeld];
    if (this.head === this.tail) {
      // All folded in: the columns are written from 0 again (fold let go of the records); a burst's
      // long columns are given back.
      if (this.tail > RECORDS_PER_TURN) for (const column of columns()) column.length = 0;
      // The numbers are kept up to a few turns' worth (a busy server fills them again at once: made
      // anew and grown each time, they cost more than the copies they hold); a longer burst's go back.
      if (this.queueRows.length > QUEUE_KEPT * QUEUE_ROW) this.queueRows = new Float64Array(QUEUE_START * QUEUE_ROW);
      this.head = this.tail = 0;
    } else if (this.head >= 4 * RECORDS_PER_TURN) {
      // A queue that never catches up: drop what was folded in, so the columns hold only what waits.
      const done = this.head;
      for (const column of columns()) {
        column.length = this.tail;
        column.splice(0, done);
      }
      this.queueRows.copyWithin(0, done * QUEUE_ROW, this.tail * QUEUE_ROW);
      this.tail -= done;
      this.head = 0;
    }
    this.options.metrics.samples.inc(to - from);
  }

  /** Fold queue entries [from, to) into their cars. */
  private fold(from: number, to: number): void {
    const vins = this.queueVins;
    const rows = this.queueRows;
    const records = this.queueRecords;
    const origins = this.queueOrigins;
    const isLocal = this.streamBacked ? this.options.isLocal : undefined;
    // In one process nothing is held or read back from a stream: two map lookups a record saved.
    const followsStream = this.held.size > 0 || this.streamCars.size > 0;
    const sample = this.sample;
    for (let i = from; i < to; i++) {
      const vin = vins[i]!;
      const row = i * QUEUE_ROW;
      const seq = rows[row + Q_SEQ]!;
      const receivedAt = rows[row + Q_RECEIVED_AT]!;
      const origin = origins[i]!;
      origins[i] = null;
      // A record without samples is read now, into `sample`, and folded in from there (the column is
      // written over, not emptied: see `tail`; the reference is let go of here).
      const record = records[i]!;
      if (record !== null) {
        readRecord(record, sample);
        records[i] = null;
      }
      if (followsStream) {
        const held = this.held.get(vin);
        if (held !== undefined) held.push(record !== null ? entryOf(sample, receivedAt, seq) : { values: rows.slice(row + Q_VALUES, row + QUEUE_ROW), at: 0, receivedAt, createdMs: rows[row + Q_CREATED_MS]!, seq });
        const streamCar = this.streamCars.get(vin);
        if (streamCar !== undefined && (seq < 0 || seq > streamCar.lastSeq)) {
          if (record !== null) streamCar.fold(sample, seq);
          else streamCar.add(rows, row + Q_VALUES, receivedAt, rows[row + Q_CREATED_MS]!, seq);
        }
      }
      if (isLocal !== undefined && !isLocal(vin)) continue;
      // The actor's cached entry when it is this history's and still kept; else looked up (and cached).
      const cached = origin !== null ? origin.historyCar : undefined;
      let car = cached instanceof CarState && cached.sink === this && !cached.dropped && cached.vin === vin ? cached : this.cars.get(vin);
      if (car === undefined) {
        car = this.newCar(vin, true);
        this.cars.set(vin, car);
      }
      if (origin !== null && cached !== car) {
        origin.historyCar = car;
        car.cachedOn = origin;
      }
      if (record !== null) car.fold(sample, seq);
      else car.add(rows, row + Q_VALUES, receivedAt, rows[row + Q_CREATED_MS]!, seq);
    }
  }

  /** The car's history between `from` and `to` (epoch ms), at most `maxPoints` rows. */
  async query(vin: string, from: number, to: number, maxPoints: number): Promise<HistoryAnswer> {
    this.drain();
    const car = this.streamBacked ? await this.fromStream(vin) : this.cars.get(vin);
    if (car === undefined) {
      return { vin, from, to, series: new CarHistory({ windowMs: 1, resolutionMs: 1, maxRows: 1, heartbeatMs: 1 }).query(0, 0, 0), trips: [], charges: [], driving: false, charging: false };
    }
    car.lastUsedAt = Date.now();
    const overlaps = (item: { startAt: number; endAt: number }): boolean => item.endAt >= from && item.startAt <= to;
    return {
      vin,
      from,
      to,
      series: car.history.query(from, to, maxPoints),
      trips: car.activity.trips.filter(overlaps),
      charges: car.activity.charges.filter(overlaps),
      driving: car.activity.openTrip,
      charging: car.activity.openCharge,
    };
  }

  /** One finished trip with its track, or null when it is not (or no longer) kept. */
  async trip(vin: string, id: string): Promise<Trip | null> {
    this.drain();
    const car = this.streamBacked ? await this.fromStream(vin) : this.cars.get(vin);
    return car?.activity.trips.find((trip) => trip.id === id) ?? null;
  }

  private newCar(vin: string, counted: boolean): CarState {
    return new CarState(this.options, vin, counted, this);
  }

  /** A car's trip or charge ended (CarState calls it); only this instance's own cars are counted. */
  activityEnded(vin: string, counted: boolean, trip: Trip | null, session: ChargingSession | null): void {
    if (!counted) return;
    const metrics = this.options.metrics;
    if (trip !== null) {
      metrics.tripEnded(trip);
      for (const listener of this.listeners) listener.tripEnded?.(vin, trip);
    }
    if (session !== null) {
      metrics.chargeEnded(session);
      for (const listener of this.listeners) listener.chargeEnded?.(vin, session);
    }
  }

  /**
   * NATS: the car's window read back from the stream, then kept current from the bus (the VIN is
   * watched while it is cached). Live records that arrive during the read are held and applied past the
   * last replayed stream sequence, so none is lost or counted twice.
   */
  private fromStream(vin: string): Promise<CarState> {
    const cached = this.streamCars.get(vin);
    if (cached !== undefined) return Promise.resolve(cached);
    let loading = this.loading.get(vin);
    if (loading !== undefined) return loading;
    const bus = this.bus!;
    loading = (async () => {
      bus.watch(vin);
      this.held.set(vin, []);
      const car = this.newCar(vin, false);
      const sample = new SignalSample();
      try {
        const started = performance.now();
        await bus.replay!(vin, Date.now() - this.options.windowMs, (record) => {
          if (record.topic !== 'V' || record.recordJson === null) return;
          if (record.samples !== undefined && record.sampleAt !== undefined && record.sampleAt >= 0) {
            car.add(record.samples, record.sampleAt, record.receivedAt, createdMsOf(record), record.streamSeq ?? -1);
          } else {
            readRecord(record, sample);
            car.fold(sample, record.streamSeq ?? -1);
          }
        });
        this.options.metrics.streamReadSeconds.observe((performance.now() - started) / 1000);
        this.drain();
        for (const entry of this.held.get(vin) ?? []) {
          if (entry.seq < 0 || entry.seq > car.lastSeq) car.addQueued(entry);
        }
        this.streamCars.set(vin, car);
        return car;
      } catch (error) {
        bus.unwatch(vin);
        throw error;
      } finally {
        this.held.delete(vin);
        this.loading.delete(vin);
      }
    })();
    this.loading.set(vin, loading);
    return loading;
  }

  /** Forget cars that left the window and stream copies nobody asked for lately; idle cars give spare rows back. */
  sweep(now: number): void {
    this.drain();
    for (const [vin, car] of this.cars) {
      car.activity.expire(now);
      if (car.history.rows === 0 || (car.history.newestAt < now - this.options.windowMs && !car.activity.openTrip && !car.activity.openCharge)) {
        this.cars.delete(vin);
        car.dropped = true;
        // A silent car's actor may live on: it does not keep the forgotten entry alive.
        if (car.cachedOn !== null && car.cachedOn.historyCar === car) car.cachedOn.historyCar = null;
        car.cachedOn = null;
      } else if (car.history.newestAt < now - SWEEP_MS) {
        car.history.trim();
      }
    }
    for (const [vin, car] of this.streamCars) {
      car.activity.expire(now);
      if (now - car.lastUsedAt > this.options.streamCacheMs) {
        this.streamCars.delete(vin);
        this.bus?.unwatch(vin);
      }
    }
    this.options.logger.debug({ cars: this.carCount }, 'history_swept');
  }
}
