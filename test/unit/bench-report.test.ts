import { expect } from 'chai';
import { markedAsResend } from '../../bench/fleet/frames.js';
import { checkTargets, lossIn, ratiosOf, renderReport } from '../../bench/report/render.js';
import type { BenchReport, ScenarioResult } from '../../bench/report/result.js';
import { emptyResult } from '../../bench/scenarios/session.js';
import { summariseSparseRounds } from '../../bench/scenarios/sparse.js';
import { LatencyRecorder, mergeLatencies } from '../../bench/stats/latency.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';

function result(scenario: ScenarioResult['scenario'], server: ScenarioResult['server'], throughput: number, extra: Partial<ScenarioResult> = {}): ScenarioResult {
  return { ...emptyResult(scenario, server, 100), completed: true, throughput, recordsPerServerCpuSecond: throughput * 2, ...extra };
}

describe('bench report', () => {
  it('computes ours/limit and ours/naive ratios per scenario', () => {
    const ratios = ratiosOf([result('saturation', 'limit', 100_000), result('saturation', 'naive', 20_000), result('saturation', 'ours', 50_000)]);
    const throughput = ratios.find((r) => r.metric === 'throughput');
    expect(throughput).to.deep.include({ scenario: 'saturation', oursOverLimit: 0.5, oursOverNaive: 2.5 });
  });

  it('leaves a ratio out when a baseline run failed', () => {
    const failedNaive = { ...result('saturation', 'naive', 20_000), completed: false };
    const ratios = ratiosOf([result('saturation', 'limit', 100_000), failedNaive, result('saturation', 'ours', 40_000)]);
    expect(ratios.find((r) => r.metric === 'throughput')).to.deep.include({ oursOverLimit: 0.4, oursOverNaive: null });
  });

  it('checks the targets against what was measured, and misses are reported as such', () => {
    const results = [
      result('saturation', 'limit', 100_000),
      result('saturation', 'naive', 30_000),
      result('saturation', 'ours', 40_000),
      result('storm', 'ours', 500, { details: { readySeconds: 22, rssPerIdleCarBytes: 25_000 } }),
    ];
    const targets = checkTargets(results, ratiosOf(results));
    const byName = new Map(targets.map((t) => [t.name, t.met]));
    expect(byName.get('saturation throughput vs limit')).to.equal(false);
    expect(byName.get('saturation throughput vs naive')).to.equal(false);
    expect(byName.get('memory per idle connected car')).to.equal(true);
    expect(targets.find((t) => t.name.startsWith('connect storm'))?.met).to.equal(true);
  });

  it('reports the median of alternating sparse rounds, pairs each with the limit round beside it, and keeps every loss', () => {
    const round = (server: 'limit' | 'ours' | 'other', micros: number, lost = 0): ScenarioResult => {
      const r = result('sparse', server, 1000, { recordsPerServerCpuSecond: 1e6 / micros, details: { serverCpuMicrosPerRecord: micros } });
      r.counts.lost = lost;
      return r;
    };
    const limit = [round('limit', 40), round('limit', 50), round('limit', 45)];
    const ours = summariseSparseRounds([round('ours', 100), round('ours', 80, 2), round('ours', 120)], limit);
    expect(ours.completed).to.equal(true);
    expect(ours.details.serverCpuMicrosPerRecord).to.equal(100);
    expect(ours.details.medianRound).to.equal(1);
    expect(ours.details.cpuPerRecordOverLimitByRound).to.deep.equal([2.5, 1.6, 2.67]);
    expect(ours.counts.lost, 'a loss in a round that is not the median still counts').to.equal(2);
    expect(lossIn([ours])).to.equal(true);
    const limitSummary = summariseSparseRounds(limit, undefined);
    expect(limitSummary.details.serverCpuMicrosPerRecord).to.equal(45);
    expect(ratiosOf([limitSummary, ours]).find((r) => r.metric === 'server CPU per record')?.oursOverLimit).to.equal(2.22);

    const other = [round('other', 80), round('other', 100), round('other', 96)];
    const oursOverOther = summariseSparseRounds([round('ours', 100), round('ours', 80), round('ours', 120)], limit, other);
    expect(oursOverOther.details.cpuPerRecordOverOtherByRound, 'each round over the other build\'s round beside it').to.deep.equal([1.25, 0.8, 1.25]);
    expect(ours.details.cpuPerRecordOverOtherByRound).to.equal(undefined);

    const failed = { ...round('ours', 90), completed: false, failure: 'server exited' };
    const withFailure = summariseSparseRounds([round('ours', 100), failed, round('ours', 110)], limit);
    expect(withFailure.completed, 'a failed round fails the result').to.equal(false);
    expect(withFailure.failure).to.equal('server exited');
  });

  it('flags loss from unacked records and from records dashboards never got', () => {
    const clean = result('steady', 'ours', 10);
    const unacked = result('steady', 'ours', 10);
    unacked.counts.lost = 1;
    const dashboard = result('steady', 'ours', 10);
    dashboard.counts.dashboardLost = 3;
    expect(lossIn([clean])).to.equal(false);
    expect(lossIn([clean, unacked])).to.equal(true);
    expect(lossIn([dashboard])).to.equal(true);
  });

  it('renders a table with a row per server and a failed run with its reason', () => {
    const failed = { ...result('steady', 'naive', 0), completed: false, failure: 'naive server exited during start' };
    const report: BenchReport = {
      startedAt: '', finishedAt: '', command: 'x', options: {},
      machine: { nproc: 2, cpuModel: 'cpu', node: 'v20', platform: 'linux x64', totalMemoryBytes: 2 ** 30, openFilesLimit: '20000' },
      results: [result('steady', 'ours', 9_876), failed],
      ratios: [], targets: [], lossDetected: false,
    };
    const text = renderReport(report);
    expect(text).to.match(/== steady \(100 cars\) ==/);
    expect(text).to.match(/ours\s+9876/);
    expect(text).to.include('FAILED: naive server exited during start');
  });
});

describe('bench latency histograms', () => {
  it('merges histograms from several threads exactly', () => {
    const a = new LatencyRecorder();
    const b = new LatencyRecorder();
    for (let i = 1; i <= 99; i++) a.recordMs(1);
    b.recordMs(500);
    const merged = mergeLatencies([a.encode(), b.encode()]);
    expect(merged.count).to.equal(100);
    expect(merged.p50).to.be.closeTo(1, 0.01);
    expect(merged.max).to.be.closeTo(500, 1);
  });

  it('ignores readings that are not latencies', () => {
    const r = new LatencyRecorder();
    r.recordMs(Number.NaN);
    r.recordMs(-3);
    expect(r.count).to.equal(0);
  });
});

describe('bench car resends', () => {
  it('sets is_resend on a V payload without re-encoding it, and leaves other topics alone', () => {
    const payload = encodeVehicleData({ vin: '5YJBENCH000000001', createdAt: new Date(0), data: [{ key: 'Soc', value: { doubleValue: 50 } }] });
    expect(decodeRecord('V', payload, '5YJBENCH000000001').isResend).to.equal(false);
    expect(decodeRecord('V', markedAsResend({ topic: 'V', payload }), '5YJBENCH000000001').isResend).to.equal(true);
    const alerts = new Uint8Array([1, 2, 3]);
    expect(markedAsResend({ topic: 'alerts', payload: alerts })).to.equal(alerts);
  });
});
