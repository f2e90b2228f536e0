import { expect } from 'chai';
import { storedVersusAcked } from '../../bench/probes/stream-count.js';
import { lossIn, ratiosOf, renderReport } from '../../bench/report/render.js';
import type { BenchReport, ScenarioResult } from '../../bench/report/result.js';
import { emptyResult } from '../../bench/scenarios/session.js';

describe('bench NATS scenario: stream against acks', () => {
  it('counts car topics per VIN and ignores connectivity records and other prefixes', () => {
    const subjects = {
      'telemetry.VIN1.V': 10,
      'telemetry.VIN1.alerts': 1,
      'telemetry.VIN1.connectivity': 2,
      'telemetry.VIN2.V': 5,
      'other.VIN2.V': 99,
    };
    const acked = new Map([['VIN1', 11], ['VIN2', 5]]);
    expect(storedVersusAcked(subjects, 'telemetry', acked)).to.deep.equal({ carRecords: 16, acked: 16, missing: 0, extra: 0 });
  });

  it('reports acked records missing from the stream per VIN, and extra ones apart', () => {
    const subjects = { 'telemetry.VIN1.V': 8, 'telemetry.VIN2.V': 7 };
    const acked = new Map([['VIN1', 10], ['VIN2', 5], ['VIN3', 1]]);
    // VIN2's surplus must not hide VIN1's and VIN3's shortfall.
    expect(storedVersusAcked(subjects, 'telemetry', acked)).to.deep.equal({ carRecords: 15, acked: 16, missing: 3, extra: 2 });
  });

  it('reads escaped subject tokens back to VINs', () => {
    expect(storedVersusAcked({ 'fleet.a.VIN~2E1.V': 3 }, 'fleet.a', new Map([['VIN.1', 3]])).missing).to.equal(0);
  });

  it('treats records missing from the stream as loss, and computes nats/in-process ratios', () => {
    const inProcess: ScenarioResult = { ...emptyResult('nats', 'ours', 10), completed: true, throughput: 100 };
    const nats: ScenarioResult = { ...emptyResult('nats', 'ours-nats', 10), completed: true, throughput: 80 };
    nats.counts.storedMissing = 0;
    expect(lossIn([inProcess, nats])).to.equal(false);
    nats.counts.storedMissing = 1;
    expect(lossIn([inProcess, nats])).to.equal(true);
    const ratios = ratiosOf([inProcess, nats]);
    expect(ratios.find((r) => r.metric === 'throughput')?.natsOverInProcess).to.equal(0.8);
    const report: BenchReport = {
      startedAt: '', finishedAt: '', command: 'x', options: {},
      machine: { nproc: 2, cpuModel: 'cpu', node: 'v20', platform: 'linux x64', totalMemoryBytes: 2 ** 30, openFilesLimit: '20000' },
      results: [inProcess, nats], ratios, targets: [], lossDetected: true,
    };
    expect(renderReport(report)).to.match(/ratios \(ours-nats\/ours in-process\): throughput 0\.8x/);
  });
});
