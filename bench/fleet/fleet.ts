import { Worker } from 'node:worker_threads';
import type { CarIdentity } from '../pki/bench-pki.js';
import { LatencyRecorder, type LatencySummary } from '../stats/latency.js';
import { emptyCounters, type CarCounters, type CarMode } from './bench-car.js';
import type { FleetCommand, FleetReply, FleetThreadReport, FleetWorkerData } from './fleet-protocol.js';

export interface FleetOptions {
  url: string;
  servername: string;
  caChainPem: string;
  cars: CarIdentity[];
  /** Threads to run the cars on. */
  threads: number;
  localAddresses: string[];
}

export interface FleetReport {
  counters: CarCounters;
  unacked: number;
  ackLatency: LatencySummary;
  /** The same histogram, encoded, to merge with another fleet's (several fleets against several servers). */
  ackLatencyEncoded: string;
  /** VIN -> distinct records acked. */
  ackedByVin: Map<string, number>;
  errors: string[];
}

type Command = FleetCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

/** Cars split over worker threads, driven together. */
export class Fleet {
  private readonly workers: Worker[] = [];
  private readonly shares: CarIdentity[][] = [];
  private readonly waiting = new Map<number, { resolve: (reply: FleetReply) => void; reject: (error: Error) => void }>();
  private nextId = 1;

  constructor(options: FleetOptions) {
    const threads = Math.max(1, Math.min(options.threads, options.cars.length));
    const per = Math.ceil(options.cars.length / threads);
    for (let t = 0; t < threads; t++) {
      const share = options.cars.slice(t * per, (t + 1) * per);
      if (share.length === 0) continue;
      const data: FleetWorkerData = {
        url: options.url,
        servername: options.servername,
        caChainPem: options.caChainPem,
        cars: share,
        firstIndex: t * per,
        localAddresses: options.localAddresses,
      };
      const worker = new Worker(new URL('./fleet-worker.js', import.meta.url), { workerData: data });
      worker.on('message', (reply: FleetReply) => {
        const waiter = this.waiting.get(reply.id);
        if (waiter === undefined) return;
        this.waiting.delete(reply.id);
        if (reply.type === 'failed') waiter.reject(new Error(`fleet thread: ${reply.message}`));
        else waiter.resolve(reply);
      });
      worker.on('error', (error) => this.failAll(error));
      this.workers.push(worker);
      this.shares.push(share);
    }
  }

  get size(): number {
    return this.shares.reduce((sum, share) => sum + share.length, 0);
  }

  /** Open every car's socket (at most `concurrency` handshakes at a time per thread), entering `mode` on connect. */
  async connect(concurrency: number, mode: CarMode): Promise<void> {
    await this.all({ type: 'connect', concurrency, mode });
  }

  /**
   * Connect more of the fleet: afterwards about `cars` cars in all are connected, each thread its own
   * share (earlier waves stay connected; every car enters `mode`).
   */
  async connectUpTo(cars: number, concurrency: number, mode: CarMode): Promise<void> {
    const total = this.size;
    await Promise.all(
      this.workers.map((worker, t) =>
        this.call(worker, { type: 'connect', concurrency, mode, upTo: Math.round((this.shares[t]!.length * Math.min(cars, total)) / total) }),
      ),
    );
  }

  async setMode(mode: CarMode): Promise<void> {
    await this.all({ type: 'mode', mode });
  }

  async resetLatency(): Promise<void> {
    await this.all({ type: 'resetLatency' });
  }

  async counters(): Promise<{ counters: CarCounters; unacked: number }> {
    const replies = await this.all({ type: 'counters' });
    const counters = emptyCounters();
    let unacked = 0;
    for (const reply of replies) {
      if (reply.type !== 'counters') continue;
      addCounters(counters, reply.counters);
      unacked += reply.unacked;
    }
    return { counters, unacked };
  }

  /** Wait until every record is acked or the time is up; resolves with what is still unacked. */
  async drain(timeoutMs: number): Promise<number> {
    const replies = await this.all({ type: 'drain', timeoutMs });
    return replies.reduce((sum, reply) => sum + (reply.type === 'drained' ? reply.unacked : 0), 0);
  }

  async report(): Promise<FleetReport> {
    const replies = await this.all({ type: 'report' });
    const counters = emptyCounters();
    const latency = new LatencyRecorder();
    const ackedByVin = new Map<string, number>();
    const errors: string[] = [];
    let unacked = 0;
    replies.forEach((reply, t) => {
      if (reply.type !== 'report') return;
      const r: FleetThreadReport = reply.report;
      addCounters(counters, r.counters);
      unacked += r.unacked;
      latency.addEncoded(r.ackLatency);
      r.ackedPerCar.forEach((count, i) => ackedByVin.set(this.shares[t]![i]!.vin, count));
      errors.push(...r.errors);
    });
    return { counters, unacked, ackLatency: latency.summary(), ackLatencyEncoded: latency.encode(), ackedByVin, errors };
  }

  /** Close every car and end the threads. */
  async close(): Promise<void> {
    await this.all({ type: 'close' }).catch(() => undefined);
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private all(command: Command): Promise<FleetReply[]> {
    return Promise.all(this.workers.map((worker) => this.call(worker, command)));
  }

  private call(worker: Worker, command: Command): Promise<FleetReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ ...command, id });
    });
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

export function addCounters(into: CarCounters, from: CarCounters): void {
  into.sent += from.sent;
  into.resent += from.resent;
  into.acked += from.acked;
  into.errorReplies += from.errorReplies;
  into.connected += from.connected;
  into.connects += from.connects;
  into.connectFailures += from.connectFailures;
  into.disconnects += from.disconnects;
  into.readyCars += from.readyCars;
  into.lastReadyAt = Math.max(into.lastReadyAt, from.lastReadyAt);
}

/**
 * Loopback source addresses for `cars` connections: each source address has about 28,000 ephemeral
 * ports, so large fleets use several (127.0.0.0/8 is all loopback on Linux).
 */
export function loopbackSources(cars: number, perAddress = 5000): string[] {
  if (cars <= perAddress) return [];
  const count = Math.ceil(cars / perAddress);
  return Array.from({ length: count }, (_, i) => `127.0.0.${10 + i}`);
}
