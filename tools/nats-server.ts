import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnLogged, stopProcess, untilReady } from './local-process.js';
import { sampleProcess, type ProcSample } from './proc-stats.js';

/** Debian installs it in /usr/sbin, which is not on every user's PATH. */
const NATS_SERVER = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';

/**
 * A real nats-server (Debian package) with JetStream, on a loopback port, storing in a temp dir. Stops
 * only the process it started, by PID; restart() reuses port and store so clients reconnect to the
 * same data. Shared by the integration tests (test/helpers/nats-server.ts) and the load harness, which
 * also reads the process's CPU and memory.
 */
export class NatsServer {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** PID of the running process; throws when it is not running. */
  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined || this.child?.exitCode !== null) throw new Error('nats-server is not running');
    return pid;
  }

  /** CPU and memory of the running process, from /proc. */
  sample(): ProcSample {
    return sampleProcess(this.pid);
  }

  static async start(): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'fleet-telemetry-nats-')));
    await server.launch();
    return server;
  }

  async launch(): Promise<void> {
    const proc = spawnLogged(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir]);
    this.child = proc.child;
    await untilReady(proc, { program: 'nats-server', ready: /Server is ready/, timeoutMs: 10_000 });
  }

  /** SIGTERM to our PID and wait for it to go. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    await stopProcess(child, 'SIGTERM');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
