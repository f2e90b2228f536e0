import type { ScenarioResult } from '../report/result.js';
import { runSteady } from './steady.js';
import type { RunContext } from './session.js';

export interface SparseOptions {
  cars: number;
  /** V frames per second per car (the real regime: 1). */
  rate: number;
  warmupSeconds: number;
  seconds: number;
}

/**
 * The fleet as it really talks: many cars, each its own certificate and socket, one frame a second
 * each. Each frame then arrives alone in its event-loop turn, so every fixed cost per batch (thread
 * hops, timers, wakeups) is paid per record. The figure that matters is the server CPU per record
 * against the do-nothing limit server's, whose CPU here is little more than the socket wakeups.
 * No dashboards: what is measured is the record path.
 */
export async function runSparse(ctx: RunContext, o: SparseOptions): Promise<ScenarioResult> {
  const result = await runSteady(ctx, { cars: o.cars, rate: o.rate, warmupSeconds: o.warmupSeconds, seconds: o.seconds, dashboards: 0, vinsPerDashboard: 1, connectConcurrency: 100 }, 'sparse');
  if (result.completed && result.throughput > 0) result.details.serverCpuMicrosPerRecord = Math.round((result.serverCpuCores / result.throughput) * 1e6 * 10) / 10;
  return result;
}
