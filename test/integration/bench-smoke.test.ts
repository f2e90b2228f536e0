import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../bench/report/result.js';

const CLI = fileURLToPath(new URL('../../bench/cli.js', import.meta.url));

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Keeps the load harness from rotting: a tiny steady fleet against the limit server and the real server,
// end to end over mutual TLS with dashboard probes, as `npm run bench` runs it (full sizes are benchmarks,
// not tests).
describe('bench harness (smoke)', function () {
  this.timeout(120_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-bench-smoke-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs 20 cars for 3 s against the limit server and ours with no loss and a well-formed report', async () => {
    const reportFile = join(dir, 'report.json');
    const { code, stdout, stderr } = await runBench([
      '--scenario', 'steady', '--servers', 'limit,ours', '--cars', '20', '--rate', '2', '--seconds', '3', '--warmup', '1',
      '--dashboards', '2', '--vins-per-dashboard', '5', '--fleet-threads', '1', '--cache-dir', join(dir, 'cache'), '--report', reportFile,
    ]);
    expect(code, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`).to.equal(0);
    expect(stdout).to.match(/== steady \(20 cars\) ==/);
    expect(stdout).to.match(/No loss/);

    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport;
    expect(report.lossDetected).to.equal(false);
    expect(report.machine.nproc).to.be.greaterThan(0);
    expect(report.results.map((r) => r.server)).to.deep.equal(['limit', 'ours']);
    for (const result of report.results) {
      expect(result.completed, result.failure).to.equal(true);
      expect(result.counts.sent).to.be.greaterThan(0);
      expect(result.counts.acked).to.equal(result.counts.sent);
      expect(result.counts.lost).to.equal(0);
      expect(result.ack.count).to.be.greaterThan(0);
      expect(result.ack.p99).to.be.at.least(result.ack.p50);
      expect(result.throughput).to.be.greaterThan(0);
      expect(result.peakRssBytes).to.be.greaterThan(0);
    }
    const ours = report.results[1];
    expect(ours.dashboard, 'car -> dashboard latency measured').to.not.equal(null);
    expect(ours.counts.dashboardExpected).to.be.greaterThan(0);
    expect(ours.counts.dashboardReceived).to.be.at.least(ours.counts.dashboardExpected);
    expect(ours.counts.dashboardLost).to.equal(0);
    const ratio = report.ratios.find((r) => r.scenario === 'steady' && r.metric === 'throughput');
    expect(ratio?.oursOverLimit).to.be.a('number');
  });
});
