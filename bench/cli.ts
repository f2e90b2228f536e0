#!/usr/bin/env node
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loopbackSources } from './fleet/fleet.js';
import { defaultCacheDir, ensureBenchPki } from './pki/bench-pki.js';
import type { BenchReport, ScenarioName, ScenarioResult } from './report/result.js';
import { checkTargets, lossIn, ratiosOf, renderReport } from './report/render.js';
import { runNatsComparison } from './scenarios/nats.js';
import { runRestart } from './scenarios/restart.js';
import { runPostgresComparison } from './scenarios/postgres.js';
import { runSaturation } from './scenarios/saturation.js';
import type { RunContext } from './scenarios/session.js';
import { runSteady } from './scenarios/steady.js';
import { runStorm } from './scenarios/storm.js';
import { runSparseRounds } from './scenarios/sparse.js';
import { runFanout } from './scenarios/fanout.js';
import { runIdleMemory } from './scenarios/idle-memory.js';
import { ALL_SERVER_KINDS, SERVER_KINDS, isOurs, type ServerKind } from './servers/server-under-test.js';

const USAGE = `Usage: node dist/bench/cli.js [options]     (npm run bench -- [options])

Runs each scenario against each server (a fresh server process per run) and prints a table; writes the
JSON report. Exits 1 when any record was lost or a run failed.

Scenarios and servers
  --scenario LIST         saturation,steady,storm,soak,sparse,fanout,idle-memory,nats,nats-saturation,postgres,restart
                          (default: saturation,steady,storm)
  --servers LIST          limit,naive,ours (default: all three; the nats scenarios ignore it), and other
  --other-build DIR       the server "other": ours as built in another checkout DIR (its dist/main.js;
                          e.g. a change's base in a git worktree): --servers other,ours --sparse-rounds 6
                          alternates the two builds round by round and prints ours/other per round
Steady / soak
  --cars N                cars for steady, storm and soak (default 10000)
  --rate R                V frames per second per car (default 1)
  --seconds S             measured window of steady (default 30)
  --warmup S              seconds before measuring (default 5)
  --soak-seconds S        measured window of soak (default 600)
  --dashboards M          dashboard probes (default 100)
  --vins-per-dashboard K  VINs each probe watches (default 100)
Sparse (the real regime: every frame alone in its event-loop turn; no dashboards)
  --sparse-cars N         cars, each its own certificate and socket, at --rate (default 1000)
  --sparse-rounds R       runs per server, the servers alternating; the median run is reported
                          (default 3; --quick 1)
Fanout (dashboards with overlapping grants; --rate, --seconds, --warmup as steady)
  --fanout-cars N         cars (default 1000)
  --fanout-dashboards M   dashboards (default 1000)
  --watchers-per-car W    dashboards watching each car (default 10)
Saturation
  --sat-cars N            pipelined cars (default 100)
  --sat-windows LIST      in-flight records per car, stage by stage (default 1,2,4,8,16,32,64)
  --stage-seconds S       per stage (default 5)
NATS JetStream (needs nats-server; scripts/install-test-deps.sh installs it)
  nats                    one instance with the in-process bus, then two instances sharing a
                          nats-server (JetStream, temp store), half the cars on each, at the steady
                          load (--cars, --rate, --seconds, --warmup); dashboards (--dashboards,
                          --vins-per-dashboard) on instance B watch instance A's cars. Afterwards
                          the stream is counted per VIN against the acks: a shortfall is loss.
  nats-saturation         the same two deployments with the saturation load (--sat-cars, ...)
  --nats-nodes N          1 (one nats-server, default) or 3: a JetStream cluster of N Debian
                          nats-server processes on loopback, stream and KV with N replicas
Rolling restart
  restart                 ours under the steady load (--cars, --rate, --warmup; --seconds before and
                          again after the handover): a second process starts on the same ports, then
                          the first gets SIGTERM and drains. Lost records, car errors, ack p99.
PostgreSQL (needs Debian's postgresql; scripts/install-test-deps.sh installs it)
  postgres                the steady scenario against ours, then again with the PostgreSQL sink
                          (DATABASE_URL to a PostgreSQL the harness starts on loopback): the sink's cost
Connect storm
  --storm-timeout S       give up after (default 90; the target is 60)
  --storm-settle S        idle time before memory per car is read (default 3; past one watchdog sweep,
                          WATCHDOG_SWEEP_INTERVAL_SECONDS, idle cars' state is compacted)
Memory per idle car (idle-memory: rounds alternate the servers; per round one process, its cars
connecting in waves, RSS read after each wave's settle and two GCs asked for through the V8
inspector; per car = slope of RSS over the cars; the median of the rounds is reported)
  --memory-cars N         cars by the last wave (default 5000)
  --memory-waves K        waves (default 5; the first warms the process up and is not in the slope)
  --memory-rounds R       fresh server processes per server (default 3)
  --memory-settle S       idle seconds after a wave before the GC and the reading (default 4)
Harness
  --fleet-threads N       threads running the cars (default 2)
  --cache-dir DIR         certificates cache (default ~/.cache/fleet-telemetry-bench)
  --report FILE           JSON report (default artifacts/bench/bench-<time>.json)
  --server-env K=V        extra environment for the servers (repeatable)
  --decode-workers N      ours: decode worker threads (DECODE_WORKERS; default the server's auto)
  --decode-inline-frames N  ours: largest batch decoded on the main thread (DECODE_INLINE_MAX_FRAMES)
  --server-cpus LIST      pin every server process to these CPUs (taskset -c LIST, e.g. 2-15), so
                          the harness (pin it with taskset too) and the server do not share cores
  --cpu-prof              run our server (and the limit server) with --cpu-prof (profiles in artifacts/bench/profiles)
  --server-node-flag F    ours: one more node/V8 flag (repeatable, e.g. --server-node-flag=--trace-gc)
  --server-output FILE    ours: append its stdout and stderr to FILE (what --trace-* flags print)
  --strict-targets        also exit 3 when one of the issue's targets is missed
  --quick                 small sizes for a quick look (200 cars, 10 s, 10 dashboards x 20)
  -h, --help`;

const OPTIONS = {
  scenario: { type: 'string' },
  servers: { type: 'string' },
  'other-build': { type: 'string' },
  cars: { type: 'string' },
  rate: { type: 'string' },
  seconds: { type: 'string' },
  warmup: { type: 'string' },
  'soak-seconds': { type: 'string' },
  dashboards: { type: 'string' },
  'vins-per-dashboard': { type: 'string' },
  'sat-cars': { type: 'string' },
  'sparse-cars': { type: 'string' },
  'sparse-rounds': { type: 'string' },
  'fanout-cars': { type: 'string' },
  'fanout-dashboards': { type: 'string' },
  'watchers-per-car': { type: 'string' },
  'decode-workers': { type: 'string' },
  'decode-inline-frames': { type: 'string' },
  'server-cpus': { type: 'string' },
  'sat-windows': { type: 'string' },
  'stage-seconds': { type: 'string' },
  'storm-timeout': { type: 'string' },
  'storm-settle': { type: 'string' },
  'memory-cars': { type: 'string' },
  'memory-waves': { type: 'string' },
  'memory-rounds': { type: 'string' },
  'memory-settle': { type: 'string' },
  'fleet-threads': { type: 'string' },
  'nats-nodes': { type: 'string' },
  'cache-dir': { type: 'string' },
  report: { type: 'string' },
  'server-env': { type: 'string', multiple: true },
  'cpu-prof': { type: 'boolean' },
  'server-node-flag': { type: 'string', multiple: true },
  'server-output': { type: 'string' },
  'strict-targets': { type: 'boolean' },
  quick: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const SCENARIOS: readonly ScenarioName[] = ['saturation', 'steady', 'storm', 'soak', 'sparse', 'fanout', 'idle-memory', 'nats', 'nats-saturation', 'postgres', 'restart'];
const PIPELINED: readonly ScenarioName[] = ['saturation', 'nats-saturation'];

class UsageError extends Error {}

function number(values: Record<string, unknown>, name: string, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new UsageError(`--${name} must be a number >= ${min}, got "${String(raw)}"`);
  return value;
}

function list<T extends string>(raw: unknown, allowed: readonly T[], fallback: readonly T[], name: string): T[] {
  if (raw === undefined) return [...fallback];
  const items = String(raw).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!allowed.includes(item as T)) throw new UsageError(`--${name}: unknown "${item}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

function openFilesLimit(): string {
  try {
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match === null ? 'unknown' : match[1]!;
  } catch {
    return 'unknown';
  }
}

async function main(argv: string[]): Promise<number> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = values.quick === true;
  let o;
  try {
    o = {
      scenarios: list(values.scenario, SCENARIOS, ['saturation', 'steady', 'storm'], 'scenario'),
      servers: list(values.servers, ALL_SERVER_KINDS, SERVER_KINDS, 'servers'),
      otherCheckout: values['other-build'] === undefined ? null : resolve(String(values['other-build'])),
      cars: number(values, 'cars', quick ? 200 : 10_000, 1),
      rate: number(values, 'rate', 1, 0.001),
      seconds: number(values, 'seconds', quick ? 10 : 30, 1),
      warmup: number(values, 'warmup', quick ? 2 : 5, 0),
      soakSeconds: number(values, 'soak-seconds', quick ? 30 : 600, 1),
      dashboards: number(values, 'dashboards', quick ? 10 : 100, 0),
      vinsPerDashboard: number(values, 'vins-per-dashboard', quick ? 20 : 100, 1),
      satCars: number(values, 'sat-cars', quick ? 20 : 100, 1),
      sparseCars: number(values, 'sparse-cars', quick ? 200 : 1000, 1),
      sparseRounds: number(values, 'sparse-rounds', quick ? 1 : 3, 1),
      fanoutCars: number(values, 'fanout-cars', quick ? 100 : 1000, 1),
      fanoutDashboards: number(values, 'fanout-dashboards', quick ? 100 : 1000, 1),
      watchersPerCar: number(values, 'watchers-per-car', 10, 1),
      serverCpus: values['server-cpus'] === undefined ? null : String(values['server-cpus']),
      satWindows: String(values['sat-windows'] ?? (quick ? '1,4,16' : '1,2,4,8,16,32,64')).split(',').map((w) => {
        const n = Number(w);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--sat-windows: "${w}" is not a positive integer`);
        return n;
      }),
      stageSeconds: number(values, 'stage-seconds', quick ? 3 : 5, 1),
      stormTimeout: number(values, 'storm-timeout', 90, 1),
      stormSettle: number(values, 'storm-settle', 3, 1),
      memoryCars: number(values, 'memory-cars', quick ? 500 : 5000, 3),
      memoryWaves: number(values, 'memory-waves', 5, 3),
      memoryRounds: number(values, 'memory-rounds', quick ? 1 : 3, 1),
      memorySettle: number(values, 'memory-settle', 4, 0),
      fleetThreads: number(values, 'fleet-threads', 2, 1),
      natsNodes: number(values, 'nats-nodes', 1, 1),
      cacheDir: resolve(String(values['cache-dir'] ?? defaultCacheDir())),
      report: resolve(String(values.report ?? `artifacts/bench/bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)),
      serverEnv: {
        ...Object.fromEntries(
          ((values['server-env'] as string[] | undefined) ?? []).map((pair) => {
            const at = pair.indexOf('=');
            if (at <= 0) throw new UsageError(`--server-env wants KEY=VALUE, got "${pair}"`);
            return [pair.slice(0, at), pair.slice(at + 1)];
          }),
        ),
        ...(values['decode-workers'] === undefined ? {} : { DECODE_WORKERS: String(number(values, 'decode-workers', 0, 0)) }),
        ...(values['decode-inline-frames'] === undefined ? {} : { DECODE_INLINE_MAX_FRAMES: String(number(values, 'decode-inline-frames', 0, 0)) }),
      } as Record<string, string>,
      cpuProf: values['cpu-prof'] === true,
      serverNodeFlags: (values['server-node-flag'] as string[] | undefined) ?? [],
      serverOutput: values['server-output'] === undefined ? null : resolve(String(values['server-output'])),
      strictTargets: values['strict-targets'] === true,
    };
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n`);
      return 2;
    }
    throw error;
  }

  if (o.servers.includes('other') !== (o.otherCheckout !== null)) {
    process.stderr.write(`bench: the server "other" and --other-build go together (${o.otherCheckout === null ? '--servers names other without --other-build DIR' : '--other-build given but --servers does not name other'})\n`);
    return 2;
  }
  if (o.otherCheckout !== null && !existsSync(join(o.otherCheckout, 'dist', 'main.js'))) {
    process.stderr.write(`bench: --other-build: ${o.otherCheckout} has no dist/main.js (build it there: npm ci && npm run build)\n`);
    return 2;
  }
  if (o.serverCpus !== null && !/^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/.test(o.serverCpus)) {
    process.stderr.write(`bench: --server-cpus wants a CPU list such as 0-3 or 2,3, got "${o.serverCpus}"\n`);
    return 2;
  }
  const carsOf = (s: ScenarioName): number => (PIPELINED.includes(s) ? o.satCars : s === 'sparse' ? o.sparseCars : s === 'fanout' ? o.fanoutCars : s === 'idle-memory' ? o.memoryCars : o.cars);
  const fleetCars = Math.max(0, ...o.scenarios.filter((s) => !PIPELINED.includes(s)).map(carsOf));
  const neededCars = Math.max(fleetCars, o.scenarios.some((s) => PIPELINED.includes(s)) ? o.satCars : 0);
  const limit = openFilesLimit();
  if (limit !== 'unlimited' && Number(limit) < neededCars + 512) {
    process.stderr.write(`bench: ${neededCars} cars need more open files than the limit of ${limit}: run under \`ulimit -n 65536\` (npm run bench does)\n`);
    return 2;
  }

  const tty = process.stderr.isTTY === true;
  let lastPrinted = 0;
  const progress = (line: string): void => {
    if (tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
    else if (Date.now() - lastPrinted >= 5000) {
      lastPrinted = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
  const log = (line: string): void => {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${line}\n`);
  };

  log(`bench: preparing ${neededCars} car certificates in ${o.cacheDir}`);
  const pki = await ensureBenchPki({ cacheDir: o.cacheDir, count: neededCars, log });
  const startedAt = new Date();
  const results: ScenarioResult[] = [];
  for (const scenario of o.scenarios) {
    if (scenario === 'nats' || scenario === 'nats-saturation') {
      const pipelined = scenario === 'nats-saturation';
      const cars = pipelined ? o.satCars : o.cars;
      const ctx: RunContext = {
        kind: 'ours',
        pki,
        fleetThreads: o.fleetThreads,
        localAddresses: loopbackSources(cars),
        serverEnv: o.serverEnv,
        serverCpus: o.serverCpus,
        serverNodeFlags: o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${resolve('artifacts/bench/profiles')}`] : [],
        progress,
      };
      log(`bench: ${scenario}: ours with the in-process bus, then two instances on NATS JetStream`);
      const pair = await runNatsComparison(ctx, scenario, {
        cars,
        load: pipelined
          ? { kind: 'pipelined', windows: o.satWindows, stageSeconds: o.stageSeconds, minGain: 0.03 }
          : { kind: 'steady', rate: o.rate, warmupSeconds: o.warmup, seconds: o.seconds },
        dashboards: pipelined ? 0 : o.dashboards,
        vinsPerDashboard: o.vinsPerDashboard,
        connectConcurrency: pipelined ? 64 : 100,
        natsNodes: o.natsNodes,
      });
      for (const result of pair) {
        results.push(result);
        log(`bench: ${scenario} ${result.server}: ${result.completed ? `${result.throughput.toFixed(0)} rec/s, ack p99 ${result.ack.p99} ms, lost ${result.counts.lost}, not in stream ${result.counts.storedMissing ?? '-'}` : `FAILED: ${result.failure}`}`);
      }
      continue;
    }
    if (scenario === 'restart') {
      const ctx: RunContext = { kind: 'ours', pki, fleetThreads: o.fleetThreads, localAddresses: loopbackSources(o.cars), serverEnv: o.serverEnv, serverNodeFlags: [], progress };
      log('bench: restart: a rolling restart of ours under the steady load');
      const result = await runRestart(ctx, { cars: o.cars, rate: o.rate, warmupSeconds: o.warmup, seconds: o.seconds, connectConcurrency: 100 });
      results.push(result);
      const d = result.details as { ackDuringHandoverMs?: { p99: number }; connectFailuresInHandover?: number; errorRepliesInHandover?: number };
      log(`bench: restart: ${result.completed ? `lost ${result.counts.lost}, connect failures ${d.connectFailuresInHandover}, error replies ${d.errorRepliesInHandover}, ack p99 before ${result.ack.p99} ms, during ${d.ackDuringHandoverMs?.p99} ms` : `FAILED: ${result.failure}`}`);
      continue;
    }
    if (scenario === 'postgres') {
      const ctx: RunContext = {
        kind: 'ours',
        pki,
        fleetThreads: o.fleetThreads,
        localAddresses: loopbackSources(o.cars),
        serverEnv: o.serverEnv,
        serverNodeFlags: o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${resolve('artifacts/bench/profiles')}`] : [],
        progress,
      };
      log('bench: postgres: ours without a database, then with the PostgreSQL sink');
      const pair = await runPostgresComparison(ctx, { cars: o.cars, rate: o.rate, warmupSeconds: o.warmup, seconds: o.seconds, dashboards: o.dashboards, vinsPerDashboard: o.vinsPerDashboard, connectConcurrency: 100 });
      for (const result of pair) {
        results.push(result);
        log(`bench: postgres ${result.server}: ${result.completed ? `${result.throughput.toFixed(0)} rec/s, ack p99 ${result.ack.p99} ms, lost ${result.counts.lost}` : `FAILED: ${result.failure}`}`);
      }
      continue;
    }
    if (scenario === 'idle-memory') {
      log(`bench: idle-memory: ${o.servers.join(', ')} alternating, ${o.memoryRounds} rounds of ${o.memoryCars} cars in ${o.memoryWaves} waves`);
      const contexts = o.servers.map((kind): RunContext => ({
        kind: kind as ServerKind, pki, fleetThreads: o.fleetThreads, localAddresses: loopbackSources(o.memoryCars), serverEnv: o.serverEnv, serverCpus: o.serverCpus, serverNodeFlags: [], otherCheckout: o.otherCheckout, progress,
      }));
      const memory = await runIdleMemory(contexts, { cars: o.memoryCars, waves: o.memoryWaves, rounds: o.memoryRounds, settleSeconds: o.memorySettle, timeoutSeconds: o.stormTimeout });
      for (const result of memory) {
        results.push(result);
        const d = result.details as { rssPerIdleCarBytes?: number | null; rounds?: Array<{ rssPerCarBytes: number }> };
        log(`bench: idle-memory ${result.server}: ${result.completed ? `RSS per idle car, median ${((d.rssPerIdleCarBytes ?? 0) / 1024).toFixed(2)} KiB (rounds ${(d.rounds ?? []).map((f) => (f.rssPerCarBytes / 1024).toFixed(2)).join(', ')} KiB)` : `FAILED: ${result.failure}`}`);
      }
      continue;
    }
    if (scenario === 'sparse') {
      const contexts = o.servers.map((kind): RunContext => ({
        kind: kind as ServerKind,
        pki,
        fleetThreads: o.fleetThreads,
        localAddresses: loopbackSources(o.sparseCars),
        serverEnv: o.serverEnv,
        serverCpus: o.serverCpus,
        serverNodeFlags: [...(o.cpuProf && (isOurs(kind) || kind === 'limit') ? ['--cpu-prof', `--cpu-prof-dir=${resolve('artifacts/bench/profiles')}`] : []), ...(isOurs(kind) ? o.serverNodeFlags : [])],
        serverOutput: isOurs(kind) ? o.serverOutput : null,
        otherCheckout: o.otherCheckout,
        progress,
      }));
      results.push(...(await runSparseRounds(contexts, { cars: o.sparseCars, rate: o.rate, warmupSeconds: o.warmup, seconds: o.seconds }, o.sparseRounds, log)));
      continue;
    }
    for (const kind of o.servers) {
      const ctx: RunContext = {
        kind: kind as ServerKind,
        pki,
        fleetThreads: o.fleetThreads,
        localAddresses: loopbackSources(carsOf(scenario)),
        serverEnv: o.serverEnv,
        serverCpus: o.serverCpus,
        serverNodeFlags: [...(o.cpuProf && (isOurs(kind) || kind === 'limit') ? ['--cpu-prof', `--cpu-prof-dir=${resolve('artifacts/bench/profiles')}`] : []), ...(isOurs(kind) ? o.serverNodeFlags : [])],
        serverOutput: isOurs(kind) ? o.serverOutput : null,
        otherCheckout: o.otherCheckout,
        progress,
      };
      log(`bench: ${scenario} against ${kind}`);
      let result: ScenarioResult;
      switch (scenario) {
        case 'saturation':
          result = await runSaturation(ctx, { cars: o.satCars, windows: o.satWindows, stageSeconds: o.stageSeconds, minGain: 0.03 });
          break;
        case 'steady':
          result = await runSteady(ctx, { cars: o.cars, rate: o.rate, warmupSeconds: o.warmup, seconds: o.seconds, dashboards: o.dashboards, vinsPerDashboard: o.vinsPerDashboard, connectConcurrency: 100 });
          break;
        case 'soak':
          result = await runSteady(ctx, { cars: o.cars, rate: o.rate, warmupSeconds: o.warmup, seconds: o.soakSeconds, dashboards: o.dashboards, vinsPerDashboard: o.vinsPerDashboard, connectConcurrency: 100, memorySampleSeconds: 10 }, 'soak');
          break;
        case 'fanout':
          result = await runFanout(ctx, { cars: o.fanoutCars, dashboards: o.fanoutDashboards, watchersPerCar: o.watchersPerCar, rate: o.rate, warmupSeconds: o.warmup, seconds: o.seconds });
          break;
        case 'storm':
          result = await runStorm(ctx, { cars: o.cars, timeoutSeconds: o.stormTimeout, settleSeconds: o.stormSettle });
          break;
        default:
          throw new Error(`scenario ${scenario} has no runner`);
      }
      results.push(result);
      log(`bench: ${scenario} against ${kind}: ${result.completed ? `${result.throughput.toFixed(0)} rec/s, ack p99 ${result.ack.p99} ms, lost ${result.counts.lost}` : `FAILED: ${result.failure}`}`);
    }
  }

  const ratios = ratiosOf(results);
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { nproc: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}`, totalMemoryBytes: totalmem(), openFilesLimit: limit },
    command: `node dist/bench/cli.js ${argv.join(' ')}`.trim(),
    options: { ...o, serverEnv: Object.keys(o.serverEnv) },
    results,
    ratios,
    targets: checkTargets(results, ratios),
    lossDetected: lossIn(results),
  };
  mkdirSync(dirname(o.report), { recursive: true });
  writeFileSync(o.report, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${renderReport(report)}\n\nJSON report: ${o.report}\n`);
  if (report.lossDetected || results.some((r) => !r.completed)) return 1;
  if (o.strictTargets && report.targets.some((t) => !t.met)) return 3;
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Nothing of ours should be left running; make sure a stray handle does not keep the harness alive.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (error: Error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 500).unref();
  },
);
