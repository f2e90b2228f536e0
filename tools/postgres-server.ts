import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, stopProcess } from './local-process.js';

/**
 * A throwaway PostgreSQL for the tests (test/helpers/postgres-server.ts) and the load harness: Debian's server binaries (package `postgresql`, see
 * scripts/install-test-deps.sh), a fresh data directory in a temp dir, trust auth on a free loopback
 * port, the unix socket inside the temp dir. initdb and postgres refuse to run as root, so as root they
 * run as the `postgres` user the package creates (setpriv execs, so the PID we hold is the server's).
 */
export class TestPostgres {
  private child: ChildProcess | null = null;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly runAs: { uid: number; gid: number } | null,
  ) {}

  static async start(): Promise<TestPostgres> {
    const bin = postgresBinDir();
    const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-pg-'));
    const runAs = userInfo().uid === 0 ? postgresUser() : null;
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, 'socket'));
    if (runAs !== null) {
      for (const path of [dir, join(dir, 'data'), join(dir, 'socket')]) chownSync(path, runAs.uid, runAs.gid);
    }
    chmodSync(join(dir, 'data'), 0o700);
    const init = spawnSync(...command(runAs, join(bin, 'initdb'), ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']), { encoding: 'utf8', timeout: 60_000 });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
    const server = new TestPostgres(dir, await freePort(), bin, runAs);
    await server.up();
    return server;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Start the server on the same data directory and port (after `down`). */
  async up(): Promise<void> {
    const args = ['-D', join(this.dir, 'data'), '-p', String(this.port), '-k', join(this.dir, 'socket'), '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];
    const [file, argv] = command(this.runAs, join(this.bin, 'postgres'), args);
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    this.child = child;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`postgres did not come up: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Fast shutdown (SIGINT: open transactions roll back, clients are disconnected), by PID. */
  async down(): Promise<void> {
    const child = this.child;
    this.child = null;
    await stopProcess(child, 'SIGINT', 15_000);
  }

  /** CPU seconds used so far by the server and its backends (Linux /proc), for the bench. */
  cpuSeconds(): number {
    const pid = this.child?.pid;
    if (pid === undefined) return 0;
    const ticks = 100; // USER_HZ on Linux
    let total = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue;
      }
      // Fields after the command (which may hold spaces) start at state; ppid is the 2nd, utime/stime the 12th/13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // The postmaster's own time includes its reaped backends (cutime, cstime); live backends count their own.
      if (Number(entry) === pid) total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / ticks;
      else if (Number(fields[1]) === pid) total += (Number(fields[11]) + Number(fields[12])) / ticks;
    }
    return total;
  }

  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function command(runAs: { uid: number; gid: number } | null, file: string, args: string[]): [string, string[]] {
  if (runAs === null) return [file, args];
  return ['setpriv', [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--init-groups', '--', file, ...args]];
}

function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/install-test-deps.sh (Debian package postgresql)');
  return join(root, versions[0]!, 'bin');
}

function postgresUser(): { uid: number; gid: number } {
  const result = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const group = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (result.status !== 0 || group.status !== 0) throw new Error('running as root needs the `postgres` user (created by the Debian package postgresql)');
  return { uid: Number(result.stdout.trim()), gid: Number(group.stdout.trim()) };
}

// The harness starts PostgreSQL exactly as the tests do.
export { TestPostgres as BenchPostgres };
