import type { ScenarioResult } from '../report/result.js';
import { LatencyRecorder } from '../stats/latency.js';
import { applyFleetReport, applyWindow, mark, round, serverAckWindow, session, waitConnected, watch, windowBetween, type RunContext, type Window } from './session.js';

export interface SaturationOptions {
  cars: number;
  /** Records each car keeps in flight, tried in this order until throughput stops rising. */
  windows: number[];
  stageSeconds: number;
  /** A stage must beat the best so far by this fraction to count as still rising. */
  minGain: number;
}

interface Stage extends Window {
  window: number;
  ackP50: number;
  ackP99: number;
  serverAckP99: number | null;
}

/**
 * Pipelined cars: each keeps `window` records in flight and sends the next as a reply comes back. The
 * window doubles stage by stage until throughput stops rising; the best stage is the result.
 */
export function runSaturation(ctx: RunContext, o: SaturationOptions): Promise<ScenarioResult> {
  return session('saturation', ctx, o.cars, async ({ server, meter, fleet, result }) => {
    await fleet.connect(64, { kind: 'idle' });
    if (!(await waitConnected(fleet, o.cars, 60_000, ctx))) throw new Error('not every car could connect within 60 s');
    const stages: Stage[] = [];
    let best: Stage | null = null;
    let bestLatency = '';
    let flat = 0;
    for (const window of o.windows) {
      await fleet.setMode({ kind: 'pipelined', window });
      await watch(`window ${window} settle`, 1, fleet, meter, ctx);
      await fleet.resetLatency();
      const serverAck = await serverAckWindow(server);
      const start = await mark(fleet, meter);
      await watch(`window ${window}`, o.stageSeconds, fleet, meter, ctx);
      const end = await mark(fleet, meter);
      const serverAckLatencyMs = await serverAck();
      const report = await fleet.report();
      const stage: Stage = { window, ...windowBetween(start, end), ackP50: report.ackLatency.p50, ackP99: report.ackLatency.p99, serverAckP99: serverAckLatencyMs?.p99 ?? null };
      stages.push(stage);
      // On a shared machine one stage can dip by chance: stop after two stages in a row that do not rise.
      const rising = best === null || stage.throughput > best.throughput * (1 + o.minGain);
      if (best === null || stage.throughput > best.throughput) {
        best = stage;
        bestLatency = JSON.stringify(report.ackLatency);
      }
      flat = rising ? 0 : flat + 1;
      if (flat >= 2) break;
    }
    await fleet.setMode({ kind: 'idle' });
    ctx.progress(`${ctx.kind} draining`);
    await fleet.drain(20_000);
    const report = await fleet.report();
    applyFleetReport(result, report);
    if (best !== null) {
      applyWindow(result, best);
      result.ack = JSON.parse(bestLatency) as ScenarioResult['ack'];
    } else {
      result.ack = new LatencyRecorder().summary();
    }
    result.details = {
      bestWindow: best?.window ?? null,
      stages: stages.map((s) => ({
        window: s.window,
        throughput: round(s.throughput, 0),
        serverCpuCores: round(s.serverCpuCores, 2),
        recordsPerServerCpuSecond: round(s.recordsPerServerCpuSecond, 0),
        harnessCpuCores: round(s.harnessCpuCores, 2),
        ackP50: s.ackP50,
        ackP99: s.ackP99,
        serverAckP99: s.serverAckP99,
      })),
    };
  });
}
