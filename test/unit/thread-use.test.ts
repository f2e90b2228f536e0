import { expect } from 'chai';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { sampleThreads, threadUseBetween, type ThreadCounters, type ThreadsSample } from '../../tools/proc-stats.js';

function thread(tid: number, name: string, cpuMs: number, extra: Partial<ThreadCounters> = {}): ThreadCounters {
  return { tid, name, userSeconds: cpuMs / 1000, systemSeconds: 0, cpuNanos: cpuMs * 1e6, minorFaults: 0, majorFaults: 0, voluntarySwitches: 0, involuntarySwitches: 0, ...extra };
}

function sample(threads: ThreadCounters[]): ThreadsSample {
  return { at: 0, pid: 100, threads };
}

describe('per-thread CPU per record (bench harness)', () => {
  it('splits the main thread from the named groups and divides by the records', () => {
    const a = sample([thread(100, 'node', 1000, { voluntarySwitches: 10 }), thread(101, 'v8-platform', 50), thread(102, 'v8-platform', 50), thread(110, 'decode-worker', 5)]);
    const b = sample([thread(100, 'node', 1600, { voluntarySwitches: 6010 }), thread(101, 'v8-platform', 80), thread(102, 'v8-platform', 70), thread(110, 'decode-worker', 15)]);
    const groups = threadUseBetween(a, b, 10_000);
    expect(groups.map((g) => g.group)).to.deep.equal(['main', 'v8-platform', 'decode-worker']);
    expect(groups[0]).to.include({ threads: 1, cpuMicrosPerRecord: 60, cpuFrom: 'schedstat', voluntarySwitchesPerRecord: 0.6 });
    expect(groups[1]).to.include({ threads: 2, cpuMicrosPerRecord: 5 });
    expect(groups[2]).to.include({ cpuMicrosPerRecord: 1 });
  });

  it('counts a thread born inside the window from zero, and falls back to ticks without schedstat', () => {
    const a = sample([thread(100, 'node', 1000)]);
    const b = sample([thread(100, 'node', 1100), thread(120, 'decode-worker', 20, { cpuNanos: null, userSeconds: 0.01, systemSeconds: 0.01 })]);
    const groups = threadUseBetween(a, b, 1000);
    expect(groups.find((g) => g.group === 'main')).to.include({ cpuMicrosPerRecord: 100 });
    expect(groups.find((g) => g.group === 'decode-worker')).to.include({ cpuMicrosPerRecord: 20, cpuFrom: 'ticks' });
  });

  it('reads this process: the main thread, and a worker thread by the name it gave itself', async function () {
    if (process.platform !== 'linux') this.skip();
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       import(${JSON.stringify(new URL('../../src/lifecycle/thread-names.js', import.meta.url).href)}).then((m) => { m.nameThisThread('test-named'); parentPort.postMessage('named'); });
       setInterval(() => {}, 1000);`,
      { eval: true },
    );
    try {
      await once(worker, 'message');
      const threads = sampleThreads(process.pid).threads;
      expect(threads.some((t) => t.tid === process.pid)).to.equal(true);
      expect(threads.filter((t) => t.name === 'test-named')).to.have.length(1);
    } finally {
      await worker.terminate();
    }
  });
});
