import client from 'prom-client';
import { CellHistogram, CounterCell, foldCounterCells } from '../metrics/hot-path.js';
import { LATENCY_BUCKETS, PREFIX } from '../metrics/series.js';

/** What the decode pool's gauges read at a scrape. */
export interface DecodePoolState {
  /** Batches and stored-record requests waiting for a worker with room. */
  queueDepth(): number;
  /** Share of decode workers with a batch posted (0-1). */
  utilisation(): number;
}

/** The decode stage: batches, the worker pool, and frames that could not be decoded. */
export class DecodeMetrics {
  /** Also counted by the vehicle listener (text frames) and the actors (a decode outcome that is an error). */
  readonly decodeErrors: client.Counter<'kind'>;
  /** Also counted by the NATS bus for a stored record whose decode threw (stage `stored`). */
  readonly decodeInternalErrors: client.Counter<'stage'>;
  /** Per batch, so hot-path cells (hot-path.ts): a lone frame is a batch, and prom-client's observe() cost more than its flush. */
  readonly decodeLatency: CellHistogram<never>;
  readonly decodeBatchFrames: CellHistogram<never>;
  readonly decodeBatches: client.Counter<'path'>;
  /** Worker batches' seconds from post to answer, summed: folded into decode_worker_busy_seconds_total at a scrape. */
  readonly workerBusySeconds = new CounterCell();
  readonly decodeWorkerBusy: client.Counter;
  /** Batches by path, folded into decodeBatches at every scrape. */
  readonly batchCells: Readonly<Record<'inline' | 'worker', CounterCell>> = { inline: new CounterCell(), worker: new CounterCell() };
  /**
   * Inline batches of one frame since the last scrape: one addition here stands for an observation of 1
   * in decodeBatchFrames and one in batchCells.inline, folded into both when either is read (foldLone).
   * A lone frame's batch then touches neither cell (cold in the sparse regime, where every frame is one).
   */
  loneInlineBatches = 0;
  readonly decodeQueueDepth: client.Gauge;
  readonly decodeUtilisation: client.Gauge;
  /** What the two gauges above read when scraped (the decode pool); null: they stay at 0. */
  private poolState: DecodePoolState | null = null;
  readonly decodeWorkers: client.Gauge;
  readonly decodeWorkerFailures: client.Counter<'kind'>;
  readonly decodeResultsRecycled: client.Counter;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.decodeErrors = new client.Counter({ name: `${PREFIX}decode_errors_total`, help: 'Frames that could not be decoded, by kind.', labelNames: ['kind'], registers: r });
    this.decodeInternalErrors = new client.Counter({ name: `${PREFIX}decode_internal_errors_total`, help: 'Decodes that threw something other than a verdict on the bytes: a bug of ours, each logged as decode_internal_error with its stack, never counted in decode_errors_total. By stage: frame (a car frame; it got the error reply, as a frame that kills its worker does) or stored (a record read back from NATS; skipped).', labelNames: ['stage'], registers: r });
    this.decodeLatency = new CellHistogram({ name: `${PREFIX}decode_batch_latency_seconds`, help: 'Decode batch submitted to results back on the main thread: from its post to a worker, or, decoded inline, from the arrival of its first frame.', buckets: LATENCY_BUCKETS, registers: r });
    const foldLone = (): void => this.foldLone();
    this.decodeBatchFrames = new CellHistogram({ name: `${PREFIX}decode_batch_frames`, help: 'Frames per decode batch.', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: r, fold: foldLone });
    const foldBatches = foldCounterCells([[{ path: 'inline' }, this.batchCells.inline], [{ path: 'worker' }, this.batchCells.worker]]);
    this.decodeBatches = new client.Counter({ name: `${PREFIX}decode_batches_total`, help: 'Decode batches by where they were decoded: worker (a decode worker thread) or inline (on the main thread: a small batch while no task was running).', labelNames: ['path'], registers: r, collect() {
      foldLone();
      foldBatches.call(this);
    } });
    // Inline batches are left out: they run on the main thread, and the pool's load is what the workers carry.
    const busy = this.workerBusySeconds;
    this.decodeWorkerBusy = new client.Counter({ name: `${PREFIX}decode_worker_busy_seconds_total`, help: 'Seconds decode worker batches spent from their post to a worker to its answer, summed over batches (inline batches not counted). Its rate over the number of workers is the average number of batches in flight per worker.', registers: r, collect() {
      if (busy.pending !== 0) {
        this.inc(busy.pending);
        busy.pending = 0;
      }
    } });
    // Read from the pool when scraped, not set per batch: current at every scrape, and nothing on the batch path.
    const state = (): DecodePoolState | null => this.poolState;
    this.decodeQueueDepth = new client.Gauge({ name: `${PREFIX}decode_queue_depth`, help: 'Decode batches and stored-record requests waiting for a worker with room, when scraped.', registers: r, collect() {
      this.set(state()?.queueDepth() ?? 0);
    } });
    this.decodeUtilisation = new client.Gauge({ name: `${PREFIX}decode_pool_utilisation_ratio`, help: 'Share of decode workers with a batch posted (0-1), when scraped.', registers: r, collect() {
      this.set(state()?.utilisation() ?? 0);
    } });
    this.decodeWorkers = new client.Gauge({ name: `${PREFIX}decode_workers`, help: 'Decode worker threads configured (DECODE_WORKERS).', registers: r });
    this.decodeResultsRecycled = new client.Counter({ name: `${PREFIX}decode_result_buffers_recycled_total`, help: 'Decode results\' buffers handed back to a decode worker for a later batch once nothing on the main thread read them any more (in-process bus, every subscriber saying when it is done; 0 otherwise): that many results were written without fresh memory.', registers: r });
    this.decodeWorkerFailures = new client.Counter({ name: `${PREFIX}decode_worker_failures_total`, help: 'Decode tasks lost to a worker that threw, died or timed out, by kind.', labelNames: ['kind'], registers: r });
  }

  /** loneInlineBatches into the two series it stands for. */
  private foldLone(): void {
    const lone = this.loneInlineBatches;
    if (lone === 0) return;
    this.loneInlineBatches = 0;
    this.decodeBatchFrames.child({}).observeMany(1, lone);
    this.batchCells.inline.inc(lone);
  }

  /** The decode pool whose queue and workers the gauges report (the last one made). */
  readPoolStateFrom(pool: DecodePoolState): void {
    this.poolState = pool;
  }
}
