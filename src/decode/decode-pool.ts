import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { DecodeMetrics } from './decode-metrics.js';
import { RECYCLED_RESULT_MIN_BYTES, decodeBatch, offerInlineResultBuffer } from './decode-batch.js';
import { DecodedBatch } from './decoded-batch.js';
import { TEXT_LEVEL, align8, columnBytes, type ChannelBatch, type DecodeResult, type DecodeTask } from './decode-task.js';
import type { StoredBody } from '../protocol/stored-body.js';
import { decodeStoredBatch, type StoredDecodeTask, type StoredOutcome } from './stored-batch.js';
import { decodeResultOf, storedOutcomesOf } from './worker-replies.js';
import { WorkerChannel, type ChannelJob } from './worker-channel.js';
// The global `performance` is an accessor (10-20 ns a read on the per-record path); the module's binding is not.
import { performance } from 'node:perf_hooks';

export const DEFAULT_WORKER_FILE = new URL('../../workers/decode-worker.js', import.meta.url);

/**
 * Called once per submitted frame, in submission order within a batch: frame `index` of `batch` is the
 * ticket's (read by index, no object per frame). A handler that keeps it for later (an outcome parked
 * for an earlier frame) returns true (only `true` counts): the batch's frames buffer is then not reused
 * (reuseInlineFrames).
 */
export type OutcomeHandler<T> = (ticket: T, batch: DecodedBatch, index: number, seq: number, arrivedAt: number, receivedAt: number) => unknown;

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
  /**
   * Some consumer reads every record's text (a durable bus, MQTT, the database): frames of unwatched
   * VINs get their record JSON. Otherwise (with isWatched) they are decoded values only
   * (TEXT_LEVEL.VALUES_ONLY) and a record's JSON is made on demand by whoever asks during its publish.
   */
  recordText?: boolean;
  /**
   * The outcome handler, and whatever it hands `frames` (or views of it) to, is done with them when it
   * returns (unless it returns true): inline batches then reuse one buffer instead of a new shared buffer
   * each, and a worker's batch hands its buffer on to a later batch (a new shared buffer is zero-filled:
   * at saturation that memset was 2 % of the main thread). True only for a bus whose subscribers run at
   * once and keep no view of a record's payload (the in-process bus); a durable bus reads record.payload
   * after publish returns, and a parked outcome keeps its frames.
   */
  reuseInlineFrames?: boolean;
  /**
   * Asked once per worker batch before its outcomes are handed over: true when whoever reads its records
   * past the turn says when it is done (DecodedBatch.hold / letGo, BusRecord.hold). The batch's result
   * buffer then goes back to a worker for a later result once the turn is over and the last holder let
   * go (fresh memory per batch cost ~0.8 µs of page faults per record); a batch an outcome handler kept
   * (a parked outcome) is never recycled. Absent: nothing is recycled.
   */
  recycleResults?: () => boolean;
  /**
   * Called before and after a batch's outcomes are handed over (end also when a handler threw): the
   * vehicle listener writes the replies queued in between at `end`, without a microtask (replyFlush).
   */
  aroundDelivery?: { begin(): void; end(): void };
  metrics: DecodeMetrics;
  logger: Logger;
}

/**
 * A batch's frames and their columns. The open batch (OpenBatch) keeps its columns in main-thread typed
 * arrays written at submit and reused batch after batch; a batch handed to a worker has them in its
 * shared buffer after the frames (ChannelBatch's layout), these fields being views of them.
 */
interface Batch<T> {
  frames: SharedArrayBuffer;
  /** Bytes of frames at the start of `frames`. */
  bytes: number;
  /** Frame i is frames[offsets[i], offsets[i+1]); offsets[0] is 0. */
  offsets: Uint32Array;
  receivedAt: Float64Array;
  /** Per frame, the text its record gets (DecodeTask.watched, TEXT_LEVEL). */
  watched: Uint8Array;
  vins: string[];
  /** One per frame: its count is the batch's. */
  tickets: T[];
  /** The handler's numbers per frame (submit's seq and arrivedAt), kept on this thread. */
  seqs: Float64Array;
  arrivals: Float64Array;
}

/** The batch frames are submitted to: a view of its buffer kept, and column arrays with room to grow. */
interface OpenBatch<T> extends Batch<T> {
  view: Uint8Array;
}

/** The frames buffer of a spare batch whose buffer went to a worker or must not be reused. */
const NO_FRAMES = new SharedArrayBuffer(0);
const NO_VIEW = new Uint8Array(NO_FRAMES);
const NO_TRANSFER: ArrayBuffer[] = [];
/** A microtask without queueMicrotask's AsyncResource and bound function per call (Node 20); same queue, same order. */
const SETTLED = Promise.resolve();
const MIN_COLUMN_FRAMES = 16;

const MIN_BATCH_BYTES = 4 * 1024;
const MAX_START_BATCH_BYTES = 1024 * 1024;
/** Messages a worker may hold at once: one running, one waiting in its port (no idle gap between them). */
const JOBS_PER_WORKER = 2;
export const DEFAULT_INLINE_MAX_BYTES = 16 * 1024;
/** Frames buffers of delivered worker batches kept for reuse: one per batch a worker may hold, roughly. */
const MAX_SPARE_FRAMES = 4;
/** Delivered batches whose recycling waits for the pool's hold to end (held); beyond, a batch is simply not recycled. */
const MAX_HELD = 64;
/** Result buffers let go of and not yet handed back to a worker (recycleResults). */
const MAX_SPARE_RESULTS = 8;
/** Result buffers handed back with one batch: a worker keeps a few (offerResultBuffers). */
const SPARES_PER_MESSAGE = 2;
/** How long close() waits for workers still loading their modules (a worker loads in well under a second). */
const WORKER_LOAD_WAIT_MS = 5000;

/** Resolves when every promise has, or after `ms`, whichever comes first (the timer never holds the process). */
function settledWithin(promises: Array<Promise<void>>, ms: number): Promise<void> {
  if (promises.length === 0) return SETTLED;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([Promise.all(promises).then(() => undefined), bound]).finally(() => clearTimeout(timer));
}

/**
 * Empties an array by pops, keeping its backing store: `length = 0` drops it, and the next push (a lone
 * frame's, every time) allocates a new one through a C++ builtin (~50 ns an array warm, 2 % of a lone
 * frame's submit in the sparse regime's profile; BENCHMARKS.md, engineer B, session 9).
 */
export function emptyArray(array: unknown[]): void {
  while (array.length > 0) array.pop();
}

/**
 * The smallest power of two >= n (n <= 2^31), in integer steps: Math.log2 and ** called into libm's
 * log2 and pow once per batch, which a lone frame paid in full (BENCHMARKS.md, engineer L).
 */
export function powerOfTwoAtLeast(n: number): number {
  if (n <= 1) return 1;
  const shift = 32 - Math.clz32(n - 1);
  return shift >= 31 ? 2147483648 : 1 << shift;
}

/**
 * The main thread's side of the decode workers. Frames that arrive in one event-loop turn are copied
 * once into a SharedArrayBuffer and sent as one task, so per-frame cost is a memcpy, not a message.
 * The shared buffer stays readable here, which lets a failed batch be retried frame by frame (to find
 * the frame that killed a worker) and lets payload bytes travel on to the bus without another copy.
 * Batches travel on one persistent MessagePort per worker (WorkerChannel), not as a piscina task each:
 * piscina owns the threads (start, replacement, termination of a hung one), the port carries the work.
 */
export class DecodePool<T> {
  private readonly pool: Piscina;
  private readonly options: DecodePoolOptions;
  private readonly onOutcome: OutcomeHandler<T>;
  private current: OpenBatch<T> | null = null;
  /**
   * The last batch decoded inline (or whose frames went to a worker), kept for the next one: its column
   * arrays, and its buffer when reuseInlineFrames allows. A lone frame then allocates nothing here.
   */
  private spare: OpenBatch<T> | null = null;
  /** Frames buffers of delivered worker batches, for the next batches (reuseInlineFrames; newest last). */
  private readonly spareFrames: SharedArrayBuffer[] = [];
  /** Result buffers every holder let go of, handed back to a worker with the next batches (recycleResults). */
  private readonly spareResults: ArrayBuffer[] = [];
  /**
   * Delivered batches, worker and inline, whose recycling waits for the pool's own hold to end: their
   * replies are written from views of them as the delivery ends (aroundDelivery) or in a microtask of the
   * turn that delivered them (without the bracket, or by a bus that acks later). The hold ends
   * in the pool's next check-phase callback (flushLater, or letGoHeld), never in a microtask: by then
   * every microtask of the delivering turn has run. A lone frame's turn has its check-phase flush already
   * (its inline batch is let go of in the next one): no setImmediate per lone frame; a worker's answer
   * schedules letGoHeld only when no such callback is pending.
   */
  private readonly held: DecodedBatch[] = [];
  /** A check-phase callback that ends the hold is pending (flushLater or letGoHeld). */
  private releaseScheduled = false;
  private readonly letGoHeld = (): void => {
    this.releaseScheduled = false;
    this.releaseHeld();
  };
  private readonly takeBack = (buffer: ArrayBuffer): void => {
    this.resultsLetGo++;
    if (this.spareResults.length < MAX_SPARE_RESULTS && buffer.byteLength >= RECYCLED_RESULT_MIN_BYTES) this.spareResults.push(buffer);
  };
  private readonly takeBackInline = (buffer: ArrayBuffer): void => {
    this.inlineResultsLetGo++;
    offerInlineResultBuffer(buffer);
  };
  /** Result buffers whose last holder let go (tests, benchmarks). */
  resultsLetGo = 0;
  /** Inline batches' result buffers whose last holder let go, kept for later inline results (tests, benchmarks). */
  inlineResultsLetGo = 0;
  /** Result buffers handed back to the workers (tests, benchmarks). */
  resultsHandedBack = 0;
  /** The flush queued as a microtask: it must not end the hold (see held). */
  private readonly flushNow = (): void => this.flush();
  /** The flush from the check phase: it ends the hold first. */
  private readonly flushLater = (): void => {
    this.releaseScheduled = false;
    if (this.held.length > 0) this.releaseHeld();
    this.flush();
  };
  private startBatchBytes = MIN_BATCH_BYTES;
  private flushScheduled = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Messages posted to the workers and not yet answered. */
  private tasksRunning = 0;
  /** Messages (batches, stored-record requests) posted to the workers since the start. */
  workerMessages = 0;
  private readonly channels: WorkerChannel[] = [];
  /** The decode module the channels' workers run (a URL string). */
  private readonly workerFile: string;
  /** Checks the channels' deadlines (a hung worker is terminated and its frames retried). */
  private readonly watchdog: NodeJS.Timeout;
  /** Full batches and stored-record requests that found no worker with room: posted as one frees up. */
  private readonly batchQueue: Array<{ batch: Batch<T>; attempt: 1 | 2 }> = [];
  private readonly storedQueue: Array<{ bodies: StoredBody[]; hand: (outcomes: StoredOutcome[]) => void }> = [];
  /**
   * Single-frame retries after a failed batch. They go to piscina only when a worker is free, so their
   * timeout measures their own run and not time spent queued behind a hung worker (which would turn
   * good frames into error replies).
   */
  private readonly retries: Array<Batch<T>> = [];
  /** 0 when batches always go to a worker (a custom worker module, or turned off). */
  private readonly inlineMaxFrames: number;
  private readonly inlineMaxBytes: number;
  /** The task of every inline batch, its fields pointed at the batch's columns (no object per batch). */
  private readonly inlineTask: DecodeTask = { frames: NO_FRAMES, offsets: new Uint32Array(0), vins: [], receivedAt: new Float64Array(0), watched: new Uint8Array(0), normalise: false, samples: true };
  /** decodeStored requests of this event-loop turn, decoded together (flushStored). */
  private storedWaiting: Array<{ bodies: StoredBody[]; resolve: (outcomes: StoredOutcome[]) => void }> = [];

  /** The text a frame of an unwatched VIN gets (DecodeTask.watched): RECORD_JSON with recordText, else VALUES_ONLY. */
  private readonly unwatchedLevel: number;

  constructor(options: DecodePoolOptions, onOutcome: OutcomeHandler<T>) {
    this.options = options;
    this.onOutcome = onOutcome;
    this.inlineMaxFrames = options.workerFile === undefined || String(options.workerFile) === String(DEFAULT_WORKER_FILE) ? (options.inlineMaxFrames ?? 0) : 0;
    this.inlineMaxBytes = options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
    this.unwatchedLevel = options.recordText === true ? TEXT_LEVEL.RECORD_JSON : TEXT_LEVEL.VALUES_ONLY;
    const workerFile = options.workerFile ?? DEFAULT_WORKER_FILE;
    this.workerFile = workerFile instanceof URL ? workerFile.href : workerFile.startsWith('file:') ? workerFile : pathToFileURL(workerFile).href;
    this.pool = new Piscina({
      filename: this.workerFile,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      concurrentTasksPerWorker: 1,
    });
    this.pool.on('error', (error: Error) => {
      options.metrics.decodeWorkerFailures.inc({ kind: 'pool_error' });
      options.logger.error({ err: error }, 'decode_pool_error');
    });
    for (let i = 0; i < options.workers; i++) this.openChannel();
    options.metrics.readPoolStateFrom(this);
    // A hang is found within an eighth of the timeout: one timer for the pool, none per batch.
    const period = Math.min(1000, Math.max(5, Math.floor(options.taskTimeoutMs / 8)));
    this.watchdog = setInterval(() => {
      const now = performance.now();
      for (const channel of this.channels) channel.checkDeadline(now, this.options.taskTimeoutMs);
    }, period);
    this.watchdog.unref();
  }

  private openChannel(): void {
    const channel = new WorkerChannel(
      this.pool,
      this.workerFile,
      () => this.dispatch(),
      (ended, jobs, kind, error) => {
        this.channels.splice(this.channels.indexOf(ended), 1);
        if (jobs.length === 0) {
          // Died with nothing posted (cannot be a frame of ours): still a failure, still replaced.
          this.options.metrics.decodeWorkerFailures.inc({ kind });
          this.options.logger.warn({ err: error, kind }, 'decode_worker_ended');
        }
        for (const job of jobs) {
          this.tasksRunning--;
          job.lost(kind, error);
        }
        if (!this.closed) this.openChannel();
        else if (this.channels.length === 0) {
          // Closing with no worker left: what still waits gets its error replies instead of waiting forever.
          for (const waiting of this.batchQueue.splice(0)) this.recover(waiting.batch, 2);
          for (const request of this.storedQueue.splice(0)) request.hand(request.bodies.map(() => ({ error: 'decode pool closed' })));
        }
        this.dispatch();
      },
    );
    this.channels.push(channel);
  }

  /** The ready channel with the fewest messages, when it can take one more (`limit` in flight). */
  private freeChannel(limit: number): WorkerChannel | null {
    let best: WorkerChannel | null = null;
    for (const channel of this.channels) {
      if (channel.ready && !channel.ended && channel.inFlight < limit && (best === null || channel.inFlight < best.inFlight)) best = channel;
    }
    return best;
  }

  /** Whatever waits for a worker goes now: retries first (each to an idle worker), then the open batch. */
  private dispatch(): void {
    this.dispatchRetries();
    while (this.storedQueue.length > 0) {
      const channel = this.freeChannel(JOBS_PER_WORKER);
      if (channel === null) break;
      this.postStored(channel, this.storedQueue.shift()!);
    }
    while (this.batchQueue.length > 0 && this.retries.length === 0) {
      const channel = this.freeChannel(JOBS_PER_WORKER);
      if (channel === null) break;
      const waiting = this.batchQueue.shift()!;
      this.post(channel, waiting.batch, waiting.attempt);
    }
    if (this.current !== null && !this.flushScheduled) {
      this.flushScheduled = true;
      // Not flushLater: that also ends the hold on this turn's batches, whose replies may still be queued.
      void SETTLED.then(this.flushNow);
    }
  }

  /** Frames submitted and not yet answered. */
  get pending(): number {
    return this.inFlight + (this.current?.tickets.length ?? 0);
  }

  /**
   * Queue one frame. `frame` may be a view the caller will reuse (uWS recycles its message buffer after
   * the callback), so it is copied here, once.
   */
  submit(frame: ArrayBuffer, vin: string, receivedAt: number, ticket: T, seq = 0, arrivedAt = 0): void {
    const bytes = new Uint8Array(frame);
    const length = bytes.length;
    let batch = this.current;
    if (batch === null) batch = this.current = this.openBatch(length);
    // The view's length, not the buffer's byteLength: a SharedArrayBuffer's is a C++ builtin behind the generic LoadIC.
    else if (batch.bytes + length > batch.view.length) this.growFrames(batch, batch.bytes + length);
    const i = batch.tickets.length;
    if (i + 1 >= batch.offsets.length) this.growColumns(batch);
    batch.view.set(bytes, batch.bytes);
    batch.bytes += length;
    // The columns are written here, so a flush has nothing to gather (and an inline batch nothing to copy).
    batch.offsets[i + 1] = batch.bytes;
    batch.receivedAt[i] = receivedAt;
    batch.seqs[i] = seq;
    batch.arrivals[i] = arrivedAt;
    batch.watched[i] = this.options.isWatched === undefined || this.options.isWatched(vin) ? TEXT_LEVEL.DASHBOARD_MESSAGE : this.unwatchedLevel;
    batch.vins.push(vin);
    batch.tickets.push(ticket);

    if (i + 1 >= this.options.batchMaxFrames) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.releaseScheduled = true;
      setImmediate(this.flushLater);
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
    const inline = bodies.length <= this.inlineMaxFrames && bytes <= this.inlineMaxBytes && this.tasksRunning === 0 && this.retries.length === 0 && this.batchQueue.length === 0;
    // A closed pool has no workers left; the last records of a shutdown are decoded here.
    if (inline || this.closed) {
      hand(decodeStoredBatch({ stored: bodies }));
      return;
    }
    const channel = this.freeChannel(JOBS_PER_WORKER);
    if (channel === null) this.storedQueue.push({ bodies, hand });
    else this.postStored(channel, { bodies, hand });
  }

  private postStored(channel: WorkerChannel, request: { bodies: StoredBody[]; hand: (outcomes: StoredOutcome[]) => void }): void {
    const { bodies, hand } = request;
    const failed = (kind: string, error: unknown): void => {
      this.options.metrics.decodeWorkerFailures.inc({ kind });
      this.options.logger.warn({ err: error, kind, records: bodies.length }, 'decode_stored_failed');
      hand(bodies.map(() => ({ error: `decode task failed (${kind})` })));
    };
    const task: StoredDecodeTask = { stored: bodies };
    this.tasksRunning++;
    this.workerMessages++;
    channel.post(task, [], {
      answered: (answer) => {
        this.taskEnded();
        if (!Array.isArray(answer) && 'failed' in answer) {
          failed('worker_error', answer.failed);
          return;
        }
        // A reply of the wrong shape (a car-frame batch's row among them) takes the failure path, as a worker error.
        let outcomes: StoredOutcome[];
        try {
          outcomes = storedOutcomesOf(Array.isArray(answer) ? answer : answer.result, bodies.length);
        } catch (error) {
          failed('worker_error', error);
          return;
        }
        hand(outcomes);
      },
      lost: (kind, error) => failed(kind, error),
    });
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
    clearInterval(this.watchdog);
    // A worker still loading its modules is not terminated (WorkerChannel.settled): a pool closed right
    // after it started, or right after a worker was replaced, waits for it, within a bound.
    await settledWithin(this.channels.map((channel) => channel.settled), WORKER_LOAD_WAIT_MS);
    for (const channel of this.channels.splice(0)) channel.close();
    await this.pool.destroy();
  }

  /**
   * The batch for the first frame of a turn: the spare one when there is one. A new shared buffer is
   * zero-filled, which a lone frame would pay for in full (BENCHMARKS.md, "Why the code is shaped so"):
   * it starts at the size the previous batch needed, so lone frames get small buffers and busy turns
   * grow without copying.
   */
  private openBatch(firstFrameBytes: number): OpenBatch<T> {
    const spare = this.spare;
    if (spare !== null) {
      this.spare = null;
      if (spare.view.length < firstFrameBytes) this.setFrames(spare, this.newFrames(Math.max(this.startBatchBytes, firstFrameBytes)));
      return spare;
    }
    const frames = this.newFrames(Math.max(this.startBatchBytes, firstFrameBytes));
    const columns = Math.min(MIN_COLUMN_FRAMES, this.options.batchMaxFrames);
    return {
      frames,
      view: new Uint8Array(frames),
      bytes: 0,
      offsets: new Uint32Array(columns + 1),
      receivedAt: new Float64Array(columns),
      watched: new Uint8Array(columns),
      vins: [],
      tickets: [],
      seqs: new Float64Array(columns),
      arrivals: new Float64Array(columns),
    };
  }

  /** A frames buffer of at least `bytes`: a delivered worker batch's when one is big enough, else new. */
  private newFrames(bytes: number): SharedArrayBuffer {
    const spares = this.spareFrames;
    while (spares.length > 0) {
      const frames = spares.pop()!;
      if (frames.byteLength >= bytes) return frames;
    }
    return new SharedArrayBuffer(bytes);
  }

  private setFrames(batch: OpenBatch<T>, frames: SharedArrayBuffer): void {
    batch.frames = frames;
    batch.view = frames === NO_FRAMES ? NO_VIEW : new Uint8Array(frames);
  }

  private growFrames(batch: OpenBatch<T>, needed: number): void {
    let capacity = Math.max(MIN_BATCH_BYTES, batch.view.length * 2);
    while (capacity < needed) capacity *= 2;
    const frames = new SharedArrayBuffer(capacity);
    new Uint8Array(frames).set(batch.view.subarray(0, batch.bytes));
    this.setFrames(batch, frames);
  }

  private growColumns(batch: OpenBatch<T>): void {
    const columns = batch.receivedAt.length * 2;
    const offsets = new Uint32Array(columns + 1);
    offsets.set(batch.offsets);
    const receivedAt = new Float64Array(columns);
    receivedAt.set(batch.receivedAt);
    const watched = new Uint8Array(columns);
    watched.set(batch.watched);
    const seqs = new Float64Array(columns);
    seqs.set(batch.seqs);
    const arrivals = new Float64Array(columns);
    arrivals.set(batch.arrivals);
    batch.offsets = offsets;
    batch.receivedAt = receivedAt;
    batch.watched = watched;
    batch.seqs = seqs;
    batch.arrivals = arrivals;
  }

  /** A batch decoded inline is delivered: it becomes the spare, with its buffer when that may be reused. */
  private recycle(batch: OpenBatch<T>): void {
    batch.bytes = 0;
    emptyArray(batch.vins);
    emptyArray(batch.tickets);
    if (this.options.reuseInlineFrames !== true) this.setFrames(batch, NO_FRAMES);
    this.spare ??= batch;
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.current;
    if (batch === null || batch.tickets.length === 0) return;
    // While every worker has a task running and one waiting, frames keep joining the open batch instead
    // of queueing as many small tasks: under load batches grow and the per-task cost is shared, rather
    // than tasks piling up in piscina's queue (where they also used up their timeout waiting).
    // A task finishing flushes the batch.
    const channel = this.freeChannel(JOBS_PER_WORKER);
    const count = batch.tickets.length;
    if (!this.closed && count < this.options.batchMaxFrames && (channel === null || this.retries.length > 0 || this.batchQueue.length > 0)) return;
    this.current = null;
    // A new buffer starts at the size this batch needed (with its columns).
    this.startBatchBytes = Math.min(MAX_START_BATCH_BYTES, Math.max(MIN_BATCH_BYTES, powerOfTwoAtLeast(align8(batch.bytes) + columnBytes(count))));
    this.inFlight += count;
    if (this.mayDecodeInline(count, batch.bytes) && this.decodeInline(batch, count)) return;
    this.options.metrics.decodeBatchFrames.observe(count);
    const posted = this.postable(batch);
    this.options.metrics.batchCells.worker.inc();
    if (channel === null || this.retries.length > 0 || this.batchQueue.length > 0) {
      this.batchQueue.push({ batch: posted, attempt: 1 });
      this.dispatch();
    } else {
      this.post(channel, posted, 1);
    }
  }

  /**
   * A small batch while no task is running costs far less decoded here than its thread round trip
   * (the task, its timer, two messages, the wakeups and promises; figures in BENCHMARKS.md, "Why the
   * code is shaped so" and batch-hop-micro). No task running also means
   * every earlier frame has had its outcome, so acks stay in order per car (and no outcome of an inline
   * batch is parked: recycle may reuse its buffer). It cannot hang the event
   * loop: decodeBatch is one forward pass over each frame's bytes (entries capped by PAYLOAD_LIMITS),
   * so its time is bounded by the batch's bytes, which inlineMaxBytes caps; bigger batches, and
   * batches while the workers are busy (the main thread is then busy too), go to the pool.
   */
  private mayDecodeInline(count: number, bytes: number): boolean {
    return count <= this.inlineMaxFrames && bytes <= this.inlineMaxBytes && this.tasksRunning === 0 && this.retries.length === 0 && this.batchQueue.length === 0 && !this.closed;
  }

  /**
   * Decodes the open batch from its own columns (no copy, no views made). False when decodeBatch threw
   * (a decoder bug): the batch then takes the worker path and its recovery.
   */
  private decodeInline(batch: OpenBatch<T>, count: number): boolean {
    // From the first frame's arrival (the clock read it took for its ack latency): one clock read per
    // inline batch, not two. A submit without one (tests, tools) reads the clock here.
    const arrivedAt = batch.arrivals[0]!;
    const startedAt = arrivedAt > 0 ? arrivedAt : performance.now();
    // Asked once per batch: the answer may change (a bus listener that does not hold records comes and goes).
    const recycled = this.options.recycleResults?.() === true;
    let result: DecodeResult;
    try {
      // Samples too: the transcoder gathers them as it writes (~0.45 µs a lone frame before its ack), the history's own read after the acks cost ~1.3 µs (BENCHMARKS.md, engineer T).
      const task = this.inlineTask;
      task.frames = batch.frames;
      task.offsets = batch.offsets;
      task.vins = batch.vins;
      task.receivedAt = batch.receivedAt;
      task.watched = batch.watched;
      task.normalise = this.options.normalisedPayloads === true;
      result = decodeBatch(task, recycled);
    } catch (error) {
      this.options.logger.warn({ err: error, frames: batch.tickets.length }, 'decode_inline_failed');
      return false;
    }
    const metrics = this.options.metrics;
    // A batch of one is one addition on the metrics object (decode_batch_frames and decode_batches_total
    // folded at a scrape: DecodeMetrics.loneInlineBatches).
    if (count === 1) {
      metrics.loneInlineBatches++;
    } else {
      metrics.decodeBatchFrames.observe(count);
      metrics.batchCells.inline.inc();
    }
    metrics.decodeLatency.observe((performance.now() - startedAt) / 1000);
    this.deliver(batch, result, recycled ? this.takeBackInline : null);
    this.recycle(batch);
    return true;
  }

  /** The pool's hold on the batches delivered before this check-phase callback ends (see held). */
  private releaseHeld(): void {
    const batches = this.held;
    for (let i = 0; i < batches.length; i++) batches[i]!.letGo();
    emptyArray(batches);
  }

  /**
   * The open batch as a worker reads it: its columns copied into the shared buffer after the frames
   * (ChannelBatch's layout; a bigger buffer when they do not fit). The buffer goes with the batch; the
   * open batch's column arrays stay here as the spare.
   */
  private postable(batch: OpenBatch<T>): Batch<T> {
    const count = batch.tickets.length;
    const bytes = batch.bytes;
    const columnsAt = align8(bytes);
    const needed = columnsAt + columnBytes(count);
    let frames = batch.frames;
    if (frames.byteLength < needed) {
      frames = new SharedArrayBuffer(needed);
      new Uint8Array(frames).set(batch.view.subarray(0, bytes));
    }
    const receivedAtAt = columnsAt + align8(4 * (count + 1));
    const posted: Batch<T> = {
      frames,
      bytes,
      offsets: new Uint32Array(frames, columnsAt, count + 1),
      receivedAt: new Float64Array(frames, receivedAtAt, count),
      watched: new Uint8Array(frames, receivedAtAt + 8 * count, count),
      vins: batch.vins,
      tickets: batch.tickets,
      seqs: batch.seqs.slice(0, count),
      arrivals: batch.arrivals.slice(0, count),
    };
    posted.offsets.set(batch.offsets.subarray(0, count + 1));
    posted.receivedAt.set(batch.receivedAt.subarray(0, count));
    posted.watched.set(batch.watched.subarray(0, count));
    batch.vins = [];
    batch.tickets = [];
    batch.bytes = 0;
    this.setFrames(batch, NO_FRAMES);
    this.spare ??= batch;
    return posted;
  }

  /** Frame i of a batch alone, for its retry: its own buffer in ChannelBatch's layout. */
  private singleFrameBatch(batch: Batch<T>, i: number): Batch<T> {
    const start = batch.offsets[i]!;
    const length = batch.offsets[i + 1]! - start;
    const columnsAt = align8(length);
    const frames = new SharedArrayBuffer(columnsAt + columnBytes(1));
    new Uint8Array(frames).set(new Uint8Array(batch.frames, start, length));
    const receivedAtAt = columnsAt + align8(4 * 2);
    const single: Batch<T> = {
      frames,
      bytes: length,
      offsets: new Uint32Array(frames, columnsAt, 2),
      receivedAt: new Float64Array(frames, receivedAtAt, 1),
      watched: new Uint8Array(frames, receivedAtAt + 8, 1),
      vins: [batch.vins[i]!],
      tickets: [batch.tickets[i]!],
      seqs: Float64Array.of(batch.seqs[i]!),
      arrivals: Float64Array.of(batch.arrivals[i]!),
    };
    single.offsets[1] = length;
    single.receivedAt[0] = batch.receivedAt[i]!;
    single.watched[0] = batch.watched[i]!;
    return single;
  }

  /**
   * Posts a batch to one worker's port: frames and columns stay in the shared buffer, the message holds
   * only it, the counts and the VINs as one string. The answer comes back on the same port, in order.
   */
  private post(channel: WorkerChannel, batch: Batch<T>, attempt: 1 | 2): void {
    const message: ChannelBatch = [batch.frames, batch.tickets.length, align8(batch.bytes), batch.vins.join('\n'), this.options.normalisedPayloads === true ? 1 : 0];
    // Result buffers nothing reads any more go back with it (transferred: this thread cannot read them after).
    let transfer: ArrayBuffer[] = NO_TRANSFER;
    if (this.spareResults.length > 0) {
      transfer = this.spareResults.splice(Math.max(0, this.spareResults.length - SPARES_PER_MESSAGE));
      for (const spare of transfer) message.push(spare);
      this.resultsHandedBack += transfer.length;
      this.options.metrics.decodeResultsRecycled.inc(transfer.length);
    }
    const startedAt = performance.now();
    this.tasksRunning++;
    const job: ChannelJob = {
      answered: (answer) => {
        this.taskEnded();
        if (!Array.isArray(answer) && 'failed' in answer) {
          this.failed(batch, attempt, 'worker_error', answer.failed);
          return;
        }
        const seconds = (performance.now() - startedAt) / 1000;
        this.options.metrics.decodeLatency.observe(seconds);
        this.options.metrics.workerBusySeconds.inc(seconds);
        // A reply of the wrong shape takes the failure path, as a worker error.
        let result: DecodeResult;
        try {
          result = decodeResultOf(Array.isArray(answer) ? answer : answer.result);
        } catch (error) {
          this.failed(batch, attempt, 'worker_error', error);
          return;
        }
        if (this.deliver(batch, result, this.options.recycleResults?.() === true ? this.takeBack : null) && this.options.reuseInlineFrames === true && this.spareFrames.length < MAX_SPARE_FRAMES) this.spareFrames.push(batch.frames);
      },
      lost: (kind, error) => this.failed(batch, attempt, kind, error),
    };
    this.workerMessages++;
    channel.post(message, transfer, job);
  }

  private failed(batch: Batch<T>, attempt: 1 | 2, kind: 'timeout' | 'worker_error', error: unknown): void {
    this.options.metrics.decodeWorkerFailures.inc({ kind });
    this.options.logger.warn({ err: error, kind, frames: batch.tickets.length, attempt }, 'decode_task_failed');
    this.recover(batch, attempt);
  }

  /** A worker answered: whatever waited for room goes now. */
  private taskEnded(): void {
    this.tasksRunning--;
    this.dispatch();
  }

  /**
   * Single-frame retries go only to a worker with nothing posted, so their timeout measures their own
   * run and not time queued behind a hung batch (which would turn good frames into error replies).
   */
  private dispatchRetries(): void {
    while (this.retries.length > 0) {
      const channel = this.freeChannel(1);
      if (channel === null) return;
      this.post(channel, this.retries.shift()!, 2);
    }
  }

  /**
   * Hands every frame its outcome; true when no handler kept the batch (its frames may be reused). With
   * `recycle`, the result buffer goes back to a worker once the turn is over (replies are written from
   * views of it in a microtask) and every holder let go; a kept batch's never does.
   */
  private deliver(batch: Batch<T>, result: DecodeResult, recycler: ((buffer: ArrayBuffer) => void) | null = null): boolean {
    if (result.internalErrors.length > 0) {
      // A bug, not a bad frame: its own series and an error log, never decode_errors_total.
      this.options.metrics.decodeInternalErrors.inc({ stage: 'frame' }, result.internalErrors.length);
      for (const error of result.internalErrors) this.options.logger.error({ error, frames: batch.tickets.length }, 'decode_internal_error');
    }
    const decoded = new DecodedBatch(result, batch.frames);
    if (recycler !== null) decoded.recycleWith(recycler);
    const tickets = batch.tickets;
    let kept = false;
    const around = this.options.aroundDelivery;
    if (around === undefined) {
      for (let i = 0; i < tickets.length; i++) if (this.handOver(batch, decoded, i)) kept = true;
    } else {
      around.begin();
      try {
        for (let i = 0; i < tickets.length; i++) if (this.handOver(batch, decoded, i)) kept = true;
      } finally {
        around.end();
      }
    }
    if (recycler !== null) {
      // Bounded: inline batches wait for a later turn's flush, which a quiet pool may not have soon.
      if (kept || this.held.length >= MAX_HELD) {
        decoded.pin();
      } else {
        this.held.push(decoded);
        // A worker's batch is let go of after this turn even if no frame comes; an inline one waits for the next.
        if (recycler === this.takeBack && !this.releaseScheduled) {
          this.releaseScheduled = true;
          setImmediate(this.letGoHeld);
        }
      }
    }
    this.settled(tickets.length);
    return !kept;
  }

  /**
   * A worker threw, died or hung. Piscina replaces it; the frames are retried once each on their own
   * so one poisonous frame cannot take its batch-mates down, and a frame that fails alone gets the
   * error reply (the car may resend, or the record is reported as undecodable).
   */
  private recover(batch: Batch<T>, attempt: 1 | 2): void {
    if (attempt === 1 && !this.closed) {
      for (let i = 0; i < batch.tickets.length; i++) this.retries.push(this.singleFrameBatch(batch, i));
      this.dispatchRetries();
      return;
    }
    const failed = DecodedBatch.failed(batch.frames, batch.offsets.subarray(0, batch.tickets.length + 1));
    const around = this.options.aroundDelivery;
    around?.begin();
    try {
      for (let i = 0; i < batch.tickets.length; i++) this.handOver(batch, failed, i);
    } finally {
      around?.end();
    }
    this.settled(batch.tickets.length);
  }

  /** True when the handler kept the batch (or threw: what it kept is not known). */
  private handOver(batch: Batch<T>, decoded: DecodedBatch, index: number): boolean {
    try {
      return this.onOutcome(batch.tickets[index]!, decoded, index, batch.seqs[index]!, batch.arrivals[index]!, batch.receivedAt[index]!) === true;
    } catch (error) {
      this.options.logger.error({ err: error }, 'decode_outcome_handler_failed');
      return true;
    }
  }

  private settled(count: number): void {
    this.inFlight -= count;
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** decode_queue_depth at a scrape (DecodeMetrics.readPoolStateFrom). */
  queueDepth(): number {
    return this.batchQueue.length + this.storedQueue.length + this.retries.length;
  }

  /**
   * decode_pool_utilisation_ratio at a scrape: piscina sees each worker's channel as one endless task, so
   * its own utilisation says 1; the share of workers with a batch posted is reported instead.
   */
  utilisation(): number {
    if (this.options.workers <= 0) return 0;
    let busy = 0;
    for (const channel of this.channels) if (channel.inFlight > 0) busy++;
    return busy / this.options.workers;
  }
}
