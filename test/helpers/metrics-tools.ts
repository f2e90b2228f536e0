import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INSTALL_HINT = 'run scripts/install-test-deps.sh (Debian package "prometheus")';

/** The Debian promtool; a missing tool fails the test with the way to install it. */
export function promtool(): string {
  const path = '/usr/bin/promtool';
  if (!existsSync(path)) throw new Error(`promtool not found: ${INSTALL_HINT}`);
  return path;
}

export function runPromtool(args: string[], input?: string): { status: number | null; output: string } {
  const result = spawnSync(promtool(), args, { input, encoding: 'utf8', timeout: 15_000 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** GET over plain HTTP on loopback. */
export function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * The sum of a series' samples in a /metrics exposition whose labels include all of `labels`
 * (0 when none): what the server says it counted, read the way Prometheus reads it.
 */
export async function scrapeSum(metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { status, body } = await httpGet(metricsUrl);
  if (status !== 200) throw new Error(`GET ${metricsUrl}: HTTP ${status}`);
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((w) => line.includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A port free on loopback right now (the OS picks it; the tiny reuse race is acceptable in tests). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningPrometheus {
  readonly url: string;
  readonly process: ChildProcess;
  /** Instant query through the HTTP API; returns the result vector. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Kills the process started here (by its PID) and removes its temp dir. */
  stop(): Promise<void>;
}

/**
 * The Debian Prometheus binary on a free loopback port, with a generated config that scrapes `target`
 * every second and a temp storage dir.
 */
export async function startPrometheus(target: string): Promise<RunningPrometheus> {
  const binary = '/usr/bin/prometheus';
  if (!existsSync(binary)) throw new Error(`prometheus not found: ${INSTALL_HINT}`);
  const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-prometheus-'));
  const port = await freeLoopbackPort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: fleet-telemetry',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  let log = '';
  const child = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const killer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}: ${log.slice(-2000)}`);
    }
    const ready = await httpGet(`${url}/-/ready`, 1000).catch(() => null);
    if (ready?.status === 200) break;
    if (Date.now() > until) {
      await stop();
      throw new Error(`prometheus did not become ready: ${log.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    url,
    process: child,
    async query(promql) {
      const response = await httpGet(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = JSON.parse(response.body) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success' || body.data === undefined) throw new Error(`query ${promql} failed: ${body.error ?? response.body}`);
      return body.data.result;
    },
    stop,
  };
}
