import { MessageChannel, receiveMessageOnPort, type MessagePort, type Transferable } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import type { ChannelAnswer, DecodeChannelTask } from './decode-task.js';
// The global `performance` is an accessor (10-20 ns a read on the per-record path); the module's binding is not.
import { performance } from 'node:perf_hooks';

export const CHANNEL_WORKER_FILE = new URL('../../workers/decode-channel.js', import.meta.url);

/** One message posted to a worker and not yet answered. */
export interface ChannelJob {
  /** The worker's answer, in posting order. */
  answered(answer: Exclude<ChannelAnswer, 'ready'>): void;
  /** The worker died or was terminated for hanging before it answered. */
  lost(kind: 'timeout' | 'worker_error', error: unknown): void;
}

/**
 * The main thread's end of one decode worker's port. The worker is piscina's: the channel is a single
 * piscina task that lasts as long as the worker serves this port. A worker that dies (process.exit, a
 * fatal error) rejects that task; a worker whose oldest message runs past the timeout is terminated by
 * aborting the task (piscina terminates a worker whose running task is aborted). Either way every job
 * still posted on the channel is lost (its frames are retried), and the pool opens a new channel, which
 * piscina serves from the replacement thread it starts to keep `minThreads`.
 */
export class WorkerChannel {
  /** Posted and unanswered, oldest first: a worker answers in the order it receives. */
  private readonly jobs: ChannelJob[] = [];
  private readonly port: MessagePort;
  private readonly abort = new AbortController();
  /** performance.now() when the oldest job began running (when the one before it was answered). */
  private headSince = 0;
  private timedOut = false;
  /** False until the worker has loaded the decode module and listens. */
  ready = false;
  ended = false;
  private settle: () => void = () => {};
  /**
   * Resolves once the worker is ready or the channel has ended: the pool closes no worker that is still
   * loading its modules (Node 20 can abort the whole process when a worker is terminated inside a
   * module's file read: a FATAL ERROR under piscina's require of the task file).
   */
  readonly settled = new Promise<void>((resolve) => (this.settle = resolve));

  constructor(pool: Piscina, workerFile: string, onReady: (channel: WorkerChannel) => void, onEnded: (channel: WorkerChannel, jobs: ChannelJob[], kind: 'timeout' | 'worker_error', error: unknown) => void) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.onReady = onReady;
    port1.on('message', (answer: ChannelAnswer) => this.received(answer));
    const task: DecodeChannelTask = { port: port2, workerFile };
    pool.run(task, { filename: CHANNEL_WORKER_FILE.href, transferList: [port2] as unknown as Transferable[], signal: this.abort.signal }).then(
      () => this.end(onEnded, 'worker_error', new Error('decode worker ended its channel')),
      (error: unknown) => this.end(onEnded, this.timedOut ? 'timeout' : 'worker_error', error),
    );
  }

  private readonly onReady: (channel: WorkerChannel) => void;

  private received(answer: ChannelAnswer): void {
    if (answer === 'ready') {
      this.ready = true;
      this.settle();
      this.onReady(this);
      return;
    }
    const job = this.jobs.shift();
    this.headSince = performance.now();
    job?.answered(answer);
  }

  /** Messages posted and not yet answered. */
  get inFlight(): number {
    return this.jobs.length;
  }

  post(message: unknown, transfer: Transferable[], job: ChannelJob): void {
    if (this.jobs.length === 0) this.headSince = performance.now();
    this.jobs.push(job);
    this.port.postMessage(message, transfer);
  }

  /** Terminates the worker when its oldest job has run longer than `timeoutMs`. */
  checkDeadline(now: number, timeoutMs: number): void {
    if (this.ended || this.timedOut || this.jobs.length === 0 || now - this.headSince <= timeoutMs) return;
    this.timedOut = true;
    this.abort.abort(new Error('decode task timed out'));
  }

  /** The pool is closing: the worker's task resolves once the port is closed. */
  close(): void {
    this.ended = true;
    this.port.close();
  }

  private end(onEnded: (channel: WorkerChannel, jobs: ChannelJob[], kind: 'timeout' | 'worker_error', error: unknown) => void, kind: 'timeout' | 'worker_error', error: unknown): void {
    const closing = this.ended;
    this.ended = true;
    this.ready = false;
    this.settle();
    // Answers the worker posted before it died may still sit in the port, behind piscina's news of the
    // death: they are answers, not losses (a good frame's retry must not become an error reply).
    if (!closing) {
      let queued: { message: unknown } | undefined;
      while (this.jobs.length > 0 && (queued = receiveMessageOnPort(this.port)) !== undefined) this.received(queued.message as ChannelAnswer);
    }
    this.port.close();
    const jobs = this.jobs.splice(0);
    if (!closing) onEnded(this, jobs, kind, error);
  }
}
