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
  /** The record's protobuf bytes as the car sent them (unknown fields preserved); null when server-made without bytes. */
  payload: Uint8Array | null;
}

export type SafeCallback = (error: Error | null) => void;
export type RecordListener = (record: BusRecord) => void;

export interface RecordBus {
  readonly name: string;
  /** Hand a record to the bus; `onSafe` is called exactly once, with an error when the record was not stored. */
  publish(record: BusRecord, onSafe: SafeCallback): void;
  /** Every record published from now on, in publish order per VIN. Returns an unsubscribe function. */
  subscribe(listener: RecordListener): () => void;
  close(): Promise<void>;
}
