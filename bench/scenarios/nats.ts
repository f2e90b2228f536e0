import { addCounters, Fleet, type FleetReport } from '../fleet/fleet.js';
import { emptyCounters, type CarCounters } from '../fleet/bench-car.js';
import type { DashboardProbes } from '../probes/dashboard-probe.js';
import { quantileBetween, scrapeHistogram, type Buckets } from '../probes/server-metrics.js';
import { storedVersusAcked, streamSubjectCounts } from '../probes/stream-count.js';
import type { ScenarioResult } from '../report/result.js';
import { NatsCluster } from '../../tools/nats-cluster.js';
import { NatsServer } from '../../tools/nats-server.js';
import { sleep, startServerUnderTest, type ServerUnderTest } from '../servers/server-under-test.js';
import { LatencyRecorder, type LatencySummary } from '../stats/latency.js';
import { harnessCpuSeconds, type ProcSample } from '../../tools/proc-stats.js';
import { applyFleetReport, emptyResult, openProbes, round, ServerMeter, settleProbes, type RunContext } from './session.js';

export type NatsLoad =
  /** Every car at `rate` V ticks per second (the `steady` load). */
  | { kind: 'steady'; rate: number; warmupSeconds: number; seconds: number }
  /** Pipelined cars, window by window until throughput stops rising (the `saturation` load). */
  | { kind: 'pipelined'; windows: number[]; stageSeconds: number; minGain: number };

export interface NatsScenarioOptions {
  cars: number;
  load: NatsLoad;
  dashboards: number;
  vinsPerDashboard: number;
  connectConcurrency: number;
  /** 1: one nats-server; 3 (or more): a JetStream cluster of that many nodes, stream and KV replicated on all. */
  natsNodes?: number;
}

const ACK_BUCKETS = 'fleet_telemetry_ack_latency_seconds_bucket';
const PUBLISH_BUCKETS = 'fleet_telemetry_bus_publish_latency_seconds_bucket';

/**
 * The scale-out comparison: one instance of ours with the in-process bus, then two instances sharing a
 * nats-server with JetStream (each with half the cars), at the same offered load, one after the other
 * in the same run. With NATS a car's ack waits for JetStream's confirmation, so the difference is what
 * durability and sharing cost on one machine. Dashboards sit on the last instance and watch the first
 * instance's cars, so with NATS every dashboard record crossed instances through JetStream. After the
 * run the stream is counted per VIN against what the cars had acked: anything missing is loss.
 */
export async function runNatsComparison(ctx: RunContext, scenario: 'nats' | 'nats-saturation', o: NatsScenarioOptions): Promise<ScenarioResult[]> {
  const inProcess = await runDeployment(ctx, scenario, o, false);
  const nats = await runDeployment(ctx, scenario, o, true);
  return [inProcess, nats];
}

/** One process whose CPU and memory count as the server side. */
interface Metered {
  name: string;
  meter: ServerMeter;
}

/** Several fleets (one per instance) driven as one. */
class FleetGroup {
  constructor(readonly fleets: Fleet[]) {}

  private all<T>(f: (fleet: Fleet) => Promise<T>): Promise<T[]> {
    return Promise.all(this.fleets.map(f));
  }

  async counters(): Promise<{ counters: CarCounters; unacked: number }> {
    const counters = emptyCounters();
    let unacked = 0;
    for (const c of await this.all((f) => f.counters())) {
      addCounters(counters, c.counters);
      unacked += c.unacked;
    }
    return { counters, unacked };
  }

  async report(): Promise<FleetReport & { perFleetAck: LatencySummary[] }> {
    const reports = await this.all((f) => f.report());
    const counters = emptyCounters();
    const latency = new LatencyRecorder();
    const ackedByVin = new Map<string, number>();
    for (const r of reports) {
      addCounters(counters, r.counters);
      latency.addEncoded(r.ackLatencyEncoded);
      for (const [vin, n] of r.ackedByVin) ackedByVin.set(vin, n);
    }
    return {
      counters,
      unacked: reports.reduce((sum, r) => sum + r.unacked, 0),
      ackLatency: latency.summary(),
      ackLatencyEncoded: latency.encode(),
      ackedByVin,
      errors: reports.flatMap((r) => r.errors),
      perFleetAck: reports.map((r) => r.ackLatency),
    };
  }

  connect: Fleet['connect'] = async (concurrency, mode) => void (await this.all((f) => f.connect(concurrency, mode)));
  setMode: Fleet['setMode'] = async (mode) => void (await this.all((f) => f.setMode(mode)));
  resetLatency = async (): Promise<void> => void (await this.all((f) => f.resetLatency()));
  drain = async (timeoutMs: number): Promise<number> => (await this.all((f) => f.drain(timeoutMs))).reduce((a, b) => a + b, 0);
  close = async (): Promise<void> => void (await this.all((f) => f.close().catch(() => undefined)));
}

interface GroupMark {
  at: number;
  acked: number;
  connected: number;
  unacked: number;
  processes: ProcSample[];
  harnessCpu: number;
}

interface GroupWindow {
  seconds: number;
  throughput: number;
  serverCpuCores: number;
  recordsPerServerCpuSecond: number;
  harnessCpuCores: number;
  /** Cores per process, in the order of the meters. */
  processCores: number[];
}

async function markGroup(fleets: FleetGroup, meters: Metered[]): Promise<GroupMark> {
  const { counters, unacked } = await fleets.counters();
  return { at: performance.now(), acked: counters.acked, connected: counters.connected, unacked, processes: meters.map((m) => m.meter.take()), harnessCpu: harnessCpuSeconds() };
}

function between(a: GroupMark, b: GroupMark): GroupWindow {
  const seconds = (b.at - a.at) / 1000;
  const acked = b.acked - a.acked;
  const processCpu = b.processes.map((s, i) => s.cpuSeconds - a.processes[i]!.cpuSeconds);
  const serverCpu = processCpu.reduce((x, y) => x + y, 0);
  return {
    seconds,
    throughput: acked / seconds,
    serverCpuCores: serverCpu / seconds,
    recordsPerServerCpuSecond: serverCpu > 0 ? acked / serverCpu : 0,
    harnessCpuCores: (b.harnessCpu - a.harnessCpu) / seconds,
    processCores: processCpu.map((c) => c / seconds),
  };
}

/** A histogram of each instance's /metrics over a window: call the result at the window's end. */
async function histogramWindow(instances: Array<{ name: string; server: ServerUnderTest }>, series: string): Promise<() => Promise<Array<{ name: string; p50: number | null; p99: number | null }>>> {
  const scrape = (s: ServerUnderTest): Promise<Buckets | null> => (s.metricsPort === null ? Promise.resolve(null) : scrapeHistogram(s.metricsPort, series).catch(() => null));
  const before = await Promise.all(instances.map((i) => scrape(i.server)));
  return async () => {
    const after = await Promise.all(instances.map((i) => scrape(i.server)));
    return instances.map((instance, n) => {
      const a = before[n] ?? null;
      const b = after[n] ?? null;
      if (a === null || b === null) return { name: instance.name, p50: null, p99: null };
      return { name: instance.name, p50: quantileBetween(a, b, 0.5), p99: quantileBetween(a, b, 0.99) };
    });
  };
}

async function runDeployment(ctx: RunContext, scenario: 'nats' | 'nats-saturation', o: NatsScenarioOptions, withNats: boolean): Promise<ScenarioResult> {
  const label = withNats ? 'ours-nats' : 'ours';
  const result = emptyResult(scenario, label, o.cars);
  let natsServer: NatsServer | NatsCluster | null = null;
  const instances: Array<{ name: string; server: ServerUnderTest }> = [];
  const meters: Metered[] = [];
  let fleets: FleetGroup | null = null;
  let probes: DashboardProbes | null = null;
  const progress = (line: string): void => ctx.progress(`${label} ${line}`);
  try {
    const count = withNats ? 2 : 1;
    if (o.cars < count) throw new Error(`the NATS scenario splits the fleet over two instances: it needs at least 2 cars, got ${o.cars}`);
    const nodes = o.natsNodes ?? 1;
    if (withNats) natsServer = nodes > 1 ? await NatsCluster.start(nodes) : await NatsServer.start();
    for (let i = 0; i < count; i++) {
      const name = withNats ? `instance ${'AB'[i]}` : 'ours';
      const env: Record<string, string> = { ...ctx.serverEnv };
      if (natsServer !== null) {
        env.NATS_URL = natsServer.url;
        env.NATS_INSTANCE_ID = `bench-${'ab'[i]}`;
        if (nodes > 1) env.NATS_STREAM_REPLICAS = String(nodes);
      }
      // One after the other: the first creates the stream and buckets, the second finds them.
      const server = await startServerUnderTest({ kind: 'ours', pki: ctx.pki.files, env, nodeFlags: ctx.serverNodeFlags, cpus: ctx.serverCpus ?? null });
      instances.push({ name, server });
      meters.push({ name, meter: new ServerMeter(server) });
    }
    if (natsServer !== null) meters.push({ name: nodes > 1 ? `nats-server x${nodes}` : 'nats-server', meter: new ServerMeter(natsServer) });
    if (withNats && nodes > 1) result.details.natsCluster = `${nodes} nats-server nodes, stream and KV with ${nodes} replicas`;

    const cars = ctx.pki.cars.slice(0, o.cars);
    const per = Math.ceil(cars.length / count);
    const shares = instances.map((_, i) => cars.slice(i * per, (i + 1) * per));
    fleets = new FleetGroup(
      instances.map(
        ({ server }, i) =>
          new Fleet({
            url: `wss://127.0.0.1:${server.vehiclePort}/`,
            servername: 'localhost',
            caChainPem: ctx.pki.caChainPem,
            cars: shares[i]!,
            threads: Math.max(1, Math.floor(ctx.fleetThreads / count)),
            localAddresses: ctx.localAddresses,
          }),
      ),
    );
    await fleets.counters(); // every thread has built its cars' TLS contexts
    await fleets.connect(o.connectConcurrency, { kind: 'idle' });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { counters } = await fleets.counters();
      progress(`connected ${counters.connected}/${o.cars}  connect failures ${counters.connectFailures}`);
      if (counters.connected >= o.cars) break;
      if (Date.now() > deadline) throw new Error('not every car could connect within 120 s');
      await sleep(250);
    }

    if (o.load.kind === 'steady' && o.dashboards > 0) {
      // Dashboards on the last instance, watching the first instance's cars: with NATS every record
      // they get was stored by instance A and read back from JetStream by instance B.
      const watchedVins = shares[0]!.map((car) => car.vin);
      probes = await openProbes({ ...ctx, kind: 'ours' }, instances[count - 1]!.server, result, watchedVins, o.dashboards, o.vinsPerDashboard);
      result.details.dashboardsOn = withNats
        ? `${o.dashboards} dashboards on instance B watching cars connected to instance A`
        : `${o.dashboards} dashboards watching the same cars on the one instance`;
    }

    const watch = async (what: string, seconds: number): Promise<void> => {
      const started = performance.now();
      let last = await markGroup(fleets!, meters);
      while ((performance.now() - started) / 1000 < seconds) {
        await sleep(Math.min(1000, seconds * 1000 - (performance.now() - started)));
        const now = await markGroup(fleets!, meters);
        const w = between(last, now);
        progress(
          `${what} ${((now.at - started) / 1000).toFixed(0)}/${seconds}s  cars ${now.connected}  acked/s ${w.throughput.toFixed(0)}  unacked ${now.unacked}  ` +
            meters.map((m, i) => `${m.name} ${w.processCores[i]!.toFixed(2)}`).join(' '),
        );
        last = now;
      }
    };

    let best: GroupWindow | null = null;
    let bestAck: LatencySummary | null = null;
    let bestPerFleetAck: LatencySummary[] = [];
    let serverAck: Array<{ name: string; p50: number | null; p99: number | null }> = [];
    let publish: typeof serverAck = [];
    const measure = async (what: string, seconds: number): Promise<{ window: GroupWindow; ack: LatencySummary; perFleetAck: LatencySummary[] }> => {
      await fleets!.resetLatency();
      probes?.resetLatency();
      const ackWindow = await histogramWindow(instances, ACK_BUCKETS);
      const publishWindow = await histogramWindow(instances, PUBLISH_BUCKETS);
      const start = await markGroup(fleets!, meters);
      await watch(what, seconds);
      const end = await markGroup(fleets!, meters);
      serverAck = await ackWindow();
      publish = await publishWindow();
      const report = await fleets!.report();
      return { window: between(start, end), ack: report.ackLatency, perFleetAck: report.perFleetAck };
    };

    const stages: Array<Record<string, unknown>> = [];
    if (o.load.kind === 'steady') {
      await fleets.setMode({ kind: 'steady', intervalMs: 1000 / o.load.rate });
      await watch('warm-up', o.load.warmupSeconds);
      const m = await measure(scenario, o.load.seconds);
      best = m.window;
      bestAck = m.ack;
      bestPerFleetAck = m.perFleetAck;
      result.details.ratePerCar = o.load.rate;
      result.details.offeredRecordsPerSecond = round(o.cars * o.load.rate, 0);
    } else {
      let flat = 0;
      for (const window of o.load.windows) {
        await fleets.setMode({ kind: 'pipelined', window });
        await watch(`window ${window} settle`, 1);
        const m = await measure(`window ${window}`, o.load.stageSeconds);
        stages.push({ window, throughput: round(m.window.throughput, 0), serverCpuCores: round(m.window.serverCpuCores, 2), ackP50: m.ack.p50, ackP99: m.ack.p99, serverAck, publish });
        const rising = best === null || m.window.throughput > best.throughput * (1 + o.load.minGain);
        if (best === null || m.window.throughput > best.throughput) {
          best = m.window;
          bestAck = m.ack;
          bestPerFleetAck = m.perFleetAck;
        }
        flat = rising ? 0 : flat + 1;
        if (flat >= 2) break;
      }
      result.details.stages = stages;
    }
    await fleets.setMode({ kind: 'idle' });
    progress('draining');
    await fleets.drain(20_000);
    const report = await fleets.report();
    applyFleetReport(result, report);
    if (best !== null) {
      result.windowSeconds = round(best.seconds, 2);
      result.throughput = round(best.throughput, 1);
      result.serverCpuCores = round(best.serverCpuCores, 3);
      result.recordsPerServerCpuSecond = round(best.recordsPerServerCpuSecond, 0);
      result.harnessCpuCores = round(best.harnessCpuCores, 3);
      result.details.processes = meters.map((m, i) => ({ name: m.name, cpuCores: round(best!.processCores[i]!, 3), peakRssBytes: 0 }));
    }
    result.ack = bestAck ?? new LatencyRecorder().summary();
    result.details.ackPerInstance = instances.map((instance, i) => ({ name: instance.name, ...bestPerFleetAck[i] }));
    // Saturation keeps these per stage (above).
    if (o.load.kind === 'steady') {
      result.details.serverAckLatencyMs = serverAck;
      if (withNats) result.details.busPublishLatencyMs = publish;
    }
    if (probes !== null) await settleProbes(probes, report, result, 10_000);

    if (natsServer !== null) {
      const stream = ctx.serverEnv.NATS_STREAM ?? 'TELEMETRY';
      const prefix = ctx.serverEnv.NATS_SUBJECT_PREFIX ?? 'telemetry';
      const counted = storedVersusAcked(await streamSubjectCounts(natsServer.url, stream, prefix), prefix, report.ackedByVin);
      result.details.stream = counted;
      result.counts.storedMissing = counted.missing;
    }
    result.completed = true;
  } catch (error) {
    const tails = instances.map((i) => `${i.name} output:\n${i.server.outputTail().slice(-1000)}`).join('\n');
    result.failure = `${(error as Error).message}${tails !== '' ? `\n${tails}` : ''}`;
  } finally {
    await probes?.close();
    await fleets?.close();
    let peak = 0;
    const processes = (result.details.processes as Array<{ name: string; cpuCores: number; peakRssBytes: number }> | undefined) ?? [];
    meters.forEach((m, i) => {
      try {
        m.meter.take();
      } catch {
        // the process is gone: the samples so far stand
      }
      m.meter.stop();
      peak += m.meter.peakRssBytes;
      if (processes[i] !== undefined) processes[i].peakRssBytes = m.meter.peakRssBytes;
    });
    // Sum of the peaks of every server-side process (instances and nats-server): what the deployment needs.
    result.peakRssBytes = peak;
    for (const { server } of instances) await server.stop();
    await natsServer?.dispose();
  }
  return result;
}
