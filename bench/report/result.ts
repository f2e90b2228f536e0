import type { ServerKind } from '../servers/server-under-test.js';
import type { LatencySummary } from '../stats/latency.js';

export type ScenarioName = 'saturation' | 'steady' | 'storm' | 'soak' | 'nats' | 'nats-saturation' | 'sparse' | 'fanout' | 'postgres' | 'restart' | 'idle-memory';

/**
 * Which server a result is about: the three of `--servers`, or `ours-nats`, two instances of ours
 * sharing one nats-server (the NATS scenarios, next to `ours` with the in-process bus), or
 * `ours-postgres`, ours with the PostgreSQL sink on (the `postgres` scenario, next to `ours` without it).
 */
export type ResultServer = ServerKind | 'ours-nats' | 'ours-postgres';

/** What one scenario measured against one server. */
export interface ScenarioResult {
  scenario: ScenarioName;
  server: ResultServer;
  /** False when the run could not be completed; `failure` says why. */
  completed: boolean;
  failure?: string;
  cars: number;
  /** Length of the measured window, seconds. */
  windowSeconds: number;
  /** Records acked per second in the measured window. */
  throughput: number;
  /** Server CPU in the window, in cores (1.0 = one core busy all the time); all its threads. */
  serverCpuCores: number;
  /** Records acked per second of server CPU: how much work the server does per record, whatever limited the rate. */
  recordsPerServerCpuSecond: number;
  /** The harness's own CPU in the window, in cores (cars, probes, this thread). */
  harnessCpuCores: number;
  /** Peak resident memory of the server process over the run (VmHWM). */
  peakRssBytes: number;
  ack: LatencySummary;
  /** car send -> dashboard receive; null without dashboards. */
  dashboard: LatencySummary | null;
  counts: RunCounts;
  /** Scenario-specific figures (saturation stages, connect time, memory series, ...). */
  details: Record<string, unknown>;
  notes: string[];
}

export interface RunCounts {
  sent: number;
  resent: number;
  acked: number;
  errorReplies: number;
  /** Records sent and never acked (after the drain), error replies included. */
  lost: number;
  connectFailures: number;
  disconnects: number;
  dashboards: number;
  dashboardExpected: number;
  dashboardReceived: number;
  /** Acked records of watched VINs that no dashboard watching them received. */
  dashboardLost: number;
  /** NATS scenarios: acked records the JetStream stream does not hold (counted after the run). */
  storedMissing?: number;
}

export interface TargetCheck {
  name: string;
  target: string;
  actual: string;
  met: boolean;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  machine: { nproc: number; cpuModel: string; node: string; platform: string; totalMemoryBytes: number; openFilesLimit: string };
  command: string;
  options: Record<string, unknown>;
  results: ScenarioResult[];
  ratios: Array<{
    scenario: ScenarioName;
    metric: string;
    oursOverLimit: number | null;
    oursOverNaive: number | null;
    /** NATS scenarios: two instances on NATS over one instance with the in-process bus, same offered load. */
    natsOverInProcess?: number | null;
    /** The postgres scenario: ours with the PostgreSQL sink over ours without it, same offered load. */
    sinkOverWithout?: number | null;
  }>;
  targets: TargetCheck[];
  /** Any loss in any run: the process exits non-zero. */
  lossDetected: boolean;
}
