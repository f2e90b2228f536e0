import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A full GC before a memory reading makes "before" and "after" comparable: what remains is retained.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export interface MemoryReading {
  heapUsedMb: number;
  arrayBuffersMb: number;
  rssMb: number;
}

const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

export function retainedMemory(): MemoryReading {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapUsedMb: mb(m.heapUsed), arrayBuffersMb: mb(m.arrayBuffers), rssMb: mb(m.rss) };
}

/** Samples the process every `everyMs` and keeps the peaks, for "peak memory while it lasted". */
export class PeakMemory {
  private timer: NodeJS.Timeout;
  peakRssMb = 0;
  peakHeapUsedMb = 0;
  peakArrayBuffersMb = 0;

  constructor(everyMs = 50) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const m = process.memoryUsage();
    this.peakRssMb = Math.max(this.peakRssMb, mb(m.rss));
    this.peakHeapUsedMb = Math.max(this.peakHeapUsedMb, mb(m.heapUsed));
    this.peakArrayBuffersMb = Math.max(this.peakArrayBuffersMb, mb(m.arrayBuffers));
  }

  stop(): this {
    clearInterval(this.timer);
    this.sample();
    return this;
  }
}
