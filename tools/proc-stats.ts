import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
