// Micro-benchmark of the decode worker's work on one thread: decodeBatch over a realistic batch (bench
// cars' frames: ~20-datum V records from the drive/charge story, the odd alert and error), what
// crossing back to the main thread costs (the structured clone of the result, its buffers transferred
// as the worker sends them), and the main thread's receiveOutcomes, per record.
//   node dist/bench/micro/decode-batch-micro.js [--frames 256] [--seconds 5] [--only worker|recycled|unwatched] [--rounds 1]
// Lines marked "unwatched" decode every frame as the pool does a VIN no dashboard watches when no sink
// reads record text (TEXT_LEVEL.VALUES_ONLY: the fleet's common case); the others as watched (a
// dashboard message per record: the task's `watched` absent).
// With --rounds N the lines are measured in turn N times: a line measured right after another is not
// favoured by the order (the first line of a run tends to come out lowest: the heap is still small).
import { parseArgs } from 'node:util';
import { decodeBatch, offerResultBuffers, receiveOutcomes, transcoderStats } from '../../src/decode/decode-batch.js';
import { TEXT_LEVEL, type DecodeResult, type DecodeTask } from '../../src/decode/decode-task.js';
import { packFrames } from '../../tools/pack-frames.js';
import { StoryFrames } from './story-frames.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '256' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string', default: '' },
    rounds: { type: 'string', default: '1' },
  },
});
const frameCount = Number(values.frames);
const seconds = Number(values.seconds);

function buildTask(): DecodeTask {
  const { frames, vins } = new StoryFrames().next(frameCount);
  return packFrames(frames, vins, 1_780_000_000_000);
}

function measure(label: string, task: DecodeTask, run: () => void): void {
  for (let i = 0; i < 200; i++) run(); // warm-up: JIT and the caches of the canonical writers
  let batches = 0;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const faultsStarted = process.resourceUsage().minorPageFault;
  const until = started + seconds * 1000;
  while (performance.now() < until) {
    run();
    batches++;
  }
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  // Page faults per batch and system time: what fresh memory per result costs (recycled results avoid it).
  const faults = (process.resourceUsage().minorPageFault - faultsStarted) / batches;
  const records = batches * task.vins.length;
  // CPU time is the figure to compare on a shared machine: wall time also counts waiting for a core.
  const cpuPerRecord = (cpu.user + cpu.system) / records;
  const wallPerRecord = (elapsed * 1000) / records;
  console.log(`${label.padEnd(44)} ${cpuPerRecord.toFixed(2).padStart(7)} us CPU/record  ${wallPerRecord.toFixed(2).padStart(7)} us wall/record  sys ${(cpu.system / records).toFixed(2)}  ${faults.toFixed(1).padStart(6)} faults/batch  (${batches} batches of ${task.vins.length})`);
}

/** What the worker posts: the result object with its one buffer in the transfer list. */
function crossBack(result: DecodeResult): DecodeResult {
  return structuredClone(result, { transfer: [result.buffer] });
}

/**
 * The server's round trip with recycling (DecodePool's recycleResults): the result crosses to the main
 * thread, which lets go of it a few batches later (its holders: the turn, the recent history's window)
 * and hands it back transferred with a later batch.
 */
const heldResults: DecodeResult[] = [];
function recycled(task: DecodeTask): void {
  heldResults.push(crossBack(decodeBatch(task)));
  if (heldResults.length > 4) {
    const done = heldResults.shift()!.buffer;
    offerResultBuffers([structuredClone(done, { transfer: [done] })]);
  }
}

const task = buildTask();
const sample = receiveOutcomes(decodeBatch(task), task.frames);
const records = sample.filter((o) => o.kind === 'record').length;
console.log(`batch: ${task.vins.length} frames, ${records} records, ${new Uint8Array(task.frames).byteLength} bytes; transcoder fallbacks so far: ${transcoderStats.fallbacks}`);
const natsTask: DecodeTask = { ...task, normalise: true };
const UNWATCHED_LEVEL: number = TEXT_LEVEL.VALUES_ONLY;
const unwatchedTask: DecodeTask = { ...task, watched: new Uint8Array(task.vins.length).fill(UNWATCHED_LEVEL) };
// Made when first measured: 64 results held from the start would change the other lines' GC.
let results: DecodeResult[] | null = null;
let next = 0;
for (let round = 0; round < Number(values.rounds); round++) {
  if (values.only === 'unwatched') {
    // The server's path for the fleet's common case alone (for a profile of it).
    measure('decodeBatch + transfer back, recycled, unwatched', unwatchedTask, () => recycled(unwatchedTask));
    continue;
  }
  if (values.only === 'recycled') {
    // The server's path alone (for a profile of it).
    measure('decodeBatch + transfer back, result recycled', task, () => recycled(task));
    measure('... every VIN unwatched (values only)', unwatchedTask, () => recycled(unwatchedTask));
    continue;
  }
  measure('decodeBatch (worker)', task, () => decodeBatch(task));
  measure('decodeBatch, every VIN unwatched (values only)', unwatchedTask, () => decodeBatch(unwatchedTask));
  measure('decodeBatch + normalised protobuf (NATS)', natsTask, () => decodeBatch(natsTask));
  if (values.only !== 'worker') {
    measure('decodeBatch + transfer back (worker total)', task, () => crossBack(decodeBatch(task)));
    measure('... and the result buffer recycled', task, () => recycled(task));
    measure('receiveOutcomes (main thread)', task, () => {
      results ??= Array.from({ length: 64 }, () => decodeBatch(task));
      receiveOutcomes(results[next++ % results.length]!, task.frames);
    });
  }
}
