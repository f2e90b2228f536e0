import type { DashboardProbes } from '../probes/dashboard-probe.js';
import type { ScenarioResult } from '../report/result.js';
import {
  applyFleetReport, applyWindow, mark, openProbes, round, serverAckWindow, session, settleProbes, waitConnected, watch, windowBetween, type RunContext,
} from './session.js';

export interface FanoutOptions {
  cars: number;
  dashboards: number;
  /** Dashboards watching each car. */
  watchersPerCar: number;
  rate: number;
  warmupSeconds: number;
  seconds: number;
}

/**
 * Many dashboards over many cars with overlapping grants (each car watched by `watchersPerCar`
 * dashboards, each dashboard a different mix of cars): the cost of fanning records out. Reports
 * dashboard messages per second and per server CPU second, and car -> dashboard latency.
 */
export function runFanout(ctx: RunContext, o: FanoutOptions): Promise<ScenarioResult> {
  return session('fanout', ctx, o.cars, async ({ server, meter, fleet, result }) => {
    let probes: DashboardProbes | null = null;
    try {
      await fleet.connect(100, { kind: 'idle' });
      if (!(await waitConnected(fleet, o.cars, 120_000, ctx))) throw new Error('not every car could connect within 120 s');
      const vins = ctx.pki.cars.slice(0, o.cars).map((car) => car.vin);
      const watches = overlappingWatches(vins, o.dashboards, o.watchersPerCar);
      probes = await openProbes(ctx, server, result, vins, o.dashboards, watches[0]?.length ?? 0, watches);
      if (probes === null) throw new Error('fanout needs a server with dashboards');

      await fleet.setMode({ kind: 'steady', intervalMs: 1000 / o.rate });
      await watch('warm-up', o.warmupSeconds, fleet, meter, ctx);
      await fleet.resetLatency();
      probes.resetLatency();
      const serverAck = await serverAckWindow(server);
      const start = await mark(fleet, meter);
      const receivedAtStart = probes.report().received;
      await watch('fanout', o.seconds, fleet, meter, ctx);
      const end = await mark(fleet, meter);
      const received = probes.report().received - receivedAtStart;
      const serverAckLatencyMs = await serverAck();
      await fleet.setMode({ kind: 'idle' });
      ctx.progress(`${ctx.kind} draining`);
      await fleet.drain(20_000);
      const report = await fleet.report();

      const w = windowBetween(start, end);
      applyWindow(result, w);
      applyFleetReport(result, report);
      result.ack = report.ackLatency;
      await settleProbes(probes, report, result, 15_000);
      const serverCpuSeconds = end.server.cpuSeconds - start.server.cpuSeconds;
      result.details = {
        dashboards: o.dashboards,
        watchersPerCar: o.watchersPerCar,
        vinsPerDashboard: watches[0]?.length ?? 0,
        dashboardMessagesPerSecond: round(received / w.seconds, 0),
        dashboardMessagesPerServerCpuSecond: serverCpuSeconds > 0 ? round(received / serverCpuSeconds, 0) : 0,
        serverAckLatencyMs,
      };
    } finally {
      await probes?.close();
    }
  });
}

/**
 * Dashboard d watches cars d*n/D + offset_i (mod n) for k distinct offsets: with D = n every car is
 * watched by exactly k dashboards, and two dashboards share some cars but not all (the offsets are
 * spread unevenly, so no two dashboards watch the same set).
 */
export function overlappingWatches(vins: string[], dashboards: number, watchersPerCar: number): string[][] {
  const n = vins.length;
  const k = Math.max(1, Math.min(n, Math.ceil((n * watchersPerCar) / Math.max(1, dashboards))));
  const offsets: number[] = [];
  for (let i = 0, next = 0; offsets.length < k; i++) {
    // Triangular-number steps: distinct offsets whose differences are all different.
    const offset = next % n;
    if (!offsets.includes(offset)) offsets.push(offset);
    next += i + 1;
    if (i > 4 * n) for (let j = 0; offsets.length < k; j++) if (!offsets.includes(j)) offsets.push(j);
  }
  return Array.from({ length: dashboards }, (_, d) => {
    const base = Math.floor((d * n) / dashboards);
    return offsets.map((offset) => vins[(base + offset) % n]!);
  });
}
