import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { NatsMetrics } from './nats-metrics.js';
import type { BusRecord, RecordBus, RecordListener, SafeCallback } from '../record-bus.js';
import { vinSubjects } from './nats-names.js';
import {
  HEADER,
  readStoredMessage,
  storedRecordOf,
  toStreamMessage,
  type RecordEncoding,
  type StoredMessage,
  type StoredRecord,
  type StoredRecordDecoder,
} from './stream-record.js';
import { isTimeout } from './nats-errors.js';

/** Heartbeat interval of the consumers that follow watched VINs (see follow()). */
const FOLLOW_HEARTBEAT_MS = 5000;

export interface NatsRecordBusOptions {
  js: JetStreamClient;
  stream: string;
  subjectPrefix: string;
  encoding: RecordEncoding;
  instanceId: string;
  /** Unconfirmed publishes allowed at once; past it a record is refused immediately. */
  maxPending: number;
  publishTimeoutMs: number;
  /** Decodes the bodies of records read back from the stream (the decode stage's worker pool). */
  decoder: StoredRecordDecoder;
  metrics: NatsMetrics;
  logger: Logger;
  /** Told about every record this instance stored (the last-known state writer listens). */
  onStored?: (record: BusRecord) => void;
  /** Runs when the bus closes: the rest of the NATS scale-out winds down with it. */
  onClose?: () => Promise<void>;
}

export class BusOverloadedError extends Error {
  constructor(limit: number) {
    super(`NATS_MAX_PENDING_PUBLISHES (${limit}) records already wait for JetStream; record refused`);
    this.name = 'BusOverloadedError';
  }
}

export class BusClosedError extends Error {
  constructor() {
    super('the NATS bus is closed');
    this.name = 'BusClosedError';
  }
}

interface Follow {
  count: number;
  stopped: boolean;
  messages: ConsumerMessages | null;
  /** Settles once records stored from now on will reach this instance. */
  ready: Promise<void>;
}

/**
 * The scale-out bus: a record is safe when JetStream has stored it, so the car's ack means the record
 * is durable. Local listeners get records after the store confirms, in confirmation order (which is
 * stream order, hence per-VIN order); records of watched VINs stored by other instances arrive through
 * one ordered consumer per watched VIN.
 */
export class NatsRecordBus implements RecordBus {
  readonly name = 'nats';
  private listeners: RecordListener[] = [];
  private pending = 0;
  private closed = false;
  private readonly follows = new Map<string, Follow>();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: NatsRecordBusOptions) {}

  get pendingPublishes(): number {
    return this.pending;
  }

  publish(record: BusRecord, onSafe: SafeCallback): void {
    const { metrics } = this.options;
    if (this.closed) {
      metrics.natsPublishFailures.inc({ reason: 'closed' });
      onSafe(new BusClosedError());
      return;
    }
    // A bounded queue: when NATS is down or slow, cars are told "not stored" at once instead of this
    // process holding their records in memory.
    if (this.pending >= this.options.maxPending) {
      metrics.natsPublishFailures.inc({ reason: 'overloaded' });
      onSafe(new BusOverloadedError(this.options.maxPending));
      return;
    }
    let message;
    try {
      message = toStreamMessage(record, this.options.subjectPrefix, this.options.encoding, this.options.instanceId);
    } catch (error) {
      metrics.natsPublishFailures.inc({ reason: 'error' });
      onSafe(error as Error);
      return;
    }
    this.pending++;
    metrics.natsPendingPublishes.set(this.pending);
    this.options.js
      .publish(message.subject, message.data, {
        msgID: message.msgId,
        headers: message.headers,
        timeout: this.options.publishTimeoutMs,
      })
      .then(
        (ack) => {
          this.settled();
          if (ack.duplicate) {
            // Stored before (a resend, or a frame whose ack the car missed): listeners saw it then.
            metrics.natsPublishDuplicates.inc();
          } else {
            record.streamSeq = ack.seq;
            this.deliver(record);
            this.options.onStored?.(record);
          }
          onSafe(null);
        },
        (error: Error) => {
          this.settled();
          metrics.natsPublishFailures.inc({ reason: isTimeout(error) ? 'timeout' : 'error' });
          onSafe(error);
        },
      );
  }

  subscribe(listener: RecordListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  watch(vin: string): void {
    const existing = this.follows.get(vin);
    if (existing !== undefined) {
      existing.count++;
      return;
    }
    const follow: Follow = { count: 1, stopped: false, messages: null, ready: Promise.resolve() };
    follow.ready = new Promise((resolve) => {
      void this.follow(vin, follow, resolve);
    });
    this.follows.set(vin, follow);
    this.options.metrics.natsWatchedVehicles.set(this.follows.size);
  }

  unwatch(vin: string): void {
    const follow = this.follows.get(vin);
    if (follow === undefined) return;
    if (--follow.count > 0) return;
    follow.stopped = true;
    follow.messages?.stop();
    this.follows.delete(vin);
    this.options.metrics.natsWatchedVehicles.set(this.follows.size);
  }

  /**
   * Resolves once records of a watched VIN stored from now on will be delivered here (the consumer
   * exists). A snapshot taken after this misses nothing that live records would not bring.
   */
  watchReady(vin: string): Promise<void> {
    return this.follows.get(vin)?.ready ?? Promise.resolve();
  }

  /**
   * History: every record of `vin` stored at or after `sinceMs` (the stream's clock), in stream order,
   * until the replay has caught up with the stream; `onRecord` returning false stops it early. Records
   * stored while it runs may also arrive live: a caller that needs "history, then live, nothing twice"
   * holds live records during the replay and drops those at or below the last replayed `streamSeq`.
   */
  async replay(vin: string, sinceMs: number, onRecord: (record: StoredRecord) => boolean | void): Promise<number> {
    const { metrics } = this.options;
    try {
      const count = await this.readSince(vin, sinceMs, onRecord);
      metrics.replayRequests.inc({ result: 'ok' });
      metrics.replayRecords.inc(count);
      return count;
    } catch (error) {
      metrics.replayRequests.inc({ result: 'error' });
      throw error;
    }
  }

  /** The replay without its metrics: snapshots read the stream the same way to catch up with KV. */
  async readSince(vin: string, sinceMs: number, onRecord: (record: StoredRecord) => boolean | void): Promise<number> {
    const { js, stream, subjectPrefix } = this.options;
    let count = 0;
    const consumer = await js.consumers.get(stream, {
      filter_subjects: vinSubjects(subjectPrefix, vin),
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(Math.max(0, sinceMs)).toISOString(),
    });
    try {
      // The consumer knows at creation how much matches: nothing to read costs no fetch wait.
      if ((await consumer.info(true)).num_pending === 0) return 0;
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 256, expires: 1000 });
        let got = 0;
        let done = false;
        const messages: JsMsg[] = [];
        for await (const message of batch) {
          got++;
          messages.push(message);
          if (message.info.pending === 0) break;
        }
        // One decode task per fetched batch; records handed over in stream order.
        for (const record of await this.recordsOf(messages)) {
          count++;
          if (onRecord(record) === false) {
            done = true;
            break;
          }
        }
        if (messages.length > 0 && messages[messages.length - 1]!.info.pending === 0) done = true;
        if (done || got === 0) break;
      }
      return count;
    } finally {
      // Ordered consumers otherwise linger on the server for minutes after use.
      consumer.delete().catch(() => undefined);
    }
  }

  /** Resolves when no publish waits for JetStream (shutdown waits for this before closing NATS). */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * The client moved to another server (the one it was on died): a follower's ordered consumer may have
   * lived there, and the client's own missed-heartbeat recovery was seen to take a minute. Start every
   * follower over at once from the last sequence it saw (its loop makes the fresh consumer).
   */
  restartFollows(): void {
    for (const follow of this.follows.values()) {
      if (!follow.stopped) follow.messages?.stop();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const vin of [...this.follows.keys()]) {
      const follow = this.follows.get(vin);
      if (follow) follow.count = 1;
      this.unwatch(vin);
    }
    await this.whenIdle();
    this.listeners = [];
    await this.options.onClose?.();
  }

  private settled(): void {
    this.pending--;
    this.options.metrics.natsPendingPublishes.set(this.pending);
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private deliver(record: BusRecord): void {
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!(record);
      } catch (error) {
        this.options.logger.error({ err: error }, 'bus_listener_failed');
      }
    }
  }

  /**
   * Stored messages back into records, their bodies decoded by the decode stage (off the main thread,
   * like a car's frames), in the order given. A message this project cannot read is logged and skipped.
   */
  private async recordsOf(messages: JsMsg[]): Promise<StoredRecord[]> {
    const read: Array<{ message: JsMsg; stored: StoredMessage }> = [];
    for (const message of messages) {
      try {
        read.push({ message, stored: readStoredMessage(message.data, message.headers) });
      } catch (error) {
        this.unreadable(message, error);
      }
    }
    if (read.length === 0) return [];
    const outcomes = await this.options.decoder.decodeStored(read.map((each) => each.stored.body));
    const records: StoredRecord[] = [];
    for (let i = 0; i < read.length; i++) {
      const { message, stored } = read[i]!;
      const outcome = outcomes[i]!; // decodeStored answers every body, in order
      if ('error' in outcome) {
        if (outcome.internal === true) {
          // A bug of ours, not a record someone else wrote: its own series and an error log.
          this.options.metrics.decodeInternalErrors.inc({ stage: 'stored' });
          this.options.logger.error({ error: outcome.error, subject: message.subject, seq: message.seq }, 'decode_internal_error');
        } else {
          this.unreadable(message, new Error(outcome.error));
        }
        continue;
      }
      const record = storedRecordOf(stored, outcome);
      record.streamSeq = message.seq;
      records.push(record);
    }
    return records;
  }

  private unreadable(message: JsMsg, error: unknown): void {
    this.options.logger.warn({ err: error, subject: message.subject, seq: message.seq }, 'nats_record_unreadable');
  }

  /** One ordered consumer for a watched VIN: stored records only, in stream order, no duplicates. */
  private async follow(vin: string, follow: Follow, ready: () => void): Promise<void> {
    const { js, stream, subjectPrefix, instanceId, metrics, logger } = this.options;
    let lastSeq = 0;
    while (!follow.stopped) {
      try {
        const consumer = await js.consumers.get(stream, {
          filter_subjects: vinSubjects(subjectPrefix, vin),
          ...(lastSeq === 0
            ? { deliver_policy: DeliverPolicy.New }
            : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 }),
        });
        // An ordered consumer lives on one server: when that one dies (or the stream changes leader) the
        // client notices only by missed heartbeats, two of them, and then recreates it where it left off.
        // The default (15 s) left dashboards without records for 45 s after a node loss; 5 s costs one
        // heartbeat per idle watched VIN every 5 s.
        const messages = await consumer.consume({ idle_heartbeat: FOLLOW_HEARTBEAT_MS });
        // The client may keep trying to revive a consumer whose server is gone; past two missed
        // heartbeats, start over with a fresh one from the last sequence seen (the loop below).
        void (async () => {
          for await (const status of messages.status()) {
            if (status.type === 'heartbeats_missed' && status.count >= 2) {
              logger.warn({ vin, missed: status.count }, 'nats_follow_restarted');
              messages.stop();
              break;
            }
          }
        })().catch(() => {});
        ready();
        if (follow.stopped) {
          messages.stop();
          break;
        }
        follow.messages = messages;
        for await (const message of messages) {
          lastSeq = message.seq;
          if (message.headers?.get(HEADER.instance) === instanceId) continue;
          // Awaited in the loop: the next message is not taken before this one is delivered (order).
          for (const record of await this.recordsOf([message])) {
            if (follow.stopped) break;
            metrics.natsRemoteRecords.inc();
            this.deliver(record);
          }
        }
      } catch (error) {
        if (follow.stopped || this.closed) break;
        logger.warn({ err: error, vin }, 'nats_follow_failed');
        ready();
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    ready();
  }
}
