import type { ScenarioResult } from '../report/result.js';
import { sleep } from '../servers/server-under-test.js';
import { harnessCpuSeconds } from '../../tools/proc-stats.js';
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
  return session('storm', ctx, o.cars, async ({ meter, fleet, result }) => {
    await sleep(1000);
    const before = meter.take();
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
    if (!allReady) result.notes.push(`only ${counters.readyCars}/${o.cars} cars connected and acked within ${o.timeoutSeconds} s`);
  });
}
