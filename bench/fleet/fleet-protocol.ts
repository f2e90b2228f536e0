import type { CarIdentity } from '../pki/bench-pki.js';
import type { CarCounters, CarMode } from './bench-car.js';

/** What a fleet thread is given when it starts. */
export interface FleetWorkerData {
  url: string;
  servername: string;
  caChainPem: string;
  cars: CarIdentity[];
  /** Seeds the cars' stories: car i of the whole fleet gets seed firstIndex + i + 1. */
  firstIndex: number;
  /** Loopback source addresses to spread the cars over ('' = let the kernel choose). */
  localAddresses: string[];
}

export type FleetCommand =
  | { id: number; type: 'connect'; concurrency: number; mode: CarMode; /** Connect this thread's cars up to this index (exclusive) only; absent: all. */ upTo?: number }
  | { id: number; type: 'mode'; mode: CarMode }
  | { id: number; type: 'counters' }
  | { id: number; type: 'resetLatency' }
  | { id: number; type: 'drain'; timeoutMs: number }
  | { id: number; type: 'report' }
  | { id: number; type: 'close' };

export interface FleetThreadReport {
  counters: CarCounters;
  /** Unacked records now (in flight plus waiting for a connection). */
  unacked: number;
  /** HDR histogram of send -> ack latency since the last resetLatency, compressed base64. */
  ackLatency: string;
  /** Per car, in the order given: distinct records acked. */
  ackedPerCar: number[];
  errors: string[];
}

export type FleetReply =
  | { id: number; type: 'done' }
  | { id: number; type: 'counters'; counters: CarCounters; unacked: number }
  | { id: number; type: 'drained'; unacked: number }
  | { id: number; type: 'report'; report: FleetThreadReport }
  | { id: number; type: 'failed'; message: string };
