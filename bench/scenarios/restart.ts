import { Fleet } from '../fleet/fleet.js';
import type { ScenarioResult } from '../report/result.js';
import { startServerUnderTest, type ServerUnderTest } from '../servers/server-under-test.js';
import type { LatencySummary } from '../stats/latency.js';
import { applyFleetReport, applyWindow, emptyResult, mark, round, ServerMeter, waitConnected, watch, windowBetween, type RunContext } from './session.js';

export interface RestartOptions {
  cars: number;
  rate: number;
  warmupSeconds: number;
  /** Seconds measured before the handover (the baseline) and again from its start. */
  seconds: number;
  connectConcurrency: number;
}

/**
 * A rolling restart under the steady load: a second process of ours starts on the same ports while the
 * first runs (SO_REUSEPORT), and once it is up the first gets SIGTERM and drains (stops accepting,
 * replies to what it received, closes its cars with "going away"). The cars reconnect to the new
 * process and resend what was in flight. Measured: records sent and never acked after the drain (must
 * be 0), connection failures and error replies the cars met, and the ack latency before and during the
 * handover.
 */
export async function runRestart(ctx: RunContext, o: RestartOptions): Promise<ScenarioResult> {
  const result = emptyResult('restart', 'ours', o.cars);
  let first: ServerUnderTest | null = null;
  let second: ServerUnderTest | null = null;
  let fleet: Fleet | null = null;
  const meters: ServerMeter[] = [];
  try {
    first = await startServerUnderTest({ kind: 'ours', pki: ctx.pki.files, env: ctx.serverEnv, nodeFlags: ctx.serverNodeFlags });
    const firstMeter = new ServerMeter(first);
    meters.push(firstMeter);
    fleet = new Fleet({
      url: `wss://127.0.0.1:${first.vehiclePort}/`,
      servername: 'localhost',
      caChainPem: ctx.pki.caChainPem,
      cars: ctx.pki.cars.slice(0, o.cars),
      threads: ctx.fleetThreads,
      localAddresses: ctx.localAddresses,
    });
    await fleet.counters();
    await fleet.connect(o.connectConcurrency, { kind: 'idle' });
    if (!(await waitConnected(fleet, o.cars, 120_000, ctx))) throw new Error('not every car could connect within 120 s');
    await fleet.setMode({ kind: 'steady', intervalMs: 1000 / o.rate });
    await watch('warm-up', o.warmupSeconds, fleet, firstMeter, ctx);

    await fleet.resetLatency();
    const baselineStart = await mark(fleet, firstMeter);
    await watch('before handover', o.seconds, fleet, firstMeter, ctx);
    const baselineEnd = await mark(fleet, firstMeter);
    const before = (await fleet.report()).ackLatency;
    const countersBefore = (await fleet.counters()).counters;

    // The handover: the new process binds the same ports beside the old one, then the old one drains.
    await fleet.resetLatency();
    const handoverStarted = performance.now();
    ctx.progress('restart: starting the new process on the same ports');
    second = await startServerUnderTest({
      kind: 'ours',
      pki: ctx.pki.files,
      // info, so the new process says when it is up (its ports already answer: the old one's).
      env: { ...ctx.serverEnv, LOG_LEVEL: 'info' },
      nodeFlags: ctx.serverNodeFlags,
      ports: { vehicle: first.vehiclePort, dashboard: first.dashboardPort ?? 0, metrics: first.metricsPort ?? 0 },
      readyWhenOutput: '"event":"server_started"',
    });
    meters.push(new ServerMeter(second));
    const newUpMs = performance.now() - handoverStarted;
    ctx.progress('restart: SIGTERM to the old process');
    const drainStarted = performance.now();
    await first.stop();
    const oldGoneMs = performance.now() - drainStarted;
    firstMeter.stop();
    const duringMeter = meters[1]!;
    await watch('after handover', o.seconds, fleet, duringMeter, ctx);
    const during: LatencySummary = (await fleet.report()).ackLatency;
    const countersAfter = (await fleet.counters()).counters;

    await fleet.setMode({ kind: 'idle' });
    ctx.progress('restart: draining');
    await fleet.drain(30_000);
    const report = await fleet.report();
    applyWindow(result, windowBetween(baselineStart, baselineEnd));
    applyFleetReport(result, report);
    result.ack = before;
    result.details = {
      ratePerCar: o.rate,
      offeredRecordsPerSecond: round(o.cars * o.rate, 0),
      newProcessUpMs: round(newUpMs, 0),
      oldProcessDrainedMs: round(oldGoneMs, 0),
      ackBeforeHandoverMs: before,
      ackDuringHandoverMs: during,
      handoverWindowSeconds: o.seconds,
      reconnects: countersAfter.connects - countersBefore.connects,
      disconnectsInHandover: countersAfter.disconnects - countersBefore.disconnects,
      connectFailuresInHandover: countersAfter.connectFailures - countersBefore.connectFailures,
      errorRepliesInHandover: countersAfter.errorReplies - countersBefore.errorReplies,
      resentInHandover: countersAfter.resent - countersBefore.resent,
    };
    result.notes.push('in-process bus: lost = records a car sent and never got acked after the drain (resends included)');
    result.completed = true;
  } catch (error) {
    const tails = [first, second].filter((s): s is ServerUnderTest => s !== null).map((s) => s.outputTail().slice(-1500)).join('\n---\n');
    result.failure = `${(error as Error).message}\n${tails}`;
  } finally {
    await fleet?.close().catch(() => undefined);
    let peak = 0;
    for (const meter of meters) {
      try {
        meter.take();
      } catch {
        // gone: the samples so far stand
      }
      meter.stop();
      peak = Math.max(peak, meter.peakRssBytes);
    }
    result.peakRssBytes = peak;
    await first?.stop();
    await second?.stop();
  }
  return result;
}

