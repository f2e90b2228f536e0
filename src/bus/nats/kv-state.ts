import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { NatsMetrics } from './nats-metrics.js';
import type { SnapshotSource, VehicleSnapshot } from '../record-bus.js';
import type { LocalVehicleState, LocalVehicles } from '../vehicle-state.js';
import { isStateValue, sampleTime } from '../../protocol/state-value.js';
import { kvKey } from './nats-names.js';
import { isWrongLastSequence } from './nats-errors.js';
import { isObject, kindOf, objectAt, parseJson } from '../../safety/json-reader.js';

export interface FieldValue {
  value: string;
  at: string;
}

/** What one VIN's KV entry holds: its last-known state across every instance the car has used. */
export interface StoredState {
  lastSeenAt: number | null;
  state: Record<string, FieldValue>;
  /**
   * Milliseconds between reading the actor's state and sending this write: every record stored before
   * (entry time - foldLagMs) is folded in. Readers catch up from the stream from there.
   */
  foldLagMs?: number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * A KV entry as written by any instance. An entry that is not a JSON object throws; a field whose
 * value is not {value, at} strings is left out and named to `onBadField`, the other fields kept.
 */
export function parseStoredState(bytes: Uint8Array, onBadField: (problem: string) => void = () => {}): StoredState {
  const parsed = objectAt(parseJson(fromUtf8.decode(bytes)), 'stored state');
  const state: Record<string, FieldValue> = {};
  if (parsed.state !== undefined && parsed.state !== null) {
    for (const [field, entry] of Object.entries(objectAt(parsed.state, 'stored state.state'))) {
      if (isObject(entry) && typeof entry.value === 'string' && typeof entry.at === 'string') state[field] = { value: entry.value, at: entry.at };
      else onBadField(`stored state.state.${field}: {value, at} strings expected, got ${kindOf(entry)}`);
    }
  }
  return {
    lastSeenAt: typeof parsed.lastSeenAt === 'number' ? parsed.lastSeenAt : null,
    state,
    ...(typeof parsed.foldLagMs === 'number' ? { foldLagMs: parsed.foldLagMs } : {}),
  };
}

function atOf(field: FieldValue): number {
  const ms = Date.parse(field.at);
  return Number.isNaN(ms) ? 0 : ms;
}

/**
 * Field by field, the later sample wins; a tie goes to `local` (it was written by the car's own
 * instance just now). Used both when writing (another instance may have written since) and when
 * reading (this instance's actor may hold samples not yet written).
 */
export function mergeState(base: StoredState | null, local: { state: Iterable<[string, FieldValue]>; lastSeenAt: number | null }): StoredState {
  const state: Record<string, FieldValue> = { ...(base?.state ?? {}) };
  for (const [field, value] of local.state) {
    const known = state[field];
    if (known === undefined || atOf(value) >= atOf(known)) state[field] = { value: value.value, at: value.at };
  }
  const lastSeenAt =
    base?.lastSeenAt == null ? local.lastSeenAt : local.lastSeenAt == null ? base.lastSeenAt : Math.max(base.lastSeenAt, local.lastSeenAt);
  return { lastSeenAt, state };
}

export interface KvStateWriterOptions {
  kv: KV;
  flushMs: number;
  metrics: NatsMetrics;
  logger: Logger;
}

/**
 * Writes the owning instance's last-known state of each car to KV, coalesced: a car is marked dirty
 * by its stored records and written at most once per flush interval, so KV load follows the number of
 * active cars, not the record rate. Writes are compare-and-set against the revision this instance last
 * saw; on a conflict (another instance wrote) it reads, merges and retries.
 */
export class KvStateWriter {
  /** Cars with stored records not yet written, each with the state its record was published from. */
  private dirty = new Map<string, LocalVehicleState>();
  private readonly revisions = new Map<string, { revision: number; stored: StoredState }>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | null = null;

  constructor(private readonly options: KvStateWriterOptions) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  /** `local`: the publishing actor's state (read at the flush, so the write holds the newest state). */
  markDirty(vin: string, local: LocalVehicleState): void {
    this.dirty.set(vin, local);
  }

  /** Write every dirty car now; concurrent calls share one pass. */
  flush(): Promise<void> {
    this.flushing ??= this.writeDirty().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }

  private async writeDirty(): Promise<void> {
    if (this.dirty.size === 0) return;
    const cars = [...this.dirty];
    this.dirty = new Map();
    // A few at a time: bounded concurrency keeps one slow flush from flooding NATS.
    for (let i = 0; i < cars.length; i += 32) {
      await Promise.all(cars.slice(i, i + 32).map(([vin, local]) => this.write(vin, local)));
    }
  }

  private async write(vin: string, local: LocalVehicleState): Promise<void> {
    const readAt = performance.now();
    const key = kvKey(vin);
    const { kv, metrics } = this.options;
    let known = this.revisions.get(vin);
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        if (known === undefined) {
          const entry = await kv.get(key);
          known =
            entry === null || entry.operation !== 'PUT'
              ? { revision: entry?.revision ?? 0, stored: { lastSeenAt: null, state: {} } }
              : { revision: entry.revision, stored: parseStoredState(entry.value, (problem) => this.options.logger.warn({ vin, problem }, 'nats_state_field_unreadable')) };
        }
        const next = mergeState(known.stored, local);
        const bytes = utf8.encode(JSON.stringify({ ...next, foldLagMs: Math.ceil(performance.now() - readAt) }));
        const revision = known.revision === 0 ? await kv.create(key, bytes) : await kv.update(key, bytes, known.revision);
        this.revisions.set(vin, { revision, stored: next });
        metrics.natsStateWrites.inc({ result: 'ok' });
        return;
      } catch (error) {
        known = undefined;
        if (isWrongLastSequence(error)) {
          metrics.natsStateWrites.inc({ result: 'conflict' });
          continue;
        }
        metrics.natsStateWrites.inc({ result: 'error' });
        this.revisions.delete(vin);
        // Written again at the next flush: the car is still dirty as far as KV knows.
        this.dirty.set(vin, local);
        this.options.logger.warn({ err: error, vin }, 'nats_state_write_failed');
        return;
      }
    }
    this.revisions.delete(vin);
    this.dirty.set(vin, local);
  }
}

/** A record read back from the stream, as far as folding it into state goes. */
export interface FoldableRecord {
  receivedAt: number;
  streamSeq?: number;
  state: Array<{ field: string; value: string }> | null;
  createdAt: string | null;
}

export interface KvSnapshotSourceOptions {
  state: KV;
  connectivity: { connectedAnywhere(vin: string): Promise<boolean> };
  /** This instance's cars: a car connected here says whether it is stale. */
  local: LocalVehicles;
  /** Waits until a watched VIN's live records flow, so the snapshot does not open a gap before them. */
  watchReady: (vin: string) => Promise<void>;
  /** The VIN's stored records since a time (the stream's clock), in stream order. */
  readSince: (vin: string, sinceMs: number, onRecord: (record: FoldableRecord) => void) => Promise<number>;
  /** How often KV is written: with no KV entry yet, the stream is read back this far (times three). */
  flushMs: number;
  staleAfterMs: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Margin on the time a KV write says it covers: the last write round trip, and clock steps between the
 * servers that stamped the KV entry and the stream records. Reading back a little more is harmless.
 */
export const CATCH_UP_MARGIN_MS = 2000;

/**
 * Snapshots on any instance, exact to a stream sequence: the KV entry (written at most once per flush
 * interval by the car's instance) brought up to date with the stream records stored since that write.
 * The result holds every record up to `coveredSeq` and none after, so a dashboard joins it to live
 * records by sequence: no gap, no duplicate. The local actor is not merged in: it also holds records
 * JetStream has not confirmed yet, which would reach the dashboard again once stored.
 */
export class KvSnapshotSource implements SnapshotSource {
  constructor(private readonly options: KvSnapshotSourceOptions) {}

  async snapshot(vin: string): Promise<VehicleSnapshot> {
    const { state: kv, connectivity, local: localVehicles, watchReady, readSince, flushMs, staleAfterMs } = this.options;
    const now = this.options.now ?? Date.now;
    // Live records stored from here on reach this instance; everything before is in KV or read below.
    await watchReady(vin);
    const [entry, connectedAnywhere] = await Promise.all([kv.get(kvKey(vin)), connectivity.connectedAnywhere(vin)]);
    const stored =
      entry === null || entry.operation !== 'PUT' ? null : parseStoredState(entry.value, (problem) => this.options.logger.warn({ vin, problem }, 'nats_state_field_unreadable'));
    const catchUpFrom =
      entry !== null && stored !== null
        ? entry.created.getTime() - (stored.foldLagMs ?? flushMs) - CATCH_UP_MARGIN_MS
        : now() - 3 * flushMs - CATCH_UP_MARGIN_MS;
    const state = new Map(Object.entries(stored?.state ?? {}));
    let coveredSeq = 0;
    let newestFolded: number | null = null;
    await readSince(vin, catchUpFrom, (record) => {
      if (record.streamSeq !== undefined) coveredSeq = record.streamSeq;
      newestFolded = record.receivedAt;
      if (record.state === null) return;
      // The same rule the car's actor applies: per field the newest sample wins (a resent older
      // record does not roll it back), and a value we cannot decode replaces nothing.
      const at = record.createdAt ?? new Date(record.receivedAt).toISOString();
      const atMs = record.createdAt === null ? record.receivedAt : sampleTime(at);
      for (const { field, value } of record.state) {
        if (!isStateValue(value)) continue;
        const known = state.get(field);
        if (known === undefined || atMs >= atOf(known)) state.set(field, { value, at });
      }
    });
    const lastSeenAt = newestFolded ?? stored?.lastSeenAt ?? null;
    const local = localVehicles.get(vin);
    return {
      vin,
      connected: connectedAnywhere || (local?.connected ?? false),
      state,
      lastSeenAt,
      stale: local?.connected === true ? local.stale : lastSeenAt !== null && now() - lastSeenAt >= staleAfterMs,
      coveredSeq,
    };
  }
}
