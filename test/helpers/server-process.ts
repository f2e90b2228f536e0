import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const MAIN_JS = new URL('../../main.js', import.meta.url).pathname;

export interface ServerProcess {
  child: ChildProcess;
  /** Log lines (parsed pino JSON) seen so far. */
  logs: Array<Record<string, unknown>>;
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line whose `event` matches. */
  waitForEvent(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
}

/** `node dist/main.js` as an operator runs it, with only the given environment (plus PATH). */
export function spawnServer(env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: mkdtempSync(join(tmpdir(), 'fleet-telemetry-proc-')),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const waiters: Array<{ event: string; resolve: (line: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { event: 'unparsed', text };
    }
    logs.push(line);
    for (const waiter of waiters.filter((w) => w.event === line.event)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    logs,
    stderr,
    exited,
    waitForEvent(event, timeoutMs = 15_000) {
      const seen = logs.find((line) => line.event === event);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${event}" log within ${timeoutMs} ms; stderr: ${stderr.join('\n')}`)), timeoutMs);
        waiters.push({ event, resolve: (line) => { clearTimeout(timer); resolve(line); } });
        void exited.then(({ code }) => reject(new Error(`server exited (${code}) before "${event}"; stderr: ${stderr.join('\n')}`)));
      });
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
