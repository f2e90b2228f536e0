import type { BusRecord, RecordBus } from '../bus/record-bus.js';
import { DecodedRecord } from './decoded-record.js';
import type { LastKnownValue, LocalVehicleState } from '../bus/vehicle-state.js';
import { stateFieldName } from '../decode/decode-batch.js';
import type { DecodedBatch } from '../decode/decoded-batch.js';
import { KIND_ERROR, KIND_RECORD } from '../decode/decode-task.js';
import type { HistogramCell } from '../metrics/hot-path.js';
import type { ActorMetrics } from './actor-metrics.js';
import type { VehicleConnection } from './vehicle-connection.js';
import { isStateValue } from '../protocol/state-value.js';
// The global `performance` is an accessor (10-20 ns a read on the per-record path); the module's binding is not.
import { performance } from 'node:perf_hooks';

/** Numbers per field in the actor's state (VehicleActor.spans): Field number, atMs, start, end, source slot. */
const FIELD_SPAN = 5;
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
   * Last-known state. Per field, [Field number, atMs, start, end, source] in `spans` (a double array:
   * unboxed, so updating a field writes numbers only). `source` is a slot of `sources`, pairs [text, at]:
   * the text of the record the value came from (its value is text[start, end)) and that record's time
   * (RFC 3339). A record folded in takes one slot for all the fields it updates, so it stores two
   * references, not two per field: a young string stored into the actor's old array costs a write
   * barrier and a remembered-set entry each (measured: 40 such stores per record cost ~0.4 µs more than
   * 2). `refs` counts the fields per slot; a slot no field uses any more is emptied, and taken by the
   * next record.
   * compactState swaps the record texts for one small string per car. Fields are found by number, their
   * names made only when the state is read. No Map and no object per field (bench/micro/idle-car-memory).
   */
  private spans: number[] = [];
  private sources: string[] = [];
  private refs: number[] = [];
  /** Where the next field is looked for: records list their fields in the same order each time. */
  private cursor = 0;
  lastSeenAt: number;
  stale = false;
  private nextSeq = 0;
  private nextToRelease = 0;
  private parked: Map<number, Parked> | null = null;
  private readonly busLatency: HistogramCell;
  /** Some state value (or its time) is still a slice of a record's text: compactState has work. */
  private stateLoose = false;
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
    // The state triples are read in the batch's index (no view made per record). Their values are kept
    // as slices of the record's text (its dashboard message, or the record JSON alone when no dashboard
    // watched the VIN), so the text is made only for a record with state.
    const stateFrom = batch.stateFrom(i);
    const stateTo = batch.stateTo(i);
    const createdAt = batch.createdAt(i);
    const createdAtMs = createdAt !== null ? batch.createdAtMs(i) : undefined;
    // createdAt, when set, is a slice of the same text: kept as state time, it is compacted with the values.
    if (stateTo > stateFrom) {
      const text = batch.text(i);
      const base = batch.textBase(i);
      if (createdAtMs !== undefined) this.remember(batch.triples, stateFrom, stateTo, text, base, createdAt!, createdAtMs);
      else this.remember(batch.triples, stateFrom, stateTo, text, base, new Date(receivedAt).toISOString(), receivedAt);
    }
    const clientVersion = connection.clientVersion;
    const bus = this.bus;
    // The txid made at once unless every listener reads it during publish or holds the record (DecodedRecord.txid).
    const publishNow = bus.publishNow !== undefined;
    const record = new DecodedRecord(this.vin, topic, receivedAt, batch, i, createdAt, createdAtMs, clientVersion !== '' ? clientVersion : undefined, this, !publishNow || bus.everyListenerHolds !== true);
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
   * state[from, to): triples [Field number, valueStart, valueEnd] into `text`, positions less `base`
   * (see DecodedBatch.state). Per field the newest sample wins, not the last arrival: a resent older
   * record (is_resend, delivery policy "latest") still reaches dashboards as a record but does not roll
   * state back. A value the schema cannot say anything about (`{}`: a Value member newer than our
   * proto; `null`: no value) never replaces a known one.
   */
  private remember(state: Int32Array, from: number, to: number, text: string, base: number, at: string, atMs: number): void {
    const spans = this.spans;
    const refs = this.refs;
    let slot = -1;
    for (let i = from; i < to; i += 3) {
      const start = state[i + 1]! - base;
      const end = state[i + 2]! - base;
      if (!isStateValue(text, start, end)) continue;
      const field = state[i]!;
      const k = this.indexOf(field);
      if (k < 0) {
        if (slot < 0) slot = this.claim(text, at);
        spans.push(field, atMs, start, end, slot);
        refs[slot]!++;
      } else if (atMs >= spans[k + 1]!) {
        if (slot < 0) slot = this.claim(text, at);
        const previous = spans[k + 4]!;
        if (previous !== slot) {
          // A slot no field uses any more lets go of its record's text at once.
          if (--refs[previous]! === 0) this.sources[2 * previous] = this.sources[2 * previous + 1] = '';
          refs[slot]!++;
          spans[k + 4] = slot;
        }
        spans[k + 1] = atMs;
        spans[k + 2] = start;
        spans[k + 3] = end;
      }
    }
    if (slot >= 0) this.stateLoose = true;
  }

  /** A slot of `sources` for a record's text and time: one no field uses any more, else a new one. */
  private claim(text: string, at: string): number {
    const refs = this.refs;
    let slot = 0;
    while (slot < refs.length && refs[slot] !== 0) slot++;
    if (slot === refs.length) refs.push(0);
    // The record's text itself is kept as the values' source (it stays alive until the registry's
    // sweep compacts the state: compactState).
    this.sources[2 * slot] = text;
    this.sources[2 * slot + 1] = at;
    return slot;
  }

  /** Index in `spans` of the field's entry, -1 when unknown. */
  private indexOf(field: number): number {
    const spans = this.spans;
    const count = spans.length;
    const from = this.cursor < count ? this.cursor : 0;
    for (let k = from; k < count; k += FIELD_SPAN) {
      if (spans[k] === field) {
        this.cursor = k + FIELD_SPAN;
        return k;
      }
    }
    for (let k = 0; k < from; k += FIELD_SPAN) {
      if (spans[k] === field) {
        this.cursor = k + FIELD_SPAN;
        return k;
      }
    }
    return -1;
  }

  /** The last-known state, a new Map (snapshots, the NATS KV writer): its values do not change after. */
  get state(): Map<string, TimedValue> {
    const spans = this.spans;
    const sources = this.sources;
    const state = new Map<string, TimedValue>();
    for (let k = 0; k < spans.length; k += FIELD_SPAN) {
      const slot = 2 * spans[k + 4]!;
      state.set(stateFieldName(spans[k]!), { value: sources[slot]!.slice(spans[k + 2], spans[k + 3]), at: sources[slot + 1]!, atMs: spans[k + 1]! });
    }
    return state;
  }

  /**
   * Last-known state as compact text: every value (and time) copied out of the record texts it was
   * sliced from into one new string holding only the current values, so a car's state no longer keeps
   * whole records alive (a 1-2 KB record per field source, for as long as the field is not updated; the
   * main cost of an idle car's state). One slot per distinct time, all on that string; the arrays are
   * copied at their exact length too (a growing array keeps up to half again as many slots). Called by
   * the registry's watchdog sweep, off the hot path; the values' text and the "newest created_at wins"
   * order are unchanged. Returns whether there was work (a few µs per car of 20 fields).
   */
  compactState(): boolean {
    if (!this.stateLoose) return false;
    this.stateLoose = false;
    const spans = this.spans;
    const sources = this.sources;
    const parts: string[] = [];
    // Old slot -> new slot (-1: not yet given one); a time is copied once per slot.
    const slotOf = new Array<number>(this.refs.length).fill(-1);
    const times: string[] = [];
    for (let k = 0; k < spans.length; k += FIELD_SPAN) {
      parts.push(sources[2 * spans[k + 4]!]!.slice(spans[k + 2], spans[k + 3]));
    }
    let timesAt = 0;
    for (const part of parts) timesAt += part.length;
    for (let k = 0; k < spans.length; k += FIELD_SPAN) {
      const old = spans[k + 4]!;
      if (slotOf[old] === -1) {
        slotOf[old] = times.length;
        times.push(sources[2 * old + 1]!);
      }
    }
    // Array.prototype.join writes one flat (sequential) string; slices of it pin only it.
    const flat = parts.concat(times).join('');
    const compactSources: string[] = [];
    for (const time of times) {
      compactSources.push(flat, flat.slice(timesAt, timesAt + time.length));
      timesAt += time.length;
    }
    const compactSpans: number[] = [];
    const refs = new Array<number>(times.length).fill(0);
    let position = 0;
    for (let k = 0; k < spans.length; k += FIELD_SPAN) {
      const length = spans[k + 3]! - spans[k + 2]!;
      const slot = slotOf[spans[k + 4]!]!;
      compactSpans.push(spans[k]!, spans[k + 1]!, position, position + length, slot);
      refs[slot]!++;
      position += length;
    }
    // At their exact length (a grown array keeps spare slots).
    this.spans = compactSpans.slice();
    this.sources = compactSources.slice();
    this.refs = refs;
    return true;
  }

  private observeBus(started: number, error: Error | null): void {
    this.busLatency.observe((performance.now() - started) / 1000);
    if (error !== null) this.metrics.busPublishErrors.inc({ bus: this.bus.name });
  }
}
