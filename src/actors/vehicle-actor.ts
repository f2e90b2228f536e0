import type { BusRecord, RecordBus } from '../bus/record-bus.js';
import { DecodedRecord } from './decoded-record.js';
import type { LastKnownValue, LocalVehicleState } from '../bus/vehicle-state.js';
import { stateFieldName } from '../decode/decode-batch.js';
import type { DecodedBatch } from '../decode/decoded-batch.js';
import { KIND_ERROR, KIND_RECORD } from '../decode/decode-task.js';
import type { HistogramCell } from '../metrics/hot-path.js';
import type { ActorMetrics } from './actor-metrics.js';
import type { VehicleConnection } from './vehicle-connection.js';
// The global Buffer is an accessor (a getter call per read); the module's binding is not.
import { Buffer } from 'node:buffer';
// The global `performance` is an accessor (10-20 ns a read on the per-record path); the module's binding is not.
import { performance } from 'node:perf_hooks';

/**
 * Int32 numbers per field in the actor's state (VehicleActor.fields): Field number, the value's start,
 * length and room in the car's bytes, its time slot. The field's atMs is apart (VehicleActor.fieldAtMs).
 */
const FIELD_SPAN = 5;
/** An actor's field table before its first record. */
const NO_FIELDS = new Int32Array(0);
const NO_FIELD_TIMES = new Float64Array(0);
/** Numbers per time slot (VehicleActor.times): start in the car's bytes, length, fields using it. */
const TIME_SPAN = 3;
/** Bytes a time slot has: an RFC 3339 created_at is at most 30 (9 fractional digits), toISOString 27. */
const TIME_ROOM = 32;
/** A car's state bytes before its first record. */
const NO_BYTES = new Uint8Array(0);
const NO_WORDS = new DataView(new ArrayBuffer(0));
/**
 * Values at least this long are copied into a car's state four bytes at a time (DataView loads and
 * stores, which TurboFan inlines); shorter ones byte by byte. The byte loop was the largest line of the
 * main thread's own JavaScript at saturation (BENCHMARKS.md, engineer L, session 11).
 */
const WORD_COPY_MIN = 8;
/**
 * The last source remember copied from (one per decode batch) and its DataView: one view per batch, not
 * per record. It keeps that one result Buffer reachable until another batch's record comes (a worker's
 * buffer handed back for recycling is detached by then and holds no bytes).
 */
let wordSource: Uint8Array = NO_BYTES;
let wordSourceView: DataView = NO_WORDS;
function wordsOf(source: Uint8Array): DataView {
  if (source !== wordSource) {
    wordSource = source;
    wordSourceView = new DataView(source.buffer, source.byteOffset, source.length);
  }
  return wordSourceView;
}
/** Where a record without created_at has its receivedAt time written (read, not kept). */
const receivedAtText = Buffer.alloc(TIME_ROOM);
/** Whether the 4 bytes at `start` are `null`. */
function isNull(source: Uint8Array, start: number): boolean {
  return source[start] === 0x6e && source[start + 1] === 0x75 && source[start + 2] === 0x6c && source[start + 3] === 0x6c;
}
/** Room past a value's length: a number a few digits longer next time is written in place. */
function roomFor(length: number): number {
  return length + 8 + (length >> 3);
}
/**
 * A bus that is safe at once (publishNow) has one record in this many timed in
 * bus_publish_latency_seconds (a power of two): its subscribers take well under a µs, about what the
 * two clock reads around them cost (~90 ns a record at saturation). A durable bus times every record.
 */
const BUS_TIMED_EVERY = 16;
/** Records published through publishNow by every actor, modulo BUS_TIMED_EVERY: 0 is timed. */
let busPublishes = 0;

/**
 * What the decode pool carries for each frame to its actor: one per socket (the listener's socket data),
 * not per frame; the frame's own numbers (its seq and arrival times) travel in the pool's columns.
 */
export interface FrameOwner {
  readonly connection: VehicleConnection | null;
  readonly actor: VehicleActor | null;
}

/** A frame's socket and numbers as one object (tests, tools; the hot path passes them as arguments). */
export interface FrameTicket {
  actor: VehicleActor;
  connection: VehicleConnection;
  /** Per-VIN arrival order: decoding is parallel, publishing is not. */
  seq: number;
  /** performance.now() when the frame arrived, for ack latency. */
  arrivedAt: number;
  /** Epoch ms when the frame arrived. */
  receivedAt: number;
}

/** A last-known value with its time in epoch milliseconds: a value only replaces one at least as new. */
export interface TimedValue extends LastKnownValue {
  atMs: number;
}

/** A frame decoded before an earlier one of its VIN: its batch and index, kept until its turn. */
interface Parked {
  connection: VehicleConnection;
  seq: number;
  arrivedAt: number;
  receivedAt: number;
  batch: DecodedBatch;
  index: number;
}

/**
 * Everything the server knows about one VIN: its sockets, the order its records leave in, its
 * last-known state and when it was last heard from. One per VIN, living on the main thread, so none of
 * this needs locks.
 */
export class VehicleActor implements LocalVehicleState {
  readonly vin: string;
  /** Replaced, not grown, by the registry when a socket opens (an array grown by push keeps 17 slots). */
  connections: VehicleConnection[] = [];
  /**
   * Last-known state, as bytes that pin no record. Per field, [Field number, start, length, room, time
   * slot] in `fields` (Int32) and its atMs in `fieldAtMs`, both views of one buffer: 28 bytes a field
   * where a double array of the six took 48, so a cold record's look-ups touch about half the cache
   * lines (BENCHMARKS.md, engineer G, session 10). The value's UTF-8 is bytes[start, start + length),
   * with `room` bytes reserved there. Per time slot, [start,
   * length, fields] in `times`: a record's time (RFC 3339) written once for all the fields it updates;
   * a slot no field uses any more is taken by the next record. Values and times are copied from the
   * decode stage's result bytes, so a record nobody reads makes no text at all; a record text kept as
   * state lived until the car's next record, a second later in the sparse regime, and every scavenge
   * copied one per car (BENCHMARKS.md, engineer K, session 8). A value written where the old one was
   * when it fits its room (nearly always: numbers), else after the used bytes; the buffer is laid out
   * anew (layout) only when that runs out, sized from what the car holds, so a busy car's copies do not
   * grow it per record. compactState trims a quiet car's state to one latin1 string of its live bytes
   * (`packed`). Fields are found by number, their names made only when the state is read. No Map and no
   * object per field (bench/micro/idle-car-memory).
   */
  private fields: Int32Array = NO_FIELDS;
  private fieldAtMs: Float64Array = NO_FIELD_TIMES;
  /** Fields in use in `fields` and `fieldAtMs` (their capacity is fieldAtMs.length). */
  private fieldCount = 0;
  private times: number[] = [];
  private bytes: Uint8Array = NO_BYTES;
  /** `bytes` as a DataView, for values copied four bytes at a time (WORD_COPY_MIN). */
  private words: DataView = NO_WORDS;
  /** Bytes of `bytes` laid out (live, reserved or left behind by a value that moved). */
  private used = 0;
  /**
   * A quiet car's trimmed state (compactState): its live bytes as a latin1 string, one character a byte,
   * the fields' and times' starts into it, `bytes` empty. A string costs the heap its length and a
   * header; an ArrayBuffer of its own per idle car cost ~0.7 KiB more (engineer K). Laid out as bytes
   * again by the car's next record.
   */
  private packed: string | null = null;
  /** Where the next field is looked for (a field index): records list their fields in the same order each time. */
  private cursor = 0;
  lastSeenAt: number;
  stale = false;
  private nextSeq = 0;
  private nextToRelease = 0;
  private parked: Map<number, Parked> | null = null;
  private readonly busLatency: HistogramCell;
  /** The recent history's entry for this car (LocalVehicleState.historyCar). */
  historyCar: object | null = null;

  constructor(
    vin: string,
    private readonly bus: RecordBus,
    private readonly metrics: ActorMetrics,
    now: number,
  ) {
    this.vin = vin;
    this.lastSeenAt = now;
    this.busLatency = metrics.busPublishLatency.child({ bus: bus.name });
  }

  get connected(): boolean {
    return this.connections.length > 0;
  }

  /** Frames not yet released (decoding or waiting for an earlier frame). */
  get inFlight(): number {
    return this.nextSeq - this.nextToRelease;
  }

  /** A frame of this VIN arrived (epoch ms): its per-VIN seq, the order its outcome is released in. */
  nextFrame(receivedAt: number): number {
    this.lastSeenAt = receivedAt;
    return this.nextSeq++;
  }

  /** nextFrame as a ticket object (tests, tools). */
  frameArrived(connection: VehicleConnection, receivedAt: number, arrivedAt: number): FrameTicket {
    return { actor: this, connection, seq: this.nextFrame(receivedAt), arrivedAt, receivedAt };
  }

  /** frameDecoded for a ticket (tests, tools). */
  decoded(ticket: FrameTicket, batch: DecodedBatch, index: number): boolean {
    return this.frameDecoded(ticket.connection, ticket.seq, ticket.arrivedAt, ticket.receivedAt, batch, index);
  }

  /**
   * The decode pool's answer for one of this VIN's frames (row `index` of `batch`): `seq` from
   * nextFrame, `arrivedAt` performance.now() and `receivedAt` epoch ms of its arrival. Released strictly
   * in arrival order; true when it is parked for an earlier frame (the batch is kept until then).
   */
  frameDecoded(connection: VehicleConnection, seq: number, arrivedAt: number, receivedAt: number, batch: DecodedBatch, index: number): boolean {
    if (seq !== this.nextToRelease) {
      (this.parked ??= new Map()).set(seq, { connection, seq, arrivedAt, receivedAt, batch, index });
      return true;
    }
    this.release(connection, arrivedAt, receivedAt, batch, index);
    const parked = this.parked;
    if (parked !== null) {
      let next: Parked | undefined;
      while ((next = parked.get(this.nextToRelease)) !== undefined) {
        parked.delete(next.seq);
        this.release(next.connection, next.arrivedAt, next.receivedAt, next.batch, next.index);
      }
      if (parked.size === 0) this.parked = null;
    }
    return false;
  }

  /** A record the server made itself (connectivity): published like a car's, never acked. */
  publishServerRecord(record: BusRecord): void {
    record.origin = this;
    const started = performance.now();
    this.bus.publish(record, (error) => {
      this.observeBus(started, error);
    });
  }

  private release(connection: VehicleConnection, arrivedAt: number, receivedAt: number, batch: DecodedBatch, i: number): void {
    this.nextToRelease++;
    const kind = batch.kind(i);
    if (kind !== KIND_RECORD) {
      if (kind === KIND_ERROR) {
        // `internal` is a bug of ours, counted by the decode pool in decode_internal_errors_total.
        const errorKind = batch.errorKind(i);
        if (errorKind !== 'internal') this.metrics.decodeErrors.inc({ kind: errorKind ?? 'unknown' });
      }
      connection.sendReply(batch.reply(i), kind === KIND_ERROR ? 'error' : 'ack', arrivedAt);
      return;
    }
    const topic = batch.topic(i);
    this.metrics.topic(topic).recordReceived(batch.signals(i), batch.payloadBytes(i));
    // The state triples are read in the batch's index (no view made per record); their values and the
    // record's time are copied from the decode stage's bytes (remember), so no text is made here.
    const stateFrom = batch.stateFrom(i);
    const stateTo = batch.stateTo(i);
    const createdAtMs = batch.hasCreatedAt(i) ? batch.createdAtMs(i) : undefined;
    if (stateTo > stateFrom) {
      const bytes = batch.stateBytes(i);
      if (bytes === null) {
        this.rememberText(batch, i, receivedAt);
      } else {
        const at = batch.textBytesAt;
        if (createdAtMs !== undefined) this.remember(batch.triples, stateFrom, stateTo, bytes, at, bytes, batch.createdAtStart(i) + at, batch.createdAtEnd(i) + at, createdAtMs);
        else this.remember(batch.triples, stateFrom, stateTo, bytes, at, receivedAtText, 0, receivedAtText.write(new Date(receivedAt).toISOString(), 'latin1'), receivedAt);
      }
    }
    const clientVersion = connection.clientVersion;
    const bus = this.bus;
    // The txid made at once unless every listener reads it during publish or holds the record (DecodedRecord.txid).
    const publishNow = bus.publishNow !== undefined;
    const record = new DecodedRecord(this.vin, topic, receivedAt, batch, i, createdAtMs, clientVersion !== '' ? clientVersion : undefined, this, !publishNow || bus.everyListenerHolds !== true);
    const reply = batch.reply(i);
    if (publishNow) {
      // Safe once it returns: no callback to allocate, the ack follows at once. Timed one record in
      // BUS_TIMED_EVERY: the two clock reads cost more than the local subscribers' work they time.
      const timed = busPublishes === 0;
      busPublishes = (busPublishes + 1) & (BUS_TIMED_EVERY - 1);
      if (timed) {
        const started = performance.now();
        this.bus.publishNow!(record);
        this.busLatency.observe((performance.now() - started) / 1000);
      } else {
        this.bus.publishNow!(record);
      }
      connection.sendReply(reply, 'ack', arrivedAt);
      return;
    }
    const started = performance.now();
    this.bus.publish(record, (error) => {
      this.observeBus(started, error);
      if (error === null) {
        connection.sendReply(reply, 'ack', arrivedAt);
      } else {
        // Not stored, so not acked: the car keeps the data and resends it.
        this.metrics.repliesDropped.inc({ reason: 'bus_error' });
      }
    });
  }

  /**
   * state[from, to): triples [Field number, valueStart, valueEnd], the value being
   * source[valueStart + base, valueEnd + base) (UTF-8); the record's time source[atStart, atEnd). Per
   * field the newest sample wins, not the last arrival: a resent older record (is_resend, delivery
   * policy "latest") still reaches dashboards as a record but does not roll state back. A value the
   * schema cannot say anything about (`{}`: a Value member newer than our proto; `null`: no value) never
   * replaces a known one.
   */
  private remember(state: Int32Array, from: number, to: number, source: Uint8Array, base: number, atSource: Uint8Array, atStart: number, atEnd: number, atMs: number): void {
    if (this.packed !== null || this.bytes === NO_BYTES) {
      // A car's first record sizes its field table: its records list much the same fields each time.
      if (this.fieldAtMs.length === 0) this.resizeFields((to - from) / 3);
      this.layout(this.roomForRecord(state, from, to));
    }
    const times = this.times;
    const sourceWords = wordsOf(source);
    let slot = -1;
    // Fields moved to this record's time slot, and from which slot (nearly always all from one, the car's
    // previous record's): the slots' counts are added once after the loop, not per field. Nothing reads
    // them in between (claimTime runs before the first field is moved; layout reads no counts).
    let gained = 0;
    let movedFrom = -1;
    let moved = 0;
    for (let i = from; i < to; i += 3) {
      const start = state[i + 1]! + base;
      const length = state[i + 2]! + base - start;
      // isStateValue (src/protocol/state-value.ts) on bytes: `{}` and `null` say nothing.
      if (length === 2 ? source[start] === 0x7b : length === 4 ? isNull(source, start) : length <= 0) continue;
      const field = state[i]!;
      const k = this.indexOf(field);
      if (k >= 0 && atMs < this.fieldAtMs[k]!) continue;
      if (slot < 0) slot = this.claimTime(atSource, atStart, atEnd, atSource === source ? sourceWords : null);
      let at: number;
      if (k < 0) {
        const room = roomFor(length);
        at = this.allocate(room);
        this.addField(field, atMs, at, length, room, slot);
        gained++;
      } else {
        const fields = this.fields;
        const f = k * FIELD_SPAN;
        const previous = fields[f + 4]!;
        if (previous !== slot) {
          if (previous !== movedFrom) {
            if (moved > 0) times[movedFrom * TIME_SPAN + 2]! -= moved;
            movedFrom = previous;
            moved = 0;
          }
          moved++;
          gained++;
          fields[f + 4] = slot;
        }
        this.fieldAtMs[k] = atMs;
        if (length <= fields[f + 3]!) {
          at = fields[f + 1]!;
        } else {
          // Outgrew its room: written after the used bytes (its old bytes are left until the next layout).
          const room = roomFor(length);
          at = this.allocate(room);
          fields[f + 1] = at;
          fields[f + 3] = room;
        }
        fields[f + 2] = length;
      }
      // Loops, not subarray + set: a value is a few dozen bytes, shorter than what a view and a C++ call cost to set up.
      const bytes = this.bytes;
      let n = 0;
      if (length >= WORD_COPY_MIN) {
        const words = this.words;
        for (; n + 4 <= length; n += 4) words.setUint32(at + n, sourceWords.getUint32(start + n, true), true);
      }
      for (; n < length; n++) bytes[at + n] = source[start + n]!;
    }
    if (gained > 0) times[slot * TIME_SPAN + 2]! += gained;
    if (moved > 0) times[movedFrom * TIME_SPAN + 2]! -= moved;
  }

  /** A record whose positions are character positions in its text (a non-ASCII row whose text was made): its values encoded anew. */
  private rememberText(batch: DecodedBatch, i: number, receivedAt: number): void {
    const text = batch.text(i);
    const base = batch.textBase(i);
    const from = batch.stateFrom(i);
    const to = batch.stateTo(i);
    const triples = batch.triples;
    const state = new Int32Array(to - from);
    const parts: string[] = [];
    let position = 0;
    for (let s = from; s < to; s += 3) {
      const value = text.slice(triples[s + 1]! - base, triples[s + 2]! - base);
      state[s - from] = triples[s]!;
      state[s - from + 1] = position;
      position += Buffer.byteLength(value);
      state[s - from + 2] = position;
      parts.push(value);
    }
    const createdAt = batch.createdAt(i);
    const at = createdAt ?? new Date(receivedAt).toISOString();
    const source = Buffer.from(parts.join('') + at);
    this.remember(state, 0, state.length, source, 0, source, position, source.length, createdAt !== null ? batch.createdAtMs(i) : receivedAt);
  }

  /** Bytes a record's values could take as new fields, and a time slot: what a car's first layout leaves room for. */
  private roomForRecord(state: Int32Array, from: number, to: number): number {
    let room = TIME_ROOM;
    for (let i = from; i < to; i += 3) room += roomFor(state[i + 2]! - state[i + 1]!);
    return room;
  }

  /** A time slot no field uses, holding source[start, end); a new one when all are in use. `words`: source as a DataView, if at hand. */
  private claimTime(source: Uint8Array, start: number, end: number, words: DataView | null): number {
    const times = this.times;
    let slot = 0;
    const slots = times.length / TIME_SPAN;
    while (slot < slots && times[slot * TIME_SPAN + 2] !== 0) slot++;
    if (slot === slots) times.push(this.allocate(TIME_ROOM), 0, 0);
    const bytes = this.bytes;
    const at = times[slot * TIME_SPAN]!;
    const length = end - start;
    let n = 0;
    if (words !== null) {
      const into = this.words;
      for (; n + 4 <= length; n += 4) into.setUint32(at + n, words.getUint32(start + n, true), true);
    }
    for (; n < length; n++) bytes[at + n] = source[start + n]!;
    times[slot * TIME_SPAN + 1] = length;
    return slot;
  }

  /** `room` bytes after the used ones (laid out anew when they run out); returns where they start. */
  private allocate(room: number): number {
    if (this.used + room > this.bytes.length) this.layout(room);
    const at = this.used;
    this.used += room;
    return at;
  }

  /**
   * The live values and time slots copied to the front of a new buffer, each given its room again, with
   * `room` bytes and a quarter more spare after them: from `bytes`, or from `packed` for a quiet car's
   * first record. Rare on a busy car (a value outgrowing its room, a new field); never per record.
   */
  private layout(room: number): void {
    const fields = this.fields;
    const end = this.fieldCount * FIELD_SPAN;
    const times = this.times;
    let live = 0;
    for (let f = 0; f < end; f += FIELD_SPAN) live += roomFor(fields[f + 2]!);
    live += (times.length / TIME_SPAN) * TIME_ROOM;
    const bytes = new Uint8Array(live + (live >> 2) + room + 64);
    const packed = this.packed;
    const old = this.bytes;
    let n = 0;
    for (let f = 0; f < end; f += FIELD_SPAN) {
      const start = fields[f + 1]!;
      const length = fields[f + 2]!;
      if (packed !== null) for (let m = 0; m < length; m++) bytes[n + m] = packed.charCodeAt(start + m);
      else for (let m = 0; m < length; m++) bytes[n + m] = old[start + m]!;
      fields[f + 1] = n;
      fields[f + 3] = roomFor(length);
      n += fields[f + 3]!;
    }
    for (let t = 0; t < times.length; t += TIME_SPAN) {
      const start = times[t]!;
      const length = times[t + 1]!;
      if (packed !== null) for (let m = 0; m < length; m++) bytes[n + m] = packed.charCodeAt(start + m);
      else for (let m = 0; m < length; m++) bytes[n + m] = old[start + m]!;
      times[t] = n;
      n += TIME_ROOM;
    }
    this.bytes = bytes;
    this.words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.used = n;
    this.packed = null;
  }

  /** The field's index (entry k is fields[k * FIELD_SPAN, ...) and fieldAtMs[k]), -1 when unknown. */
  private indexOf(field: number): number {
    const fields = this.fields;
    const count = this.fieldCount;
    const from = this.cursor < count ? this.cursor : 0;
    for (let k = from; k < count; k++) {
      if (fields[k * FIELD_SPAN] === field) {
        this.cursor = k + 1;
        return k;
      }
    }
    for (let k = 0; k < from; k++) {
      if (fields[k * FIELD_SPAN] === field) {
        this.cursor = k + 1;
        return k;
      }
    }
    return -1;
  }

  /** A new field's entry, the table grown (copied) when full: a busy car's fields are known after its first records. */
  private addField(field: number, atMs: number, start: number, length: number, room: number, slot: number): void {
    const k = this.fieldCount;
    if (k === this.fieldAtMs.length) this.resizeFields(k < 8 ? 16 : k * 2);
    const f = k * FIELD_SPAN;
    const fields = this.fields;
    fields[f] = field;
    fields[f + 1] = start;
    fields[f + 2] = length;
    fields[f + 3] = room;
    fields[f + 4] = slot;
    this.fieldAtMs[k] = atMs;
    this.fieldCount = k + 1;
  }

  /**
   * The field table with room for `capacity` fields, its entries copied: one ArrayBuffer, the atMs
   * doubles first (8-byte aligned), the Int32 numbers after them.
   */
  private resizeFields(capacity: number): void {
    const buffer = new ArrayBuffer(capacity * (8 + FIELD_SPAN * 4));
    const atMs = new Float64Array(buffer, 0, capacity);
    const fields = new Int32Array(buffer, capacity * 8, capacity * FIELD_SPAN);
    const count = this.fieldCount;
    atMs.set(this.fieldAtMs.subarray(0, count));
    fields.set(this.fields.subarray(0, count * FIELD_SPAN));
    this.fieldAtMs = atMs;
    this.fields = fields;
  }

  /** The last-known state, a new Map (snapshots, the NATS KV writer): its values do not change after. */
  get state(): Map<string, TimedValue> {
    const fields = this.fields;
    const fieldAtMs = this.fieldAtMs;
    const times = this.times;
    const packed = this.packed;
    const bytes = packed !== null ? Buffer.from(packed, 'latin1') : Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
    const state = new Map<string, TimedValue>();
    for (let k = 0; k < this.fieldCount; k++) {
      const f = k * FIELD_SPAN;
      const start = fields[f + 1]!;
      const t = fields[f + 4]! * TIME_SPAN;
      const at = times[t]!;
      state.set(stateFieldName(fields[f]!), { value: bytes.toString('utf8', start, start + fields[f + 2]!), at: bytes.toString('latin1', at, at + times[t + 1]!), atMs: fieldAtMs[k]! });
    }
    return state;
  }

  /**
   * Last-known state trimmed for a quiet car: its live values and times copied into one latin1 string of
   * their exact length (a busy car's bytes have room for values to grow, and values that moved left
   * behind), time slots no field uses dropped; the arrays copied at their exact length too (a grown
   * array keeps spare slots). Called by the registry's watchdog sweep for a car quiet since the previous
   * one, off the hot path; the values, their times and the "newest created_at wins" order are unchanged.
   * Returns whether there was work (a µs or two per car of 20 fields).
   */
  compactState(): boolean {
    if (this.packed !== null || this.bytes === NO_BYTES) return false;
    const fields = this.fields;
    const end = this.fieldCount * FIELD_SPAN;
    const times = this.times;
    const bytes = this.bytes;
    const parts: string[] = [];
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    let n = 0;
    for (let f = 0; f < end; f += FIELD_SPAN) {
      const start = fields[f + 1]!;
      const length = fields[f + 2]!;
      parts.push(view.toString('latin1', start, start + length));
      fields[f + 1] = n;
      n += length;
    }
    // Slots in use renumbered in order; a free one is dropped.
    const slotOf = new Array<number>(times.length / TIME_SPAN).fill(-1);
    const kept: number[] = [];
    for (let t = 0; t < times.length; t += TIME_SPAN) {
      if (times[t + 2] === 0) continue;
      slotOf[t / TIME_SPAN] = kept.length / TIME_SPAN;
      const start = times[t]!;
      parts.push(view.toString('latin1', start, start + times[t + 1]!));
      kept.push(n, times[t + 1]!, times[t + 2]!);
      n += times[t + 1]!;
    }
    for (let f = 0; f < end; f += FIELD_SPAN) fields[f + 4] = slotOf[fields[f + 4]!]!;
    // Array.prototype.join writes one flat (sequential) string.
    this.packed = parts.join('');
    this.bytes = NO_BYTES;
    this.words = NO_WORDS;
    this.used = 0;
    if (this.fieldAtMs.length !== this.fieldCount) this.resizeFields(this.fieldCount);
    this.times = kept;
    return true;
  }

  private observeBus(started: number, error: Error | null): void {
    this.busLatency.observe((performance.now() - started) / 1000);
    if (error !== null) this.metrics.busPublishErrors.inc({ bus: this.bus.name });
  }
}
