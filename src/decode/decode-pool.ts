import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { readEnvelope, writeErrorReply } from '../protocol/envelope.js';
import type { DecodeMetrics } from './decode-metrics.js';
import { decodeBatch, receiveOutcomes } from './decode-batch.js';
import type { DecodeResult, DecodeTask, FrameOutcome } from './decode-task.js';
import type { StoredBody } from '../protocol/stored-body.js';
import { decodeStoredBatch, type StoredDecodeTask, type StoredOutcome } from './stored-batch.js';
import { decodeResultOf, storedOutcomesOf } from './worker-replies.js';

export const DEFAULT_WORKER_FILE = new URL('../../workers/decode-worker.js', import.meta.url);

/** Called once per submitted frame, in submission order within a batch. */
export type OutcomeHandler<T> = (ticket: T, outcome: FrameOutcome, reply: Uint8Array, frames: Uint8Array) => void;

export interface DecodePoolOptions {
  workers: number;
  batchMaxFrames: number;
  taskTimeoutMs: number;
  /** Ask the workers for each record normalised as protobuf (a bus that stores protobuf bodies). */
  normalisedPayloads?: boolean;
  /** The worker module; tests point it at a wrapper that can crash on purpose. */
  workerFile?: URL | string;
  /**
   * Largest batch (frames) decoded on the main thread instead of a worker when no task is running; 0:
   * always a worker. Only with the default worker module: inline decode runs the code that module runs.
   */
  inlineMaxFrames?: number;
  /** Largest batch (bytes of frames) decoded inline: what bounds the main thread's time per batch. */
  inlineMaxBytes?: number;
  /**
   * Whether some dashboard watches a VIN, asked once per frame at submit: frames of unwatched VINs are
   * decoded without a dashboard message. Absent: every frame gets one.
   */
  isWatched?: (vin: string) => boolean;
  metrics: DecodeMetrics;
  logger: Logger;
}

interface Batch<T> {
  frames: SharedArrayBuffer;
  offsets: number[];
  vins: string[];
  receivedAt: number[];
  /** 1 per frame whose VIN a dashboard watches (DecodeTask.watched). */
  watched: number[];
  tickets: T[];
  startedAt: number;
}

const MIN_BATCH_BYTES = 4 * 1024;
const MAX_START_BATCH_BYTES = 1024 * 1024;
const UTILISATION_REFRESH_MS = 1000;
export const DEFAULT_INLINE_MAX_BYTES = 16 * 1024;

/**
 * The main thread's side of the decode workers. Frames that arrive in one event-loop turn are copied
 * once into a SharedArrayBuffer and sent as one task, so per-frame cost is a memcpy, not a message.
 * The shared buffer stays readable here, which lets a failed batch be retried frame by frame (to find
 * the frame that killed a worker) and lets payload bytes travel on to the bus without another copy.
 */
export class DecodePool<T> {
  private readonly pool: Piscina;
  private readonly options: DecodePoolOptions;
  private readonly onOutcome: OutcomeHandler<T>;
  private current: Batch<T> | null = null;
  private currentBytes = 0;
  private startBatchBytes = MIN_BATCH_BYTES;
  private flushScheduled = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private utilisationAt = -Infinity;
  /** Tasks handed to piscina and not yet answered. */
  private tasksRunning = 0;
  /**
   * Single-frame retries after a failed batch. They go to piscina only when a worker is free, so their
   * timeout measures their own run and not time spent queued behind a hung worker (which would turn
   * good frames into error replies).
   */
  private readonly retries: Array<Batch<T>> = [];
  /** 0 when batches always go to a worker (a custom worker module, or turned off). */
  private readonly inlineMaxFrames: number;
  private readonly inlineMaxBytes: number;
  /** decodeStored requests of this event-loop turn, decoded together (flushStored). */
  private storedWaiting: Array<{ bodies: StoredBody[]; resolve: (outcomes: StoredOutcome[]) => void }> = [];

  constructor(options: DecodePoolOptions, onOutcome: OutcomeHandler<T>) {
    this.options = options;
    this.onOutcome = onOutcome;
    this.inlineMaxFrames = options.workerFile === undefined || String(options.workerFile) === String(DEFAULT_WORKER_FILE) ? (options.inlineMaxFrames ?? 0) : 0;
    this.inlineMaxBytes = options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
    this.pool = new Piscina({
      filename: String(options.workerFile ?? DEFAULT_WORKER_FILE),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      concurrentTasksPerWorker: 1,
    });
    this.pool.on('error', (error: Error) => {
      options.metrics.decodeWorkerFailures.inc({ kind: 'pool_error' });
      options.logger.error({ err: error }, 'decode_pool_error');
    });
  }

  /** Frames submitted and not yet answered. */
  get pending(): number {
    return this.inFlight + (this.current?.tickets.length ?? 0);
  }

  /**
   * Queue one frame. `frame` may be a view the caller will reuse (uWS recycles its message buffer after
   * the callback), so it is copied here, once.
   */
  submit(frame: ArrayBuffer, vin: string, receivedAt: number, ticket: T): void {
    let batch = this.current;
    const length = frame.byteLength;
    if (batch === null) {
      batch = this.current = this.newBatch(Math.max(this.startBatchBytes, length));
    } else if (this.currentBytes + length > batch.frames.byteLength) {
      batch = this.growBatch(batch, this.currentBytes + length);
    }
    new Uint8Array(batch.frames, this.currentBytes, length).set(new Uint8Array(frame));
    this.currentBytes += length;
    batch.offsets.push(this.currentBytes);
    batch.vins.push(vin);
    batch.receivedAt.push(receivedAt);
    batch.watched.push(this.options.isWatched === undefined || this.options.isWatched(vin) ? 1 : 0);
    batch.tickets.push(ticket);

    if (batch.tickets.length >= this.options.batchMaxFrames) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Stored records read back from NATS (another instance's records of a watched VIN, replays), decoded
   * like car frames: the requests of one event-loop turn (each followed VIN asks for one record at a
   * time) are coalesced into one task, decoded in a worker, or here under the same rule as a small
   * batch (no task running, within the inline bounds). Outcomes in the order of `bodies`; a failed task
   * gives every body an error.
   */
  decodeStored(bodies: StoredBody[]): Promise<StoredOutcome[]> {
    return new Promise((resolve) => {
      this.storedWaiting.push({ bodies, resolve });
      if (this.storedWaiting.length === 1) setImmediate(() => this.flushStored());
    });
  }

  private flushStored(): void {
    const waiting = this.storedWaiting;
    this.storedWaiting = [];
    const bodies: StoredBody[] = [];
    let bytes = 0;
    for (const request of waiting) {
      for (const stored of request.bodies) {
        bodies.push(stored);
        bytes += stored.body.byteLength;
      }
    }
    const hand = (outcomes: StoredOutcome[]): void => {
      let at = 0;
      for (const request of waiting) {
        request.resolve(outcomes.slice(at, at + request.bodies.length));
        at += request.bodies.length;
      }
    };
    const inline = bodies.length <= this.inlineMaxFrames && bytes <= this.inlineMaxBytes && this.tasksRunning === 0 && this.retries.length === 0;
    // A closed pool has no workers left; the last records of a shutdown are decoded here.
    if (inline || this.closed) {
      hand(decodeStoredBatch({ stored: bodies }));
      return;
    }
    const task: StoredDecodeTask = { stored: bodies };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('decode task timed out')), this.options.taskTimeoutMs);
    this.tasksRunning++;
    // A reply of the wrong shape takes the failure path below, as a worker error.
    (this.pool.run(task, { signal: abort.signal }) as Promise<unknown>).then((value) => storedOutcomesOf(value, bodies.length)).then(
      (outcomes) => {
        clearTimeout(timer);
        this.taskEnded();
        hand(outcomes);
      },
      (error: unknown) => {
        clearTimeout(timer);
        this.taskEnded();
        const kind = abort.signal.aborted ? 'timeout' : 'worker_error';
        this.options.metrics.decodeWorkerFailures.inc({ kind });
        this.options.logger.warn({ err: error, kind, records: bodies.length }, 'decode_stored_failed');
        hand(bodies.map(() => ({ error: `decode task failed (${kind})` })));
      },
    );
  }

  /** Resolves when every submitted frame has had its outcome delivered. */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    await this.whenIdle();
    await this.pool.destroy();
  }

  private newBatch(capacity: number): Batch<T> {
    return {
      frames: new SharedArrayBuffer(capacity),
      offsets: [0],
      vins: [],
      receivedAt: [],
      watched: [],
      tickets: [],
      startedAt: 0,
    };
  }

  private growBatch(batch: Batch<T>, needed: number): Batch<T> {
    let capacity = batch.frames.byteLength * 2;
    while (capacity < needed) capacity *= 2;
    const frames = new SharedArrayBuffer(capacity);
    new Uint8Array(frames).set(new Uint8Array(batch.frames, 0, this.currentBytes));
    batch.frames = frames;
    return batch;
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.current;
    if (batch === null || batch.tickets.length === 0) return;
    // While every worker has a task running and one waiting, frames keep joining the open batch instead
    // of queueing as many small tasks: under load batches grow and the per-task cost is shared, rather
    // than tasks piling up in piscina's queue (where they also used up their timeout waiting).
    // A task finishing flushes the batch.
    if (!this.closed && batch.tickets.length < this.options.batchMaxFrames && (this.tasksRunning >= this.options.workers * 2 || this.retries.length > 0)) return;
    this.current = null;
    // A new shared buffer is zero-filled, which a lone frame would pay for in full (BENCHMARKS.md, "Why
    // the code is shaped so"). The next batch starts at the size this one needed, so lone frames get
    // small buffers and busy turns grow without copying.
    this.startBatchBytes = Math.min(MAX_START_BATCH_BYTES, Math.max(MIN_BATCH_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, this.currentBytes)))));
    const bytes = this.currentBytes;
    this.currentBytes = 0;
    this.inFlight += batch.tickets.length;
    this.options.metrics.decodeBatchFrames.observe(batch.tickets.length);
    if (this.mayDecodeInline(batch, bytes) && this.decodeInline(batch)) return;
    this.options.metrics.decodeBatches.inc({ path: 'worker' });
    this.run(batch, 1);
  }

  /**
   * A small batch while no task is running costs far less decoded here than its thread round trip
   * (the task, its timer, two messages, the wakeups and promises; figures in BENCHMARKS.md, "Why the
   * code is shaped so" and batch-hop-micro). No task running also means
   * every earlier frame has had its outcome, so acks stay in order per car. It cannot hang the event
   * loop: decodeBatch is one forward pass over each frame's bytes (entries capped by PAYLOAD_LIMITS),
   * so its time is bounded by the batch's bytes, which inlineMaxBytes caps; bigger batches, and
   * batches while the workers are busy (the main thread is then busy too), go to the pool.
   */
  private mayDecodeInline(batch: Batch<T>, bytes: number): boolean {
    return batch.tickets.length <= this.inlineMaxFrames && bytes <= this.inlineMaxBytes && this.tasksRunning === 0 && this.retries.length === 0 && !this.closed;
  }

  /** False when decodeBatch threw (a decoder bug): the batch then takes the worker path and its recovery. */
  private decodeInline(batch: Batch<T>): boolean {
    const startedAt = performance.now();
    let result: DecodeResult;
    try {
      result = decodeBatch(this.taskOf(batch));
    } catch (error) {
      this.options.logger.warn({ err: error, frames: batch.tickets.length }, 'decode_inline_failed');
      return false;
    }
    this.options.metrics.decodeBatches.inc({ path: 'inline' });
    this.options.metrics.decodeLatency.observe((performance.now() - startedAt) / 1000);
    this.deliver(batch, result);
    return true;
  }

  /** The same task whether it is decoded here or in a worker. */
  private taskOf(batch: Batch<T>): DecodeTask {
    return {
      frames: batch.frames,
      offsets: Uint32Array.from(batch.offsets),
      vins: batch.vins,
      receivedAt: Float64Array.from(batch.receivedAt),
      normalise: this.options.normalisedPayloads === true,
      watched: Uint8Array.from(batch.watched),
    };
  }

  private run(batch: Batch<T>, attempt: 1 | 2): void {
    const task = this.taskOf(batch);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('decode task timed out')), this.options.taskTimeoutMs);
    const startedAt = performance.now();
    this.updateQueueGauges();
    this.tasksRunning++;
    (this.pool.run(task, { signal: abort.signal }) as Promise<unknown>).then(decodeResultOf).then(
      (result: DecodeResult) => {
        clearTimeout(timer);
        this.taskEnded();
        this.options.metrics.decodeLatency.observe((performance.now() - startedAt) / 1000);
        this.deliver(batch, result);
      },
      (error: unknown) => {
        clearTimeout(timer);
        this.taskEnded();
        const kind = abort.signal.aborted ? 'timeout' : 'worker_error';
        this.options.metrics.decodeWorkerFailures.inc({ kind });
        this.options.logger.warn({ err: error, kind, frames: batch.tickets.length, attempt }, 'decode_task_failed');
        this.recover(batch, attempt);
      },
    );
  }

  /** A task's slot is free: the batch that waited for it goes now. */
  private taskEnded(): void {
    this.tasksRunning--;
    this.dispatchRetries();
    if (this.current !== null && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private dispatchRetries(): void {
    while (this.retries.length > 0 && this.tasksRunning < this.options.workers) this.run(this.retries.shift()!, 2);
  }

  private deliver(batch: Batch<T>, result: DecodeResult): void {
    if (result.internalErrors.length > 0) {
      // A bug, not a bad frame: its own series and an error log, never decode_errors_total.
      this.options.metrics.decodeInternalErrors.inc({ stage: 'frame' }, result.internalErrors.length);
      for (const error of result.internalErrors) this.options.logger.error({ error, frames: batch.tickets.length }, 'decode_internal_error');
    }
    const replies = new Uint8Array(result.replies);
    const frames = new Uint8Array(batch.frames);
    const outcomes = receiveOutcomes(result, batch.frames);
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      this.handOver(batch.tickets[i]!, outcome, replies.subarray(outcome.replyStart, outcome.replyEnd), frames);
    }
    this.settled(outcomes.length);
  }

  /**
   * A worker threw, died or hung. Piscina replaces it; the frames are retried once each on their own
   * so one poisonous frame cannot take its batch-mates down, and a frame that fails alone gets the
   * error reply (the car may resend, or the record is reported as undecodable).
   */
  private recover(batch: Batch<T>, attempt: 1 | 2): void {
    if (attempt === 1 && !this.closed) {
      for (let i = 0; i < batch.tickets.length; i++) {
        const start = batch.offsets[i]!;
        const end = batch.offsets[i + 1]!;
        const single = this.newBatch(Math.max(1, end - start));
        new Uint8Array(single.frames).set(new Uint8Array(batch.frames, start, end - start));
        single.offsets.push(end - start);
        single.vins.push(batch.vins[i]!);
        single.receivedAt.push(batch.receivedAt[i]!);
        single.watched.push(batch.watched[i]!);
        single.tickets.push(batch.tickets[i]!);
        this.retries.push(single);
      }
      this.dispatchRetries();
      return;
    }
    const frames = new Uint8Array(batch.frames);
    for (let i = 0; i < batch.tickets.length; i++) {
      const frame = frames.subarray(batch.offsets[i], batch.offsets[i + 1]);
      this.handOver(batch.tickets[i]!, failedFrameOutcome(frame), failedFrameReply(frame), frames);
    }
    this.settled(batch.tickets.length);
  }

  private handOver(ticket: T, outcome: FrameOutcome, reply: Uint8Array, frames: Uint8Array): void {
    try {
      this.onOutcome(ticket, outcome, reply, frames);
    } catch (error) {
      this.options.logger.error({ err: error }, 'decode_outcome_handler_failed');
    }
  }

  private settled(count: number): void {
    this.inFlight -= count;
    this.updateQueueGauges();
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private updateQueueGauges(): void {
    this.options.metrics.decodeQueueDepth.set(this.pool.queueSize);
    // Piscina computes utilisation from a full histogram summary (mean, stddev, percentiles), too dear
    // to read per batch (BENCHMARKS.md, "Why the code is shaped so"): refreshed at most once a second.
    const now = performance.now();
    if (now - this.utilisationAt >= UTILISATION_REFRESH_MS) {
      this.utilisationAt = now;
      this.options.metrics.decodeUtilisation.set(this.pool.utilization);
    }
  }
}

function failedFrameOutcome(frame: Uint8Array): FrameOutcome {
  let txid = '';
  let topic = '';
  try {
    const envelope = readEnvelope(frame);
    txid = Buffer.from(envelope.txid).toString('latin1');
    topic = Buffer.from(envelope.topic).toString('latin1');
  } catch {
    // Unreadable envelope: the error reply goes out with an empty txid.
  }
  return {
    kind: 'error', txid, topic, replyStart: 0, replyEnd: 0, errorKind: 'worker_failed',
    dashboardMessage: null, recordStart: 0, recordEnd: 0, recordJson: null,
    signals: 0, stateStart: 0, stateEnd: 0, state: null, createdAt: null, isResend: false,
    payloadStart: 0, payloadEnd: 0,
  };
}

function failedFrameReply(frame: Uint8Array): Uint8Array {
  try {
    return writeErrorReply(readEnvelope(frame).txid);
  } catch {
    return writeErrorReply(new Uint8Array(0));
  }
}
