// Local service processes (nats-server, Mosquitto, PostgreSQL) started by the tests and the load
// harness: a free loopback port, a spawn that waits for the "ready" line on stderr, and a stop by PID.
// Shared by test/ and bench/ (neither imports the other for it); src/ never uses it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A free loopback port, asked of the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A spawned process with its stderr kept as it arrives. */
export interface LocalProcess {
  readonly child: ChildProcess;
  /** All it has written to stderr so far. */
  output(): string;
}

/** Spawns file with stdin and stdout ignored and stderr piped and kept. */
export function spawnLogged(file: string, args: string[]): LocalProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  return { child, output: () => log };
}

export interface ReadyOptions {
  /** The package's program, for the install hint when it cannot be started at all. */
  program: string;
  /** Which one, in the errors (defaults to program). */
  label?: string;
  /** The stderr text that says it is ready. */
  ready: RegExp;
  timeoutMs: number;
}

/**
 * Until the process's stderr matches `ready`; rejects (with what it logged) when it cannot be spawned,
 * exits first, or is not ready in time. Its listeners are removed once it is ready.
 */
export function untilReady(proc: LocalProcess, options: ReadyOptions): Promise<void> {
  const { child } = proc;
  const label = options.label ?? options.program;
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      child.off('error', onError);
      child.off('exit', onEarlyExit);
      child.stderr?.off('data', onData);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onError = (error: Error): void => done(new Error(`cannot start ${options.program} (install it: scripts/install-test-deps.sh): ${error.message}`));
    const onEarlyExit = (code: number | null): void => done(new Error(`${label} exited with ${code}:\n${proc.output()}`));
    const onData = (): void => {
      if (options.ready.test(proc.output())) done();
    };
    const timer = setTimeout(() => done(new Error(`${label} did not start in time:\n${proc.output()}`)), options.timeoutMs);
    child.once('error', onError);
    child.once('exit', onEarlyExit);
    child.stderr?.on('data', onData);
  });
}

/**
 * Sends `signal` to the process, by its PID, and waits for it to exit; with `killAfterMs`, SIGKILL if
 * it is still there by then. Nothing to do for a process that is not running.
 */
export async function stopProcess(child: ChildProcess | null, signal: NodeJS.Signals, killAfterMs?: number): Promise<void> {
  if (child === null || child.exitCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(pid, signal);
  const timer =
    killAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
        }, killAfterMs);
  await exited;
  clearTimeout(timer);
}
