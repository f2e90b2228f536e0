import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Thread names (Linux `comm`, 15 bytes at most), so `top -H`, `ps -L`, `perf` and the benchmark
 * harness can tell the process's threads apart: Node names none of them, every one reads `node`.
 * Names are diagnostics only: anything that fails (not Linux, /proc not mounted) is ignored.
 */
export const THREAD_NAMES = {
  /** Node's platform: V8's worker threads (parallel scavenges, concurrent marking and compiles) and its two helper threads. */
  platform: 'v8-platform',
  /** libuv's thread pool (file system calls, DNS, crypto jobs). */
  libuv: 'libuv-worker',
  /** A decode worker (workers/decode-channel.ts). */
  decode: 'decode-worker',
} as const;

/** Names the calling thread (a worker thread names itself: /proc/thread-self is the caller). */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // not Linux, or /proc unavailable: names are only diagnostics
  }
}

/**
 * Names the threads Node started before our code ran. At that point the process has, besides the main
 * thread, Node's platform threads (the inspector's signal thread, `--v8-pool-size` V8 workers, the delayed
 * task scheduler) and, after them, libuv's pool (UV_THREADPOOL_SIZE threads, started by the ES module
 * loader's first file read). Only when the count matches that layout are any threads named; the main
 * thread keeps `node` (what `pgrep node` and process listings look for).
 */
export function nameStartupThreads(): void {
  try {
    const pid = process.pid;
    const others = readdirSync(`/proc/${pid}/task`).map(Number).filter((tid) => tid !== pid).sort((a, b) => a - b);
    const named = others.filter((tid) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== 'node');
    if (named.length > 0) return; // named before (a second call): leave them
    const uv = libuvPoolSize();
    const platform = v8PoolSize() + 2;
    if (others.length !== platform + uv && others.length !== platform) return;
    for (const [i, tid] of others.entries()) {
      writeFileSync(`/proc/${pid}/task/${tid}/comm`, i < platform ? THREAD_NAMES.platform : THREAD_NAMES.libuv);
    }
  } catch {
    // names are only diagnostics
  }
}

function libuvPoolSize(): number {
  const size = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(size) && size > 0 ? Math.min(size, 1024) : 4;
}

function v8PoolSize(): number {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  for (const flag of flags) {
    const match = /^--v8-pool-size=(\d+)$/.exec(flag);
    // 0 lets Node pick from the CPU count: the layout is then unknown, and nothing is named.
    if (match !== null) return Number(match[1]) > 0 ? Number(match[1]) : -1;
  }
  return 4;
}
