import type { LocalVehicleState } from './vehicle-state.js';

/**
 * The one way records leave a vehicle actor. Implementations decide what "safe" means: the in-process
 * bus is safe as soon as every local subscriber has seen the record; a durable bus is safe when its
 * store confirms. The actor acks the car only from `onSafe`, so durability slots in without the actor
 * knowing which bus it has.
 */
export interface BusRecord {
  vin: string;
  topic: string;
  txid: string;
  /** When the frame reached the server, epoch milliseconds. */
  receivedAt: number;
  /** Canonical protobuf JSON of the normalised record; null for opaque (unknown-topic) payloads. */
  recordJson: string | null;
  /** The dashboard `record` message, serialised once for every dashboard that watches this VIN. */
  dashboardMessage: string;
  /**
   * The same dashboard message as UTF-8 bytes (a view into the decode stage's output buffer), when the
   * decode stage wrote one: what the hub hands uWS, which sends bytes without another copy to UTF-8.
   */
  dashboardBytes?: Uint8Array;
  /**
   * The record's protobuf bytes as the car sent them (unknown fields preserved); null when server-made
   * without bytes. With the in-process bus it is a view of a buffer the decode pool reuses for the next
   * lone frame (reuseInlineFrames): read it during publish, copy it to keep it.
   */
  payload: Uint8Array | null;
  /**
   * The normalised record as protobuf (certificate VIN, converted Location, ...; unknown fields kept),
   * when the decode workers were asked for it. A durable bus stores this, or the JSON, never `payload`.
   */
  normalisedPayload?: Uint8Array;
  /**
   * V records decoded on this instance without `samples`: every datum as a triple [Field number,
   * valueStart, valueEnd], the Value's canonical JSON being datumText[valueStart - datumBase,
   * valueEnd - datumBase) (a view of the decode batch's index, read in place). Consumers
   * read values from here rather than scanning recordJson (history does). Absent on records read back
   * from NATS.
   */
  datums?: Int32Array;
  datumText?: string;
  /** What the datums' positions exceed positions in datumText by (0 when absent). */
  datumBase?: number;
  /**
   * V records decoded on this instance by a decode worker: the followed signals it read (SignalSample.readRow),
   * SAMPLE_VALUES values from `sampleAt` in `samples` (one array for the record's whole decode batch).
   * The recent history reads them instead of parsing the values again. Absent: it reads `datums`.
   */
  samples?: Float64Array;
  sampleAt?: number;
  /** RFC 3339 of the record's own created_at (null: none), when the decode stage gave it. */
  createdAt?: string | null;
  /**
   * The same created_at as epoch ms, parsed by the decode worker (sampleTime: 0 when it does not
   * parse), when `createdAt` is a string and the record was decoded on this instance: consumers need
   * not parse the text again.
   */
  createdAtMs?: number;
  /** The `Version` header of the car's connection, when it sent one (the reference adds it to record metadata). */
  clientVersion?: string;
  /**
   * Position in the durable stream, when the bus has one (set by the bus before listeners see the
   * record). Strictly increasing per VIN in delivery order: dashboards join snapshots, history and live
   * records by it, without relying on clocks.
   */
  streamSeq?: number;
  /**
   * The actor that published it (records of this instance only): a bus that mirrors last-known state
   * to a shared store reads the state from here, without knowing the actor registry.
   */
  origin?: LocalVehicleState;
  /**
   * Present on records whose decode buffer is recycled once every holder is done with it (DecodePool's
   * recycling: a worker then writes other records into it). A subscriber that reads the record, or a
   * view it gave, after its listener returns calls hold() in the listener and letGo() on what it
   * returned once done (exactly once), and subscribes with `{ holdsRecords: true }`. Keep the returned
   * hold rather than the record when only views are kept (it is the record's batch, alive anyway: a
   * record kept per entry outlives young-generation GCs).
   */
  hold?(): RecordHold;
}

/** What a BusRecord.hold returned: let go of once, when the record and its views are read no more. */
export interface RecordHold {
  letGo(): void;
}

export interface SubscribeOptions {
  /**
   * The listener is done with a record and its views when it returns, except for records it keeps by
   * hold() until letGo() (BusRecord.hold). A listener subscribed without it may keep anything, so its
   * bus recycles nothing (InProcessBus.everyListenerHolds).
   */
  holdsRecords?: boolean;
}

export type SafeCallback = (error: Error | null) => void;
export type RecordListener = (record: BusRecord) => void;

export interface RecordBus {
  readonly name: string;
  /** Hand a record to the bus; `onSafe` is called exactly once, with an error when the record was not stored. */
  publish(record: BusRecord, onSafe: SafeCallback): void;
  /**
   * Present on a bus whose records are safe as soon as it returns (the in-process bus): publish without
   * a callback, so the hot path allocates no closure per record. Never fails.
   */
  publishNow?(record: BusRecord): void;
  /**
   * True on a bus whose every listener reads a record during publish or holds it (SubscribeOptions
   * holdsRecords): what a record reads lazily from buffers reused after the publish may then stay lazy.
   */
  readonly everyListenerHolds?: boolean;
  /**
   * Records from now on, in publish order per VIN: every record published by this instance, plus records
   * published by other instances for the VINs this instance watches. Returns an unsubscribe function.
   */
  subscribe(listener: RecordListener, options?: SubscribeOptions): () => void;
  /**
   * This instance wants records of `vin` even when the car is connected to another instance (a local
   * dashboard watches it). Reference-counted by the caller: one watch per unwatch. A no-op in one process.
   */
  watch(vin: string): void;
  unwatch(vin: string): void;
  close(): Promise<void>;
  /**
   * History, on a bus that keeps it: records of `vin` stored at or after `sinceMs`, in order, until the
   * replay has caught up; `onRecord` returning false stops early. Resolves with the count. Absent when
   * the bus keeps no history (the in-process bus).
   */
  replay?(vin: string, sinceMs: number, onRecord: (record: BusRecord) => boolean | void): Promise<number>;
}

/** A car's last-known state as dashboards receive it in a snapshot. */
export interface VehicleSnapshot {
  vin: string;
  connected: boolean;
  /** Field name -> canonical JSON text of the Value and when it was sampled (RFC 3339). */
  state: Map<string, { value: string; at: string }>;
  /** Epoch ms the car was last heard from, when known. */
  lastSeenAt: number | null;
  stale: boolean;
  /**
   * When set: every record of this VIN with `streamSeq` <= coveredSeq is folded into `state`, later ones
   * are not. Dashboards drop live records at or below it. Without it, `lastSeenAt` (the receivedAt of the
   * newest record folded in) is the cut.
   */
  coveredSeq?: number;
}

/**
 * Where snapshots come from: the local actors in one process, a shared store (JetStream KV) when
 * instances share work. Async because a shared store is remote.
 */
export interface SnapshotSource {
  snapshot(vin: string): Promise<VehicleSnapshot>;
}
