import type { BusRecord, RecordHold } from '../bus/record-bus.js';
import type { LocalVehicleState } from '../bus/vehicle-state.js';
import type { DecodedBatch } from '../decode/decoded-batch.js';

/**
 * A car's record as its actor publishes it: row `index` of its decode batch. What every record needs is
 * a field; what only some consumers read (the record JSON, the dashboard message and bytes, the payload
 * views, the located datums) is read from the batch when first asked for. In the default setup
 * (in-process bus, dashboards reading `dashboardBytes`, the history reading the decode stage's samples)
 * a record nobody watches then costs no string slice and no typed-array view beyond what the actor's
 * last-known state keeps. One class, so the bus's subscribers see one shape.
 *
 * The payload getters read the batch's frames: like `BusRecord.payload` itself, they are for use while
 * the record is published (the pool may reuse the frames buffer afterwards). The text getters read the
 * batch's result buffer, which the pool may recycle once the turn is over and every holder let go
 * (hold / letGo).
 */
export class DecodedRecord implements BusRecord {
  readonly vin: string;
  readonly topic: string;
  readonly receivedAt: number;
  readonly samples: Float64Array | undefined;
  readonly sampleAt: number;
  /** The created_at in epoch ms (0 when it did not parse); undefined when the record has none. */
  readonly createdAtMs: number | undefined;
  readonly clientVersion: string | undefined;
  streamSeq: number | undefined = undefined;
  origin: LocalVehicleState | undefined;
  private readonly batch: DecodedBatch;
  private readonly index: number;
  /**
   * The txid once made (null: not yet). Made when first read: in one process with no consumer of it
   * (no dashboard, no NATS, no MQTT) nobody does, and a latin1 string per record is saved. Read from the
   * batch's frames, which the pool reuses after the publish: `keep` makes it at once (a bus whose
   * listeners may keep records without saying so, a durable bus), hold() makes it before the record
   * outlives its listener.
   */
  private txidText: string | null = null;
  /**
   * The created_at's RFC 3339 text once sliced (undefined: not yet). Made when first read: the actor's
   * state copies its bytes and the history reads createdAtMs, so a record nobody reads makes no text.
   */
  private createdAtText: string | null | undefined = undefined;
  /** The record JSON once sliced (undefined: not yet). */
  private json: string | null | undefined = undefined;
  /** The dashboard message once read or set (undefined: not yet). */
  private message: string | undefined = undefined;
  /** The dashboard message's bytes once viewed (null: not yet; undefined: the decode stage wrote none). */
  private bytes: Uint8Array | undefined | null = null;

  constructor(
    vin: string,
    topic: string,
    receivedAt: number,
    batch: DecodedBatch,
    index: number,
    createdAtMs: number | undefined,
    clientVersion: string | undefined,
    origin: LocalVehicleState,
    keep: boolean,
  ) {
    this.vin = vin;
    this.topic = topic;
    this.receivedAt = receivedAt;
    this.batch = batch;
    this.index = index;
    const sampleAt = batch.sampleAt(index);
    this.samples = sampleAt >= 0 ? batch.samples : undefined;
    this.sampleAt = sampleAt;
    this.createdAtMs = createdAtMs;
    this.clientVersion = clientVersion;
    this.origin = origin;
    if (keep) {
      this.txidText = batch.txid(index);
      // Values only (see recordJson): its JSON is read from the frames, which outlive only the publish.
      if (batch.valuesOnly(index)) this.json = batch.recordJson(index, vin);
    }
    if (createdAtMs === undefined) this.createdAtText = null;
    else if (keep) this.createdAtText = batch.createdAt(index);
  }

  /** The txid as text ('' when the envelope was unreadable); read during publish, or after hold(). */
  get txid(): string {
    const txid = this.txidText;
    return txid !== null ? txid : (this.txidText = this.batch.txid(this.index));
  }

  /** RFC 3339 of the record's own created_at; null when it has none. Read during publish, or after hold(). */
  get createdAt(): string | null {
    const createdAt = this.createdAtText;
    return createdAt !== undefined ? createdAt : (this.createdAtText = this.batch.createdAt(this.index));
  }

  /**
   * A record decoded values only (nothing read its text at submit) has its JSON made from its payload
   * when first asked for: during publish, or at hold() (the payload's frames are reused afterwards).
   */
  get recordJson(): string | null {
    const json = this.json;
    return json !== undefined ? json : (this.json = this.batch.recordJson(this.index, this.vin));
  }

  /** '' when no dashboard watched the VIN at submit time: the hub builds it (dashboardMessageOf) if one does by now. */
  get dashboardMessage(): string {
    const message = this.message;
    if (message !== undefined) return message;
    return (this.message = this.batch.hasDashboardMessage(this.index) ? this.batch.text(this.index) : '');
  }

  set dashboardMessage(message: string) {
    this.message = message;
  }

  get dashboardBytes(): Uint8Array | undefined {
    // One view however often it is asked for (the hub asks twice).
    const bytes = this.bytes;
    return bytes !== null ? bytes : (this.bytes = this.batch.dashboardBytes(this.index));
  }

  get payload(): Uint8Array {
    return this.batch.payload(this.index);
  }

  get normalisedPayload(): Uint8Array | undefined {
    return this.batch.normalisedPayload(this.index);
  }

  /** Only when the decode stage read no samples (BusRecord.datums): the history then reads these. */
  get datums(): Int32Array | undefined {
    if (this.sampleAt >= 0) return undefined;
    const batch = this.batch;
    // Its positions are read in the text: made first (a non-ASCII row's positions are rewritten then).
    batch.text(this.index);
    const from = batch.stateFrom(this.index);
    const to = batch.stateTo(this.index);
    return to > from ? batch.triples.subarray(from, to) : undefined;
  }

  get datumText(): string | undefined {
    return this.sampleAt < 0 ? this.batch.text(this.index) : undefined;
  }

  get datumBase(): number {
    return this.batch.textBase(this.index);
  }

  /** Kept past the listener: the batch's result buffer is not recycled until the batch is let go of (BusRecord.hold). */
  hold(): RecordHold {
    // The frames it is read from are reused once the publish is over; the result buffer is held.
    if (this.txidText === null) this.txidText = this.batch.txid(this.index);
    if (this.json === undefined && this.batch.valuesOnly(this.index)) this.json = this.batch.recordJson(this.index, this.vin);
    this.batch.hold();
    return this.batch;
  }
}
