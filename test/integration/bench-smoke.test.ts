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
    const ours = report.results[1]!;
    expect(ours.dashboard, 'car -> dashboard latency measured').to.not.equal(null);
    expect(ours.counts.dashboardExpected).to.be.greaterThan(0);
    expect(ours.counts.dashboardReceived).to.be.at.least(ours.counts.dashboardExpected);
    expect(ours.counts.dashboardLost).to.equal(0);
    const ratio = report.ratios.find((r) => r.scenario === 'steady' && r.metric === 'throughput');
    expect(ratio?.oursOverLimit).to.be.a('number');
  });

  // 1,000 records a round: the limit server's CPU over a 2 s window must reach whole 10 ms ticks of /proc, or its ratio is null.
  it('runs sparse in alternating rounds and reports the median round of each server', async () => {
    const reportFile = join(dir, 'sparse.json');
    const { code, stdout, stderr } = await runBench([
      '--scenario', 'sparse', '--servers', 'limit,ours', '--sparse-cars', '50', '--sparse-rounds', '2', '--rate', '10', '--seconds', '2', '--warmup', '1',
      '--fleet-threads', '1', '--cache-dir', join(dir, 'cache'), '--report', reportFile,
    ]);
    expect(code, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`).to.equal(0);
    expect(stderr).to.match(/sparse against limit, round 1\/2[\s\S]*sparse against ours, round 1\/2[\s\S]*sparse against limit, round 2\/2[\s\S]*sparse against ours, round 2\/2/);
    expect(stdout).to.match(/median of 2 rounds/);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport;
    expect(report.lossDetected).to.equal(false);
    expect(report.results.map((r) => r.server)).to.deep.equal(['limit', 'ours']);
    for (const result of report.results) {
      expect(result.completed, result.failure).to.equal(true);
      expect(result.details.rounds).to.have.length(2);
      expect(result.details.serverCpuMicrosPerRecord).to.be.a('number');
    }
    expect(report.results[1]!.details.cpuPerRecordOverLimitByRound).to.have.length(2);
    // Where the server's CPU went: the main thread for both servers; ours' named decode worker, its GCs and batches.
    const threadGroups = (r: (typeof report.results)[number]): string[] => (r.details.threads as Array<{ group: string }>).map((g) => g.group);
    expect(threadGroups(report.results[0]!)).to.include('main');
    expect(threadGroups(report.results[1]!)).to.include.members(['main', 'v8-platform', 'decode-worker']);
    expect(report.results[1]!.details.gcPerSecond).to.be.an('object');
    expect(report.results[1]!.details.decodeBatchesPerSecond).to.be.an('object');
    expect(stderr).to.match(/sparse against ours, µs per record by thread: main /);
    expect(report.ratios.find((r) => r.scenario === 'sparse' && r.metric === 'server CPU per record')?.oursOverLimit).to.be.a('number');
  });

  it('runs sparse against another build of ours (--other-build), the rounds alternating, with ours over other per round', async () => {
    // This checkout as the other build: the same code both ways, so only the mechanics are checked here.
    const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
    const reportFile = join(dir, 'sparse-other.json');
    const { code, stdout, stderr } = await runBench([
      '--scenario', 'sparse', '--servers', 'other,ours', '--other-build', repoRoot, '--sparse-cars', '30', '--sparse-rounds', '2', '--rate', '10', '--seconds', '2', '--warmup', '1',
      '--fleet-threads', '1', '--cache-dir', join(dir, 'cache'), '--report', reportFile,
    ]);
    expect(code, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`).to.equal(0);
    expect(stderr).to.match(/sparse against other, round 1\/2[\s\S]*sparse against ours, round 1\/2[\s\S]*sparse against other, round 2\/2[\s\S]*sparse against ours, round 2\/2/);
    expect(stderr, 'the other build is ours: its threads and GCs are read too').to.match(/sparse against other, µs per record by thread: main [\s\S]*sparse against other, GCs per second: /);
    expect(stdout).to.match(/vs the other build's round beside it [0-9.]+x, [0-9.]+x \(median [0-9.]+x\)/);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport;
    expect(report.results.map((r) => r.server)).to.deep.equal(['other', 'ours']);
    expect(report.results[1]!.details.cpuPerRecordOverOtherByRound).to.have.length(2);
    expect(report.results[0]!.details.cpuPerRecordOverOtherByRound).to.equal(undefined);

    const missing = await runBench(['--scenario', 'sparse', '--servers', 'other,ours', '--cache-dir', join(dir, 'cache')]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/--servers names other without --other-build DIR/);
    const unbuilt = await runBench(['--scenario', 'sparse', '--servers', 'other,ours', '--other-build', dir, '--cache-dir', join(dir, 'cache')]);
    expect(unbuilt.code).to.equal(2);
    expect(unbuilt.stderr).to.match(/has no dist\/main\.js/);
  });

  it('measures memory per idle car in waves, after a GC asked for through the inspector, for the limit server and ours', async () => {
    const reportFile = join(dir, 'idle-memory.json');
    const { code, stdout, stderr } = await runBench([
      '--scenario', 'idle-memory', '--servers', 'limit,ours', '--memory-cars', '60', '--memory-waves', '3', '--memory-rounds', '1',
      '--memory-settle', '0', '--fleet-threads', '1', '--cache-dir', join(dir, 'cache'), '--report', reportFile,
    ]);
    expect(code, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`).to.equal(0);
    expect(stdout).to.match(/== idle-memory \(60 cars\) ==/);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport;
    expect(report.results.map((r) => r.server)).to.deep.equal(['limit', 'ours']);
    for (const result of report.results) {
      expect(result.completed, result.failure).to.equal(true);
      expect(result.counts.acked).to.equal(60);
      const rounds = result.details.rounds as Array<{ points: Array<{ cars: number; rssBytes: number; heapUsedBytes: number }> }>;
      expect(rounds).to.have.length(1);
      expect(rounds[0]!.points.map((p) => p.cars)).to.deep.equal([20, 40, 60]);
      for (const point of rounds[0]!.points) {
        expect(point.rssBytes).to.be.greaterThan(0);
        expect(point.heapUsedBytes, 'heap read through the inspector').to.be.greaterThan(0);
      }
      expect(result.details.rssPerIdleCarBytes).to.be.a('number');
    }
    expect(report.results[1]!.details.externalPerIdleCarBytes, 'ours: external memory from /metrics').to.be.a('number');
  });

  // A real nats-server (scripts/install-test-deps.sh) and three server processes: the in-process
  // baseline, then two instances sharing JetStream with dashboards on B watching A's cars.
  it('runs the NATS scenario: 10 cars over two instances on JetStream next to the in-process bus, stream counted', async () => {
    const reportFile = join(dir, 'nats.json');
    const { code, stdout, stderr } = await runBench([
      '--scenario', 'nats', '--cars', '10', '--rate', '2', '--seconds', '3', '--warmup', '1',
      '--dashboards', '2', '--vins-per-dashboard', '5', '--fleet-threads', '2', '--cache-dir', join(dir, 'cache'), '--report', reportFile,
    ]);
    expect(code, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`).to.equal(0);
    expect(stdout).to.match(/== nats \(10 cars\) ==/);
    expect(stdout).to.match(/ratios \(ours-nats\/ours in-process\): throughput/);

    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport;
    expect(report.lossDetected).to.equal(false);
    expect(report.results.map((r) => r.server)).to.deep.equal(['ours', 'ours-nats']);
    for (const result of report.results) {
      expect(result.completed, result.failure).to.equal(true);
      expect(result.counts.acked).to.equal(result.counts.sent);
      expect(result.counts.sent).to.be.greaterThan(0);
      expect(result.ack.count).to.be.greaterThan(0);
      expect(result.counts.dashboardExpected).to.be.greaterThan(0);
      expect(result.counts.dashboardLost).to.equal(0);
    }
    const nats = report.results[1]!;
    const stream = nats.details.stream as { carRecords: number; acked: number; missing: number };
    expect(stream.acked).to.equal(nats.counts.acked);
    expect(stream.carRecords).to.equal(nats.counts.acked);
    expect(stream.missing).to.equal(0);
    const processes = nats.details.processes as Array<{ name: string; cpuCores: number; peakRssBytes: number }>;
    expect(processes.map((p) => p.name)).to.deep.equal(['instance A', 'instance B', 'nats-server']);
    for (const p of processes) expect(p.peakRssBytes, p.name).to.be.greaterThan(0);
    expect(report.ratios.find((r) => r.scenario === 'nats' && r.metric === 'throughput')?.natsOverInProcess).to.be.a('number');
  });

  it('fails the NATS scenario when acked records are not in the stream (a stream too small to keep them)', async () => {
    const reportFile = join(dir, 'nats-loss.json');
    const { code, stdout, stderr } = await runBench([
      '--scenario', 'nats', '--cars', '10', '--rate', '2', '--seconds', '2', '--warmup', '0', '--dashboards', '0',
      '--fleet-threads', '2', '--cache-dir', join(dir, 'cache'), '--report', reportFile, '--server-env', 'NATS_STREAM_MAX_BYTES=4000',
    ]);
    expect(code, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`).to.equal(1);
    expect(stdout).to.match(/LOSS DETECTED/);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport;
    const nats = report.results.find((r) => r.server === 'ours-nats');
    expect(nats?.counts.lost, 'every record was acked').to.equal(0);
    expect(nats?.counts.storedMissing).to.be.greaterThan(0);
  });
});
