import type { DashboardProbes } from '../probes/dashboard-probe.js';
import { scrapeByLabel } from '../probes/server-metrics.js';
import { sampleThreads, threadUseBetween, type ThreadsSample } from '../../tools/proc-stats.js';
import type { ScenarioResult } from '../report/result.js';
import {
  applyFleetReport, applyWindow, mark, openProbes, round, serverAckWindow, session, settleProbes, waitConnected, watch, windowBetween, type RunContext,
} from './session.js';

export interface SteadyOptions {
  cars: number;
  /** V frames per second per car. */
  rate: number;
  warmupSeconds: number;
  seconds: number;
  dashboards: number;
  vinsPerDashboard: number;
  /** Handshakes at a time per fleet thread while the fleet comes up (not a storm). */
  connectConcurrency: number;
  /** Soak: memory samples every this many seconds go into the report. */
  memorySampleSeconds?: number;
}

/**
 * A fleet that is connected and talking at a steady rate, with dashboards watching: throughput, ack
 * latency, car -> dashboard latency, server CPU and memory. As `soak`, the same run held longer with the
 * server's memory sampled along the way, to show whether it stays flat.
 */
export function runSteady(ctx: RunContext, o: SteadyOptions, name: 'steady' | 'soak' | 'sparse' = 'steady'): Promise<ScenarioResult> {
  return session(name, ctx, o.cars, async ({ server, meter, fleet, result }) => {
    let probes: DashboardProbes | null = null;
    try {
      await fleet.connect(o.connectConcurrency, { kind: 'idle' });
      if (!(await waitConnected(fleet, o.cars, 120_000, ctx))) throw new Error('not every car could connect within 120 s');
      const vins = ctx.pki.cars.slice(0, o.cars).map((car) => car.vin);
      probes = await openProbes(ctx, server, result, vins, o.dashboards, o.vinsPerDashboard);

      await fleet.setMode({ kind: 'steady', intervalMs: 1000 / o.rate });
      await watch('warm-up', o.warmupSeconds, fleet, meter, ctx);
      await fleet.resetLatency();
      probes?.resetLatency();
      const startSample = meter.samples.length;
      const serverAck = await serverAckWindow(server);
      const countsAtStart = await serverCounts(server.metricsPort);
      const start = await mark(fleet, meter);
      const threadsAtStart = threadsOf(server.pid);
      await watch(name, o.seconds, fleet, meter, ctx);
      const end = await mark(fleet, meter);
      const threadsAtEnd = threadsOf(server.pid);
      const countsAtEnd = await serverCounts(server.metricsPort);
      const serverAckLatencyMs = await serverAck();
      await fleet.setMode({ kind: 'idle' });
      ctx.progress(`${ctx.kind} draining`);
      await fleet.drain(20_000);
      const report = await fleet.report();

      applyWindow(result, windowBetween(start, end));
      applyFleetReport(result, report);
      result.ack = report.ackLatency;
      if (probes !== null) await settleProbes(probes, report, result, 10_000);
      result.details = {
        ratePerCar: o.rate,
        offeredRecordsPerSecond: round(o.cars * o.rate, 0),
        vinsPerDashboard: o.vinsPerDashboard,
        rssAtStartBytes: meter.samples[0]?.rssBytes ?? 0,
        rssAtEndBytes: end.server.rssBytes,
        serverAckLatencyMs,
      };
      const acked = end.counters.acked - start.counters.acked;
      // Where the server's CPU went, thread by thread (ours names its threads: v8-platform, decode-worker, libuv-worker).
      if (threadsAtStart !== null && threadsAtEnd !== null) result.details.threads = threadUseBetween(threadsAtStart, threadsAtEnd, acked);
      if (countsAtStart !== null && countsAtEnd !== null) {
        const seconds = (end.at - start.at) / 1000;
        result.details.gcPerSecond = Object.fromEntries([...countsAtEnd.counts].map(([kind, n]) => [kind, round((n - (countsAtStart.counts.get(kind) ?? 0)) / seconds, 2)]));
        // The main thread's GC pauses (prom-client times them there), per record: what the window's GC timing adds to its figure.
        let pauses = 0;
        for (const [kind, s] of countsAtEnd.seconds) pauses += s - (countsAtStart.seconds.get(kind) ?? 0);
        result.details.gcPauseMicrosPerRecord = acked > 0 ? round((pauses * 1e6) / acked, 2) : null;
        result.details.decodeBatchesPerSecond = Object.fromEntries([...countsAtEnd.batches].map(([path, n]) => [path, round((n - (countsAtStart.batches.get(path) ?? 0)) / seconds, 1)]));
      }
      if (o.memorySampleSeconds !== undefined) {
        // The meter samples every second and at every progress mark: keep one sample per interval.
        const everyMs = Math.max(1, o.memorySampleSeconds) * 1000;
        const window = meter.samples.slice(startSample);
        const t0 = window[0]?.at ?? 0;
        let next = t0;
        const series = window.filter((sample) => {
          if (sample.at < next) return false;
          next += everyMs * Math.max(1, Math.floor((sample.at - next) / everyMs) + 1);
          return true;
        });
        result.details.memorySeries = series.map((s) => ({ seconds: Math.round((s.at - t0) / 1000), rssBytes: s.rssBytes, cpuSeconds: round(s.cpuSeconds, 2) }));
        const quarter = Math.max(1, Math.floor(series.length / 4));
        const mean = (xs: typeof series): number => xs.reduce((sum, s) => sum + s.rssBytes, 0) / Math.max(1, xs.length);
        result.details.rssGrowthFirstToLastQuarterBytes = Math.round(mean(series.slice(-quarter)) - mean(series.slice(0, quarter)));
      }
    } finally {
      await probes?.close();
    }
  });
}

function threadsOf(pid: number): ThreadsSample | null {
  try {
    return sampleThreads(pid);
  } catch {
    return null; // not Linux, or the server is gone: the process figure stands alone
  }
}

/**
 * Ours, from one scrape of its /metrics: its GCs so far by kind (minor, major, incremental, weakcb) and
 * their summed pauses (prom-client's series), its decode batches by path (inline or worker); null for
 * the baselines.
 */
async function serverCounts(metricsPort: number | null): Promise<{ counts: Map<string, number>; seconds: Map<string, number>; batches: Map<string, number> } | null> {
  if (metricsPort === null) return null;
  try {
    const [counts, seconds, batches] = await scrapeByLabel(metricsPort, [
      ['fleet_telemetry_nodejs_gc_duration_seconds_count', 'kind'],
      ['fleet_telemetry_nodejs_gc_duration_seconds_sum', 'kind'],
      ['fleet_telemetry_decode_batches_total', 'path'],
    ]);
    return { counts: counts!, seconds: seconds!, batches: batches! };
  } catch {
    return null;
  }
}
