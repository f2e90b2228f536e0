import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** A point-in-time reading of one process: CPU seconds used so far (all threads) and memory. */
export interface ProcSample {
  at: number;
  cpuSeconds: number;
  rssBytes: number;
  /** Peak RSS over the process's life (VmHWM). */
  peakRssBytes: number;
}

let clockTicks: number | null = null;

function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Reads /proc/<pid>/stat (utime + stime, which cover every thread: the server's decode workers count)
 * and /proc/<pid>/status (VmRSS, VmHWM). Linux only; throws when the process is gone.
 */
export function sampleProcess(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    at: Date.now(),
    cpuSeconds: (utime + stime) / ticksPerSecond(),
    rssBytes: kbField(status, 'VmRSS') * 1024,
    peakRssBytes: kbField(status, 'VmHWM') * 1024,
  };
}

function kbField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match === null ? 0 : Number(match[1]);
}

/** This process's own CPU seconds (every thread: the fleet workers count). */
export function harnessCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** One thread's counters so far, from /proc/<pid>/task/<tid>/stat and status. */
export interface ThreadCounters {
  tid: number;
  /** Its `comm`: ours names its threads (src/lifecycle/thread-names.ts); Node leaves every one `node`. */
  name: string;
  userSeconds: number;
  systemSeconds: number;
  /** CPU time from /proc/.../schedstat in nanoseconds (the scheduler's own clock, not 10 ms ticks); null when the kernel has no schedstat. */
  cpuNanos: number | null;
  minorFaults: number;
  majorFaults: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** Every thread of a process at one moment. */
export interface ThreadsSample {
  at: number;
  pid: number;
  threads: ThreadCounters[];
}

/** Reads every thread of `pid`; a thread that ends while it is read is left out. Linux only. */
export function sampleThreads(pid: number): ThreadsSample {
  const ticks = ticksPerSecond();
  const threads: ThreadCounters[] = [];
  for (const entry of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${entry}/status`, 'utf8');
      let cpuNanos: number | null = null;
      try {
        cpuNanos = Number(readFileSync(`/proc/${pid}/task/${entry}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // a kernel without CONFIG_SCHED_INFO: the ticks stand
      }
      threads.push({
        tid: Number(entry),
        name,
        userSeconds: Number(f[11]) / ticks,
        systemSeconds: Number(f[12]) / ticks,
        cpuNanos: Number.isFinite(cpuNanos) ? cpuNanos : null,
        minorFaults: Number(f[7]),
        majorFaults: Number(f[9]),
        voluntarySwitches: countField(status, 'voluntary_ctxt_switches'),
        involuntarySwitches: countField(status, 'nonvoluntary_ctxt_switches'),
      });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { at: Date.now(), pid, threads };
}

/** A group of threads' use over a window, per record. */
export interface ThreadGroupUse {
  /** `main`, a thread name (`v8-platform`, `decode-worker`, `libuv-worker`, ...), or `node` for unnamed threads. */
  group: string;
  threads: number;
  /** From schedstat when every thread of the group has it (ns resolution), else user + system ticks. */
  cpuFrom: 'schedstat' | 'ticks';
  userMicrosPerRecord: number;
  systemMicrosPerRecord: number;
  cpuMicrosPerRecord: number;
  voluntarySwitchesPerRecord: number;
  involuntarySwitchesPerRecord: number;
  minorFaultsPerRecord: number;
}

/**
 * What each group of threads cost per record between two samples: the main thread apart, the others by
 * name. A thread born inside the window counts from zero; one that ended is lost (its CPU still is in
 * the process's figure). The CPU figure is the scheduler's (schedstat, nanoseconds); user and system
 * come from ticks of 10 ms: over a window of N records a tick is 10^4/N µs per record.
 */
export function threadUseBetween(a: ThreadsSample, b: ThreadsSample, records: number): ThreadGroupUse[] {
  const before = new Map(a.threads.map((t) => [t.tid, t]));
  const groups = new Map<string, ThreadGroupUse>();
  const per = records > 0 ? 1 / records : 0;
  for (const t of b.threads) {
    const t0 = before.get(t.tid);
    const group = t.tid === b.pid ? 'main' : t.name;
    const g = groups.get(group) ?? { group, threads: 0, cpuFrom: 'schedstat' as 'schedstat' | 'ticks', userMicrosPerRecord: 0, systemMicrosPerRecord: 0, cpuMicrosPerRecord: 0, voluntarySwitchesPerRecord: 0, involuntarySwitchesPerRecord: 0, minorFaultsPerRecord: 0 };
    g.threads++;
    if (t.cpuNanos === null || (t0 !== undefined && t0.cpuNanos === null)) g.cpuFrom = 'ticks';
    else g.cpuMicrosPerRecord += (t.cpuNanos - (t0?.cpuNanos ?? 0)) / 1e3 * per;
    g.userMicrosPerRecord += (t.userSeconds - (t0?.userSeconds ?? 0)) * 1e6 * per;
    g.systemMicrosPerRecord += (t.systemSeconds - (t0?.systemSeconds ?? 0)) * 1e6 * per;
    g.voluntarySwitchesPerRecord += (t.voluntarySwitches - (t0?.voluntarySwitches ?? 0)) * per;
    g.involuntarySwitchesPerRecord += (t.involuntarySwitches - (t0?.involuntarySwitches ?? 0)) * per;
    g.minorFaultsPerRecord += (t.minorFaults - (t0?.minorFaults ?? 0)) * per;
    groups.set(group, g);
  }
  const r = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
  return [...groups.values()]
    .map((g) => ({
      ...g,
      cpuMicrosPerRecord: r(g.cpuFrom === 'schedstat' ? g.cpuMicrosPerRecord : g.userMicrosPerRecord + g.systemMicrosPerRecord, 1),
      userMicrosPerRecord: r(g.userMicrosPerRecord, 1),
      systemMicrosPerRecord: r(g.systemMicrosPerRecord, 1),
      voluntarySwitchesPerRecord: r(g.voluntarySwitchesPerRecord, 3),
      involuntarySwitchesPerRecord: r(g.involuntarySwitchesPerRecord, 3),
      minorFaultsPerRecord: r(g.minorFaultsPerRecord, 3),
    }))
    .sort((x, y) => (x.group === 'main' ? -1 : y.group === 'main' ? 1 : y.cpuMicrosPerRecord - x.cpuMicrosPerRecord));
}

/** One line for a log: `main 61.2 (u 40.1 s 21.1) | v8-platform 9.8 | ...` µs per record. */
export function formatThreadUse(groups: ThreadGroupUse[]): string {
  return groups
    .filter((g) => g.group === 'main' || g.cpuMicrosPerRecord > 0 || g.voluntarySwitchesPerRecord >= 0.01)
    .map((g) => `${g.group}${g.threads > 1 ? ` x${g.threads}` : ''} ${g.cpuMicrosPerRecord} (u ${g.userMicrosPerRecord} s ${g.systemMicrosPerRecord}, cs ${g.voluntarySwitchesPerRecord}+${g.involuntarySwitchesPerRecord}, flt ${g.minorFaultsPerRecord})`)
    .join(' | ');
}

function countField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
  return match === null ? 0 : Number(match[1]);
}
