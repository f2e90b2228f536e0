import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DevPkiFiles } from '../../src/pki/dev-certs.js';
import { sampleProcess, type ProcSample } from '../../tools/proc-stats.js';
import { freePort } from '../../tools/local-process.js';

/**
 * `other` is our server built in another checkout (`--other-build`): a change measured against its base
 * in the same run, the rounds alternating, instead of two runs minutes apart on a drifting box.
 */
export type ServerKind = 'limit' | 'naive' | 'ours' | 'other';
/** The servers a run compares by default. */
export const SERVER_KINDS: readonly ServerKind[] = ['limit', 'naive', 'ours'];
export const ALL_SERVER_KINDS: readonly ServerKind[] = [...SERVER_KINDS, 'other'];

/** Our server, from this checkout or another: the same settings, metrics and probes apply. */
export function isOurs(kind: ServerKind): boolean {
  return kind === 'ours' || kind === 'other';
}

export const BENCH_JWT_SECRET = 'bench-dashboard-secret-long-enough-for-hs256-000000';

const REPO_ROOT = new URL('../../../', import.meta.url);
const SCRIPTS: Record<Exclude<ServerKind, 'other'>, URL> = {
  limit: new URL('dist/bench/baselines/limit-server.js', REPO_ROOT),
  naive: new URL('dist/bench/baselines/naive-server.js', REPO_ROOT),
  ours: new URL('dist/main.js', REPO_ROOT),
};

export interface ServerUnderTest {
  kind: ServerKind;
  pid: number;
  vehiclePort: number;
  /** null when this server has no dashboard listener (the limit server, or ours before it had one). */
  dashboardPort: number | null;
  /** Ours only: its Prometheus /metrics port (null for the baselines, which have none). */
  metricsPort: number | null;
  sample(): ProcSample;
  /** Last lines the server wrote to stderr/stdout, for error messages. */
  outputTail(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  kind: ServerKind;
  pki: DevPkiFiles;
  /** Extra environment for the server (e.g. DECODE_WORKERS). */
  env?: Record<string, string>;
  /** node flags for the server process (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Pin the process to these CPUs (`taskset -c`, which execs node: the pid stays the server's). */
  cpus?: string | null;
  readyTimeoutMs?: number;
  /** Append the server's stdout and stderr to this file too. */
  outputFile?: string | null;
  /** Ports to bind instead of fresh ones: a second process on the same ports is a rolling restart. */
  ports?: { vehicle: number; dashboard: number; metrics: number };
  /** Kind `other`: the root of the other checkout, built (its dist/main.js is run there). */
  checkout?: string | null;
  /** Ready when this text appears in the server's output (the ports may already answer: its predecessor's). */
  readyWhenOutput?: string;
}

/**
 * Runs a server as a child process (so its CPU and memory can be read from /proc apart from the
 * harness's), on loopback ports picked here, and waits until its vehicle port accepts connections.
 */
export async function startServerUnderTest(o: StartOptions): Promise<ServerUnderTest> {
  const vehiclePort = o.ports?.vehicle ?? (await freePort());
  const dashboardPort = o.ports?.dashboard ?? (await freePort());
  const metricsPort = o.ports?.metrics ?? (await freePort());
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // Not production: production refuses the dev PKI the bench runs on (a dev CA as VEHICLE_CA_FILE with
    // its key beside it). NODE_ENV changes nothing else in the server.
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    DOMAIN: 'localhost',
    HOST: '127.0.0.1',
    PORT: String(vehiclePort),
    TLS_CERT_FILE: o.pki.serverCert,
    TLS_KEY_FILE: o.pki.serverKey,
    TLS_CA_CHAIN_FILE: o.pki.caChain,
    VEHICLE_CA_FILE: o.pki.vehicleCaCert,
    DASHBOARD_HOST: '127.0.0.1',
    DASHBOARD_PORT: String(dashboardPort),
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    JWT_SECRET: BENCH_JWT_SECRET,
    SELF_CHECK: 'false',
    ...o.env,
  };
  if (o.kind === 'other' && (o.checkout === undefined || o.checkout === null)) throw new Error('the other server needs its checkout (--other-build)');
  const root = o.kind === 'other' ? pathToFileURL(`${resolve(o.checkout!)}/`) : REPO_ROOT;
  const script = o.kind === 'other' ? new URL('dist/main.js', root) : SCRIPTS[o.kind];
  const argv = [...(o.nodeFlags ?? []), fileURLToPath(script)];
  const pinned = o.cpus !== undefined && o.cpus !== null;
  const child = spawn(pinned ? 'taskset' : process.execPath, pinned ? ['-c', o.cpus!, process.execPath, ...argv] : argv, {
    env,
    cwd: fileURLToPath(root),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let readySeen = o.readyWhenOutput === undefined;
  const copy = o.outputFile !== undefined && o.outputFile !== null ? createWriteStream(o.outputFile, { flags: 'a' }) : null;
  child.once('exit', () => copy?.end());
  const keep = (chunk: Buffer): void => {
    copy?.write(chunk);
    const text = chunk.toString('utf8');
    if (!readySeen && (tail.slice(-200) + text).includes(o.readyWhenOutput!)) readySeen = true;
    tail = (tail + text).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );

  const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000);
  while (!readySeen || !(await accepts(vehiclePort))) {
    if (exited !== null) throw new Error(`${o.kind} server exited during start (${describeExit(exited)}):\n${tail}`);
    if (Date.now() > deadline) {
      await stopChild(child, exit);
      throw new Error(`${o.kind} server did not open its vehicle port within ${o.readyTimeoutMs ?? 30_000} ms:\n${tail}`);
    }
    await sleep(100);
  }
  // Ours opens its listeners one after another; give the dashboard listener a moment.
  let hasDashboards = false;
  if (o.kind !== 'limit') {
    const until = Date.now() + 3000;
    while (!(hasDashboards = await accepts(dashboardPort)) && Date.now() < until) await sleep(100);
  }

  return {
    kind: o.kind,
    pid: child.pid!,
    vehiclePort,
    dashboardPort: hasDashboards ? dashboardPort : null,
    metricsPort: isOurs(o.kind) ? metricsPort : null,
    sample: () => sampleProcess(child.pid!),
    outputTail: () => tail,
    stop: () => stopChild(child, exit),
  };
}

async function stopChild(child: ChildProcess, exit: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exit;
  clearTimeout(timer);
}

function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal !== null ? `signal ${e.signal}` : `code ${e.code}`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
