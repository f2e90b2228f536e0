// What one decode batch costs beyond its decoding: the thread round trip. Lone frames (one frame per
// batch, as 1,000 cars at one frame a second each arrive) go through the real DecodePool and decode
// worker one after another, and the same frames are decoded inline with decodeBatch. Main-thread CPU
// and round-trip time per batch, and the whole process's CPU (worker included); then the same pool
// decoding those batches on the main thread (DECODE_INLINE_MAX_FRAMES), as the server does when idle.
//   node dist/bench/micro/batch-hop-micro.js [--batches 3000] [--frames 1]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DecodePool } from '../../src/decode/decode-pool.js';
import { decodeBatch, receiveOutcomes } from '../../src/decode/decode-batch.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { CarTalk, envelopeOf } from '../fleet/frames.js';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '3000' }, frames: { type: 'string', default: '1' } } });
const batches = Number(values.batches);
const perBatch = Number(values.frames);
const vin = '5YJBENCH000000001';
const talk = new CarTalk(vin, 1);
const frames: Uint8Array[] = [];
for (let tick = 0; frames.length < 512; tick++) {
  for (const record of talk.tick(new Date(1_780_000_000_000 + tick * 1000))) frames.push(envelopeOf(vin, `${tick.toString(16).padStart(22, '0')}-000000001`, record.topic, record.payload, `m${tick}`));
}

function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}
function threadCpuMicros(): number {
  // The main thread alone: the event loop's busy time (performance.eventLoopUtilization), which counts
  // wall time inside callbacks, a preempted callback included.
  return performance.eventLoopUtilization().active * 1000;
}
/** The main thread's own CPU time (Linux: its schedstat, in ns), 0 where there is none. */
const MAIN_SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;
function mainCpuMicros(): number {
  try {
    return Number(readFileSync(MAIN_SCHEDSTAT, 'latin1').split(' ')[0]) / 1000;
  } catch {
    return 0;
  }
}

async function viaPool(inlineMaxFrames: number): Promise<void> {
  let delivered = 0;
  let wake: () => void = () => {};
  const pool = new DecodePool<number>(
    { workers: 1, batchMaxFrames: 256, taskTimeoutMs: 10_000, inlineMaxFrames, metrics: new ServerMetrics({ version: 'bench' }).decode, logger: pino({ level: 'silent' }) },
    () => {
      if (++delivered % perBatch === 0) wake();
    },
  );
  const run = async (count: number): Promise<number[]> => {
    const rtts: number[] = [];
    for (let b = 0; b < count; b++) {
      const started = performance.now();
      const done = new Promise<void>((resolve) => (wake = resolve));
      for (let f = 0; f < perBatch; f++) {
        const frame = frames[(b * perBatch + f) % frames.length]!;
        pool.submit(frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer, vin, Date.now(), f);
      }
      await done;
      rtts.push(performance.now() - started);
    }
    return rtts;
  };
  await run(300); // warm-up: worker start, JIT on both sides
  const cpu0 = cpuMicros();
  const main0 = mainCpuMicros();
  const busy0 = threadCpuMicros();
  const wall0 = performance.now();
  const rtts = await run(batches);
  const wall = performance.now() - wall0;
  const cpu = cpuMicros() - cpu0;
  const busy = threadCpuMicros() - busy0;
  const main = mainCpuMicros() - main0;
  rtts.sort((a, b) => a - b);
  console.log(
    `pool${inlineMaxFrames > 0 ? ` with DECODE_INLINE_MAX_FRAMES=${inlineMaxFrames}` : ' (every batch to the worker)'}, ${perBatch} frame(s)/batch: process CPU ${(cpu / batches).toFixed(1)} us/batch, main thread CPU ${(main / batches).toFixed(1)} us/batch, busy ${(busy / batches).toFixed(1)} us/batch, ` +
      `round trip p50 ${(rtts[Math.floor(batches / 2)]! * 1000).toFixed(0)} us p99 ${(rtts[Math.floor(batches * 0.99)]! * 1000).toFixed(0)} us (${(wall / batches * 1000).toFixed(0)} us wall/batch)`,
  );
  await pool.close();
}

function inline(): void {
  const run = (count: number) => {
    for (let b = 0; b < count; b++) {
      const shared = new SharedArrayBuffer(frames.slice(0, perBatch).reduce((n, f) => n + f.length, 0) + 4096);
      const offsets = new Uint32Array(perBatch + 1);
      const view = new Uint8Array(shared);
      for (let f = 0, at = 0; f < perBatch; f++) {
        const frame = frames[(b * perBatch + f) % frames.length]!;
        view.set(frame, at);
        at += frame.length;
        offsets[f + 1] = at;
      }
      receiveOutcomes(decodeBatch({ frames: shared, offsets, vins: new Array(perBatch).fill(vin), receivedAt: new Float64Array(perBatch).fill(Date.now()) }), shared);
    }
  };
  run(300);
  const cpu0 = cpuMicros();
  run(batches);
  console.log(`inline decodeBatch + receiveOutcomes, ${perBatch} frame(s)/batch: ${((cpuMicros() - cpu0) / batches).toFixed(1)} us CPU/batch`);
}

inline();
await viaPool(0);
// The pool's own inline path: the same submit, copy, setImmediate flush and delivery, minus the hop.
await viaPool(Math.max(perBatch, 4));
