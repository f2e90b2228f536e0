import { Fleet } from '../fleet/fleet.js';
import type { BenchPki } from '../pki/bench-pki.js';
import { DashboardProbes, dashboardWatches, type ProbeReport } from '../probes/dashboard-probe.js';
import { quantileBetween, scrapeAckLatency } from '../probes/server-metrics.js';
import type { ResultServer, ScenarioName, ScenarioResult } from '../report/result.js';
import { BENCH_JWT_SECRET, sleep, startServerUnderTest, type ServerKind, type ServerUnderTest } from '../servers/server-under-test.js';
import { harnessCpuSeconds, type ProcSample } from '../../tools/proc-stats.js';
import type { FleetReport } from '../fleet/fleet.js';
import type { CarCounters } from '../fleet/bench-car.js';
import type { LatencySummary } from '../stats/latency.js';

/** What every scenario run gets from the CLI. */
export interface RunContext {
  kind: ServerKind;
  pki: BenchPki;
  fleetThreads: number;
  localAddresses: string[];
  serverEnv: Record<string, string>;
  /** taskset CPU list for the server processes; null: not pinned. */
  serverCpus?: string | null;
  serverNodeFlags: string[];
  /** Ours: append the server's output to this file (null or absent: only its tail is kept, for errors). */
  serverOutput?: string | null;
  /** Kind `other`: the other checkout's root (--other-build). */
  otherCheckout?: string | null;
  progress(line: string): void;
}

/** Samples the server process once a second: CPU, RSS and the peak. */
export class ServerMeter {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly server: { sample(): ProcSample }) {
    this.take();
    this.timer = setInterval(() => this.take(), 1000);
  }

  take(): ProcSample {
    const sample = this.server.sample();
    this.samples.push(sample);
    return sample;
  }

  get peakRssBytes(): number {
    return this.samples.reduce((peak, s) => Math.max(peak, s.peakRssBytes, s.rssBytes), 0);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** A point to measure a window from: fleet counters, server CPU, harness CPU, time. */
export interface Mark {
  at: number;
  counters: CarCounters;
  server: ProcSample;
  harnessCpu: number;
}

export async function mark(fleet: Fleet, meter: ServerMeter): Promise<Mark> {
  const { counters } = await fleet.counters();
  return { at: performance.now(), counters, server: meter.take(), harnessCpu: harnessCpuSeconds() };
}

export interface Window {
  seconds: number;
  throughput: number;
  serverCpuCores: number;
  recordsPerServerCpuSecond: number;
  harnessCpuCores: number;
}

export function windowBetween(a: Mark, b: Mark): Window {
  const seconds = (b.at - a.at) / 1000;
  const acked = b.counters.acked - a.counters.acked;
  const serverCpu = b.server.cpuSeconds - a.server.cpuSeconds;
  return {
    seconds,
    throughput: acked / seconds,
    serverCpuCores: serverCpu / seconds,
    recordsPerServerCpuSecond: serverCpu > 0 ? acked / serverCpu : 0,
    harnessCpuCores: (b.harnessCpu - a.harnessCpu) / seconds,
  };
}

/**
 * Our server's own ack latency (received -> reply written) over a window, from its /metrics; null for
 * the baselines. Returned as a function to call at the window's end.
 */
export async function serverAckWindow(server: ServerUnderTest): Promise<() => Promise<{ p50: number | null; p99: number | null } | null>> {
  if (server.metricsPort === null) return async () => null;
  const port = server.metricsPort;
  const before = await scrapeAckLatency(port).catch(() => null);
  return async () => {
    const after = await scrapeAckLatency(port).catch(() => null);
    if (before === null || after === null) return null;
    return { p50: quantileBetween(before, after, 0.5), p99: quantileBetween(before, after, 0.99) };
  };
}

/** Wait `seconds`, printing a progress line each second. */
export async function watch(label: string, seconds: number, fleet: Fleet, meter: ServerMeter, ctx: RunContext): Promise<void> {
  const started = performance.now();
  let last = await mark(fleet, meter);
  while ((performance.now() - started) / 1000 < seconds) {
    await sleep(Math.min(1000, seconds * 1000 - (performance.now() - started)));
    const now = await mark(fleet, meter);
    const w = windowBetween(last, now);
    const { unacked } = await fleet.counters();
    ctx.progress(
      `${ctx.kind} ${label} ${((now.at - started) / 1000).toFixed(0)}/${seconds}s  cars ${now.counters.connected}  acked/s ${w.throughput.toFixed(0)}  ` +
        `unacked ${unacked}  server cpu ${w.serverCpuCores.toFixed(2)}  rss ${(now.server.rssBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    last = now;
  }
}

/** Wait until every car is connected, printing progress; false when `timeoutMs` passes first. */
export async function waitConnected(fleet: Fleet, cars: number, timeoutMs: number, ctx: RunContext, what = 'connected'): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { counters } = await fleet.counters();
    const done = what === 'ready' ? counters.readyCars : counters.connected;
    ctx.progress(`${ctx.kind} ${what} ${done}/${cars}  connect failures ${counters.connectFailures}`);
    if (done >= cars) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}

/**
 * Starts the server and the fleet, runs `body`, and always tears down: probes, cars, server. A failure
 * becomes a result with `completed: false` rather than ending the whole benchmark.
 */
export async function session(
  scenario: ScenarioName,
  ctx: RunContext,
  cars: number,
  body: (s: { server: ServerUnderTest; meter: ServerMeter; fleet: Fleet; result: ScenarioResult }) => Promise<void>,
): Promise<ScenarioResult> {
  const result = emptyResult(scenario, ctx.kind, cars);
  let server: ServerUnderTest | null = null;
  let meter: ServerMeter | null = null;
  let fleet: Fleet | null = null;
  try {
    server = await startServerUnderTest({ kind: ctx.kind, pki: ctx.pki.files, env: ctx.serverEnv, nodeFlags: ctx.serverNodeFlags, cpus: ctx.serverCpus ?? null, outputFile: ctx.serverOutput ?? null, checkout: ctx.otherCheckout ?? null });
    meter = new ServerMeter(server);
    fleet = new Fleet({
      url: `wss://127.0.0.1:${server.vehiclePort}/`,
      servername: 'localhost',
      caChainPem: ctx.pki.caChainPem,
      cars: ctx.pki.cars.slice(0, cars),
      threads: ctx.fleetThreads,
      localAddresses: ctx.localAddresses,
    });
    await fleet.counters(); // the threads have built every car's TLS context
    await body({ server, meter, fleet, result });
    result.completed = true;
  } catch (error) {
    result.failure = (error as Error).message + (server !== null ? `\nserver output:\n${server.outputTail().slice(-1500)}` : '');
  } finally {
    await fleet?.close().catch(() => undefined);
    if (meter !== null) {
      try {
        meter.take();
      } catch {
        // the server is gone: the samples so far stand
      }
      result.peakRssBytes = meter.peakRssBytes;
      meter.stop();
    }
    await server?.stop();
  }
  return result;
}

export function emptyResult(scenario: ScenarioName, server: ResultServer, cars: number): ScenarioResult {
  const none: LatencySummary = { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    scenario, server, completed: false, cars,
    windowSeconds: 0, throughput: 0, serverCpuCores: 0, recordsPerServerCpuSecond: 0, harnessCpuCores: 0, peakRssBytes: 0,
    ack: none, dashboard: null,
    counts: { sent: 0, resent: 0, acked: 0, errorReplies: 0, lost: 0, connectFailures: 0, disconnects: 0, dashboards: 0, dashboardExpected: 0, dashboardReceived: 0, dashboardLost: 0 },
    details: {}, notes: [],
  };
}

/** Fill the result from a window and the fleet's final report. */
export function applyWindow(result: ScenarioResult, w: Window): void {
  result.windowSeconds = round(w.seconds, 2);
  result.throughput = round(w.throughput, 1);
  result.serverCpuCores = round(w.serverCpuCores, 3);
  result.recordsPerServerCpuSecond = round(w.recordsPerServerCpuSecond, 0);
  result.harnessCpuCores = round(w.harnessCpuCores, 3);
}

export function applyFleetReport(result: ScenarioResult, report: FleetReport): void {
  const c = report.counters;
  result.counts.sent = c.sent;
  result.counts.resent = c.resent;
  result.counts.acked = c.acked;
  result.counts.errorReplies = c.errorReplies;
  result.counts.lost = c.sent - c.acked;
  result.counts.connectFailures = c.connectFailures;
  result.counts.disconnects = c.disconnects;
  if (report.errors.length > 0) result.notes.push(`car errors: ${report.errors.join('; ')}`);
}

/** Open dashboard probes when the server has a dashboard listener; otherwise say so in the result. */
export async function openProbes(
  ctx: RunContext,
  server: ServerUnderTest,
  result: ScenarioResult,
  vins: string[],
  dashboards: number,
  perDashboard: number,
  /** Who watches what, when not `dashboardWatches`' consecutive blocks. */
  watches?: string[][],
): Promise<DashboardProbes | null> {
  if (dashboards <= 0) return null;
  if (server.dashboardPort === null) {
    result.notes.push(ctx.kind === 'limit' ? 'no dashboards: the limit server has none' : 'no dashboard listener found: probes skipped');
    return null;
  }
  const probes = new DashboardProbes({
    baseUrl: `wss://127.0.0.1:${server.dashboardPort}`,
    servername: 'localhost',
    caChainPem: ctx.pki.caChainPem,
    jwtSecret: BENCH_JWT_SECRET,
    watches: watches ?? dashboardWatches(vins, dashboards, perDashboard),
    readyTimeoutMs: 60_000,
  });
  ctx.progress(`${ctx.kind} opening ${dashboards} dashboards x ${Math.min(perDashboard, vins.length)} VINs`);
  await probes.open();
  return probes;
}

/** After the cars drained: wait until dashboards have every acked record of their VINs (or time is up). */
export async function settleProbes(probes: DashboardProbes, report: FleetReport, result: ScenarioResult, timeoutMs: number): Promise<ProbeReport> {
  const deadline = Date.now() + timeoutMs;
  while (probes.missing(report.ackedByVin) > 0 && Date.now() < deadline) await sleep(100);
  const probeReport = probes.report();
  result.dashboard = probeReport.latency;
  result.counts.dashboards = probeReport.dashboards;
  result.counts.dashboardExpected = probes.expected(report.ackedByVin);
  result.counts.dashboardReceived = probeReport.received;
  result.counts.dashboardLost = probes.missing(report.ackedByVin);
  if (probeReport.closedEarly > 0) result.notes.push(`${probeReport.closedEarly} dashboards were closed by the server`);
  if (probeReport.errors.length > 0) result.notes.push(`dashboard errors: ${probeReport.errors.join('; ')}`);
  return probeReport;
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
