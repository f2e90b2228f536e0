import type { ScenarioResult } from '../report/result.js';
import { collectGarbage } from '../probes/server-gc.js';
import { scrapeValue } from '../probes/server-metrics.js';
import { isOurs, sleep } from '../servers/server-under-test.js';
import { freePort } from '../../tools/local-process.js';
import { applyFleetReport, emptyResult, round, session, waitConnected, type RunContext } from './session.js';

export interface IdleMemoryOptions {
  /** Cars connected by the end of each round. */
  cars: number;
  /** Waves the cars connect in; memory is read after each. */
  waves: number;
  /** Fresh server processes per server kind; the kinds alternate round by round. */
  rounds: number;
  /** Idle time after a wave before its memory is read. */
  settleSeconds: number;
  /** Give up on a wave when its cars are not all connected and acked by then. */
  timeoutSeconds: number;
}

/** One reading: cars connected and idle, then the server's memory after a full GC. */
interface MemoryPoint {
  cars: number;
  rssBytes: number;
  /** RSS before the GC was asked for: with whatever garbage the process had not yet collected by itself. */
  rssBeforeGcBytes: number;
  /** Every server (the inspector): the main thread's V8 heap in use and the pages it holds. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Ours only (its /metrics): external memory (ArrayBuffers and other memory V8 is told about). */
  externalBytes?: number;
}

interface RoundFigures {
  points: MemoryPoint[];
  /** Least-squares slope of RSS over connected cars, every wave after the first: bytes a further idle car costs. */
  rssPerCarBytes: number;
  /** The same slope of the readings before the GC (what an idle server left to itself holds). */
  rssBeforeGcPerCarBytes: number;
  heapPerCarBytes: number;
  heapTotalPerCarBytes: number;
  externalPerCarBytes?: number;
}

/**
 * Memory per idle car, steadily: one server process per round, its cars connecting in waves (each wave
 * a storm of its own: every car at once, one V record each, then silent). After each wave: idle for
 * `settleSeconds`, two full GCs asked for through the V8 inspector, a second for the sweeper, then RSS
 * (and, for ours, heap and external memory). The figure of a round is the slope of RSS over the cars
 * across its waves after the first (which warms the process up), so the fixed cost (and one-off growth, such as the first TLS handshakes) falls out
 * within one process instead of between two processes that each grew their own way; the figure
 * reported is the median of the rounds. Rounds alternate the server kinds, so each kind sees the box
 * as loaded as the other.
 */
export async function runIdleMemory(contexts: readonly RunContext[], o: IdleMemoryOptions): Promise<ScenarioResult[]> {
  const rounds = new Map<RunContext, { figures: RoundFigures[]; results: ScenarioResult[] }>();
  for (const ctx of contexts) rounds.set(ctx, { figures: [], results: [] });
  for (let r = 0; r < o.rounds; r++) {
    for (const ctx of contexts) {
      ctx.progress(`${ctx.kind} idle-memory round ${r + 1}/${o.rounds}`);
      const entry = rounds.get(ctx)!;
      const { result, figures } = await oneRound(ctx, o);
      entry.results.push(result);
      if (figures !== null) entry.figures.push(figures);
    }
  }
  return contexts.map((ctx) => summarise(ctx, o, rounds.get(ctx)!.results, rounds.get(ctx)!.figures));
}

async function oneRound(ctx: RunContext, o: IdleMemoryOptions): Promise<{ result: ScenarioResult; figures: RoundFigures | null }> {
  const inspectorPort = await freePort();
  const roundCtx: RunContext = {
    ...ctx,
    serverNodeFlags: [...ctx.serverNodeFlags, `--inspect=127.0.0.1:${inspectorPort}`],
    // Ours compacts an idle car's state on its watchdog sweep, at most 500 cars a sweep: a sweep a second
    // lets a wave of a few thousand cars settle in a few seconds instead of a minute.
    serverEnv: isOurs(ctx.kind) ? { WATCHDOG_SWEEP_INTERVAL_SECONDS: '1', ...ctx.serverEnv } : ctx.serverEnv,
  };
  let figures: RoundFigures | null = null;
  const result = await session('idle-memory', roundCtx, o.cars, async ({ server, meter, fleet, result }) => {
    await sleep(1000);
    const points: MemoryPoint[] = [];
    for (let w = 1; w <= o.waves; w++) {
      const target = Math.round((o.cars * w) / o.waves);
      await fleet.connectUpTo(target, Number.MAX_SAFE_INTEGER, { kind: 'once' });
      if (!(await waitConnected(fleet, target, o.timeoutSeconds * 1000, ctx, 'ready'))) {
        throw new Error(`wave ${w}: not all ${target} cars connected and acked within ${o.timeoutSeconds} s`);
      }
      const { counters } = await fleet.counters();
      await sleep(o.settleSeconds * 1000);
      const rssBeforeGcBytes = meter.take().rssBytes;
      const heap = await collectGarbage(inspectorPort);
      await sleep(1000);
      const point: MemoryPoint = { cars: counters.readyCars, rssBytes: meter.take().rssBytes, rssBeforeGcBytes, heapUsedBytes: heap.usedBytes, heapTotalBytes: heap.totalBytes };
      if (server.metricsPort !== null) {
        const external = await scrapeValue(server.metricsPort, 'fleet_telemetry_nodejs_external_memory_bytes').catch(() => null);
        if (external !== null) point.externalBytes = external;
      }
      points.push(point);
      ctx.progress(`${ctx.kind} idle-memory wave ${w}/${o.waves}: ${point.cars} cars, RSS ${(point.rssBytes / 2 ** 20).toFixed(1)} MiB`);
    }
    await fleet.drain(10_000);
    applyFleetReport(result, await fleet.report());
    const slopeOf = (value: (p: MemoryPoint) => number | undefined): number | undefined => {
      // The first wave warms the process up (first handshakes, JIT, the heap's first growth): not in the slope.
      const xy = points.slice(1).flatMap((p) => {
        const y = value(p);
        return y === undefined ? [] : [[p.cars, y] as const];
      });
      return xy.length >= 2 ? Math.round(slope(xy)) : undefined;
    };
    figures = {
      points,
      rssPerCarBytes: slopeOf((p) => p.rssBytes)!,
      rssBeforeGcPerCarBytes: slopeOf((p) => p.rssBeforeGcBytes)!,
      heapPerCarBytes: slopeOf((p) => p.heapUsedBytes)!,
      heapTotalPerCarBytes: slopeOf((p) => p.heapTotalBytes)!,
    };
    const external = slopeOf((p) => p.externalBytes);
    if (external !== undefined) figures.externalPerCarBytes = external;
    result.details = { ...figures };
  });
  return { result, figures };
}

function summarise(ctx: RunContext, o: IdleMemoryOptions, results: ScenarioResult[], figures: RoundFigures[]): ScenarioResult {
  const summary = emptyResult('idle-memory', ctx.kind, o.cars);
  summary.completed = figures.length === o.rounds;
  for (const r of results) {
    for (const key of Object.keys(summary.counts) as Array<keyof typeof summary.counts>) summary.counts[key] = (summary.counts[key] ?? 0) + (r.counts[key] ?? 0);
    summary.peakRssBytes = Math.max(summary.peakRssBytes, r.peakRssBytes);
    summary.notes.push(...r.notes);
    if (r.failure !== undefined) summary.failure = `${summary.failure === undefined ? '' : `${summary.failure}\n`}${r.failure}`;
  }
  const median = (values: Array<number | undefined>): number | null => {
    const known = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    if (known.length === 0) return null;
    const mid = known.length >> 1;
    return known.length % 2 === 1 ? known[mid]! : Math.round((known[mid - 1]! + known[mid]!) / 2);
  };
  summary.details = {
    waves: o.waves,
    settleSeconds: o.settleSeconds,
    rounds: figures,
    rssPerIdleCarBytes: median(figures.map((f) => f.rssPerCarBytes)),
    rssBeforeGcPerIdleCarBytes: median(figures.map((f) => f.rssBeforeGcPerCarBytes)),
    heapUsedPerIdleCarBytes: median(figures.map((f) => f.heapPerCarBytes)),
    heapTotalPerIdleCarBytes: median(figures.map((f) => f.heapTotalPerCarBytes)),
    externalPerIdleCarBytes: median(figures.map((f) => f.externalPerCarBytes)),
    rssPerIdleCarSpreadBytes: figures.length > 0 ? round(Math.max(...figures.map((f) => f.rssPerCarBytes)) - Math.min(...figures.map((f) => f.rssPerCarBytes)), 0) : null,
  };
  return summary;
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
