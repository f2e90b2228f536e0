import type { ScenarioResult } from '../report/result.js';
import { sleep } from '../servers/server-under-test.js';
import { harnessCpuSeconds } from '../../tools/proc-stats.js';
import { scrapeValue } from '../probes/server-metrics.js';
import { applyFleetReport, round, session, waitConnected, type RunContext } from './session.js';

export interface StormOptions {
  cars: number;
  /** How long to wait for every car to be connected and acked before calling it failed. */
  timeoutSeconds: number;
  /** Idle time after the storm before memory per car is read. */
  settleSeconds: number;
}

/**
 * Every car at once: all sockets opened together, each sends one V record as soon as it is connected.
 * Measures the time until the last car has its ack, then, with every car idle and connected, the
 * server's memory per connected car.
 */
export function runStorm(ctx: RunContext, o: StormOptions): Promise<ScenarioResult> {
  return session('storm', ctx, o.cars, async ({ server, meter, fleet, result }) => {
    await sleep(1000);
    const before = meter.take();
    const heapBefore = await heapOf(server.metricsPort);
    const started = Date.now();
    const startedCpu = before.cpuSeconds;
    const harnessStartedCpu = harnessCpuSeconds();
    const connecting = fleet.connect(Number.MAX_SAFE_INTEGER, { kind: 'once' });
    const allReady = await waitConnected(fleet, o.cars, o.timeoutSeconds * 1000, ctx, 'ready');
    await connecting;
    const { counters } = await fleet.counters();
    const readySeconds = allReady ? (counters.lastReadyAt - started) / 1000 : NaN;
    const afterStorm = meter.take();
    const harnessCpu = harnessCpuSeconds() - harnessStartedCpu;
    await sleep(o.settleSeconds * 1000);
    const idle = meter.take();
    const heapIdle = await heapOf(server.metricsPort);
    await fleet.drain(10_000);
    const report = await fleet.report();
    applyFleetReport(result, report);
    result.ack = report.ackLatency;
    result.windowSeconds = round((afterStorm.at - started) / 1000, 2);
    result.throughput = allReady ? round(o.cars / readySeconds, 1) : 0;
    result.serverCpuCores = round((afterStorm.cpuSeconds - startedCpu) / Math.max(0.001, (afterStorm.at - started) / 1000), 3);
    result.recordsPerServerCpuSecond = round(report.counters.acked / Math.max(0.001, afterStorm.cpuSeconds - startedCpu), 0);
    result.harnessCpuCores = round(harnessCpu / Math.max(0.001, (afterStorm.at - started) / 1000), 3);
    const perCar = (idle.rssBytes - before.rssBytes) / o.cars;
    result.details = {
      allConnectedAndAcked: allReady,
      readySeconds: round(readySeconds, 2),
      connectedCars: counters.connected,
      readyCars: counters.readyCars,
      rssBeforeBytes: before.rssBytes,
      rssIdleAfterBytes: idle.rssBytes,
      rssPerIdleCarBytes: Math.round(perCar),
    };
    // Ours only (the baselines have no /metrics): what of the RSS is V8's heap and its external buffers.
    if (heapBefore !== null && heapIdle !== null) {
      result.details.heapUsedPerIdleCarBytes = Math.round((heapIdle.used - heapBefore.used) / o.cars);
      result.details.externalPerIdleCarBytes = Math.round((heapIdle.external - heapBefore.external) / o.cars);
      result.details.heapUsedIdleAfterBytes = heapIdle.used;
    }
    if (!allReady) result.notes.push(`only ${counters.readyCars}/${o.cars} cars connected and acked within ${o.timeoutSeconds} s`);
  });
}

/** Our server's V8 heap in use and its external memory (ArrayBuffers), from its /metrics; null for the baselines. */
async function heapOf(metricsPort: number | null): Promise<{ used: number; external: number } | null> {
  if (metricsPort === null) return null;
  const [used, external] = await Promise.all([
    scrapeValue(metricsPort, 'fleet_telemetry_nodejs_heap_size_used_bytes').catch(() => null),
    scrapeValue(metricsPort, 'fleet_telemetry_nodejs_external_memory_bytes').catch(() => null),
  ]);
  return used === null || external === null ? null : { used, external };
}
