import type { ScenarioResult } from '../report/result.js';
import { formatThreadUse, type ThreadGroupUse } from '../../tools/proc-stats.js';
import { runSteady } from './steady.js';
import type { RunContext } from './session.js';

export interface SparseOptions {
  cars: number;
  /** V frames per second per car (the real regime: 1). */
  rate: number;
  warmupSeconds: number;
  seconds: number;
}

/** One round's figures of one server, kept in the summary's details. */
export interface SparseRound {
  round: number;
  serverCpuMicrosPerRecord: number | null;
  throughput: number;
  ackP99: number;
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

/**
 * `rounds` sparse runs per server, the servers alternating (limit, ours, limit, ours, ...), so a
 * change of the box's load touches every server alike. On a shared box one run's CPU per record
 * moves by a quarter between runs (the limit server's too), which is the size of the target's margin.
 * Per server the round with the median CPU per record is reported (its figures, so they belong
 * together), with every round's figures and, for ours, the ratio to the limit server's round next to
 * it; the losses of all rounds are added up, and a failed round fails the server's result.
 */
export async function runSparseRounds(contexts: RunContext[], o: SparseOptions, rounds: number, log: (line: string) => void): Promise<ScenarioResult[]> {
  const byServer = contexts.map(() => [] as ScenarioResult[]);
  for (let round = 1; round <= rounds; round++) {
    for (const [k, ctx] of contexts.entries()) {
      log(`bench: sparse against ${ctx.kind}${rounds > 1 ? `, round ${round}/${rounds}` : ''}`);
      const result = await runSparse(ctx, o);
      byServer[k]!.push(result);
      log(`bench: sparse against ${ctx.kind}: ${result.completed ? `${result.throughput.toFixed(0)} rec/s, ${String(result.details.serverCpuMicrosPerRecord ?? '-')} µs CPU per record, ack p99 ${result.ack.p99} ms, lost ${result.counts.lost}` : `FAILED: ${result.failure}`}`);
      const threads = result.details.threads as ThreadGroupUse[] | undefined;
      if (result.completed && threads !== undefined) log(`bench: sparse against ${ctx.kind}, µs per record by thread: ${formatThreadUse(threads)}`);
      const gc = result.details.gcPerSecond as Record<string, number> | undefined;
      const batches = result.details.decodeBatchesPerSecond as Record<string, number> | undefined;
      if (result.completed && gc !== undefined) {
        log(`bench: sparse against ${ctx.kind}, GCs per second: ${Object.entries(gc).map(([kind, n]) => `${kind} ${n}`).join(', ')} (main-thread pauses ${String(result.details.gcPauseMicrosPerRecord ?? '-')} µs per record); decode batches per second: ${Object.entries(batches ?? {}).map(([path, n]) => `${path} ${n}`).join(', ')}`);
      }
    }
  }
  if (rounds === 1) return byServer.map((results) => results[0]!);
  const roundsOf = (kind: string): ScenarioResult[] | undefined => byServer[contexts.findIndex((c) => c.kind === kind)];
  const limitRounds = roundsOf('limit');
  const otherRounds = roundsOf('other');
  return byServer.map((results, k) =>
    summariseSparseRounds(results, limitRounds !== undefined && results !== limitRounds ? limitRounds : undefined, contexts[k]!.kind === 'ours' ? otherRounds : undefined),
  );
}

function cpuPerRecord(result: ScenarioResult): number | null {
  const value = result.details.serverCpuMicrosPerRecord;
  return result.completed && typeof value === 'number' ? value : null;
}

/**
 * One server's rounds as one result (see runSparseRounds); `limitRounds` pairs round i with the limit
 * server's round i, `otherRounds` (ours only) with the other build's: a change against its base.
 */
export function summariseSparseRounds(results: ScenarioResult[], limitRounds: ScenarioResult[] | undefined, otherRounds?: ScenarioResult[]): ScenarioResult {
  const failed = results.find((r) => !r.completed);
  const lost = results.reduce((sum, r) => sum + r.counts.lost, 0);
  const dashboardLost = results.reduce((sum, r) => sum + r.counts.dashboardLost, 0);
  const ranked = results.filter((r) => cpuPerRecord(r) !== null).sort((a, b) => cpuPerRecord(a)! - cpuPerRecord(b)!);
  const chosen = failed ?? ranked[(ranked.length - 1) >> 1] ?? results[0]!;
  const summary: ScenarioResult = { ...chosen, counts: { ...chosen.counts, lost, dashboardLost }, details: { ...chosen.details }, notes: results.flatMap((r) => r.notes) };
  summary.details.rounds = results.map((r, i): SparseRound => ({ round: i + 1, serverCpuMicrosPerRecord: cpuPerRecord(r), throughput: Math.round(r.throughput), ackP99: r.ack.p99 }));
  summary.details.medianRound = results.indexOf(chosen) + 1;
  const byRound = (beside: ScenarioResult[]): Array<number | null> =>
    results.map((r, i) => {
      const ours = cpuPerRecord(r);
      const other = beside[i] === undefined ? null : cpuPerRecord(beside[i]!);
      return ours === null || other === null || other === 0 ? null : Math.round((ours / other) * 1000) / 1000;
    });
  if (limitRounds !== undefined) summary.details.cpuPerRecordOverLimitByRound = byRound(limitRounds).map((x) => (x === null ? null : Math.round(x * 100) / 100));
  if (otherRounds !== undefined) summary.details.cpuPerRecordOverOtherByRound = byRound(otherRounds);
  return summary;
}
