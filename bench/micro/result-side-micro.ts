// Micro-benchmark of the main thread's result side, per record: a decoded batch (bench cars' frames, as
// a decode worker returns it) delivered the way DecodePool.deliver delivers it, to per-VIN actors that
// fold last-known state, build the bus record and publish it on the in-process bus (one subscriber
// reading what the dashboard hub and the recent history read), and queue each reply. Decoding is not
// timed (it is the worker's); only the CPU time of the delivery is.
//   node dist/bench/micro/result-side-micro.js [--frames 256] [--seconds 5] [--watched 0|1]
//     [--cars 16] [--reads all|samples] [--evict-kb 0] [--holds 0|1] [--arrive-late 0|1] [--recycle 0|1]
// The sparse regime, cold: `--frames 1 --cars 1000 --reads samples --evict-kb 2048` delivers each record
// as a lone batch, the cars in turn, N KB of scratch memory written before each (so the car's actor,
// state and the result side's data are out of the caches, as a second later in the server), and times
// each delivery alone (median and mean of the records, wall clock). `--reads samples` has the one
// subscriber read only what the default setup reads of a record nobody watches (the recent history:
// the decode stage's samples and created_at ms); `all` (default) what the hub and history read of a
// watched one (text, datums, created_at). `--holds 1` subscribes the reader with `holdsRecords`, as the
// server's dashboard hub and recent history do: the actor then makes no txid or created_at text at once
// (DecodedRecord's `keep`); with 0 (default) it makes both, as a bus with a listener that may keep records.
// `--recycle 1` (lone batches): each result is in one of a few recycled buffers, as the server's inline
// path has it, so a batch meets a buffer (and its views) used before: with `--arrive-late 1` it is
// decoded into a small spare and handed back after its delivery (decodeBatch's smallSpares,
// offerInlineResultBuffer); without, the pre-decoded result is copied into one of four buffers in turn
// before the eviction (not timed).
import { parseArgs } from 'node:util';
import { VehicleActor, type FrameTicket } from '../../src/actors/vehicle-actor.js';
import type { VehicleConnection } from '../../src/actors/vehicle-connection.js';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { dashboardMessageOf } from '../../src/dashboard/dashboard-protocol.js';
import { decodeBatch, offerInlineResultBuffer } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import type { DecodeResult, DecodeTask } from '../../src/decode/decode-task.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { packFrames } from '../../tools/pack-frames.js';
import { StoryFrames } from './story-frames.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '256' },
    seconds: { type: 'string', default: '5' },
    watched: { type: 'string', default: '1' },
    cars: { type: 'string', default: '16' },
    reads: { type: 'string', default: 'all' },
    'evict-kb': { type: 'string', default: '0' },
    holds: { type: 'string', default: '0' },
    'arrive-late': { type: 'string', default: '0' },
    recycle: { type: 'string', default: '0' },
  },
});
const readsAll = values.reads !== 'samples';
const evictBytes = Number(values['evict-kb']) * 1024;
const EVICT = new Int32Array(Math.max(16, evictBytes >> 2));
let evictSum = 0;
/** Writes (and reads) every cache line of the scratch memory: what ran between two records of a car. */
function evict(): void {
  const words = EVICT;
  for (let w = 0; w < words.length; w += 16) words[w] = (words[w]! + w) | 0;
  evictSum = (evictSum + words[16]!) | 0;
}
const frameCount = Number(values.frames);
const seconds = Number(values.seconds);
const watched = values.watched === '1';
const CARS = Number(values.cars);
/** Each delivery timed alone (lone batches; the CPU clock is too coarse for one). */
const lone = frameCount === 1;
/**
 * `--arrive-late 1` (lone batches only): each frame arrives after the eviction (the actor's nextFrame),
 * is decoded and delivered, and the three are timed together: what the server does with a lone frame
 * in its turn, minus the socket and the pool.
 */
const arriveLate = lone && values['arrive-late'] === '1';
const recycle = lone && values.recycle === '1';
/** The buffers a pre-decoded lone result is copied into (`--recycle 1` without `--arrive-late`). */
const RECYCLED = Array.from({ length: 4 }, () => new ArrayBuffer(64 * 1024));
let recycledNext = 0;
/** The result as if decoded into a recycled buffer. */
function recycled(result: DecodeResult): DecodeResult {
  const buffer = RECYCLED[recycledNext]!;
  recycledNext = (recycledNext + 1) & 3;
  new Uint8Array(buffer).set(new Uint8Array(result.buffer, 0, result.end ?? result.buffer.byteLength));
  return { ...result, buffer };
}
const START = 1_780_000_000_000;

const story = new StoryFrames(CARS, START);

/** The next batch of the cars' story (each batch new records, so state keeps being replaced). */
function nextTask(): DecodeTask {
  const { frames, vins } = story.next(frameCount);
  return packFrames(frames, vins, story.atMs, watched);
}

const metrics = new ServerMetrics({ collectDefaults: false });
const bus = new InProcessBus();
let sink = 0;
// What the hub (vin, bytes and text of a watched VIN) and the history (V records' datums) read.
bus.subscribe((record: BusRecord) => {
  if (!readsAll) {
    sink += (record.sampleAt ?? 0) + (record.createdAtMs ?? 0) + record.receivedAt + record.vin.length;
    return;
  }
  if (record.topic === 'V' && record.recordJson !== null && record.datums !== undefined && record.datumText !== undefined) sink += record.datums.length + record.datumText.length + (record.createdAt?.length ?? 0) + record.receivedAt;
  if (watched && record.dashboardBytes !== undefined) sink += record.dashboardBytes.byteLength + dashboardMessageOf(record).length;
  sink += record.vin.length;
}, { holdsRecords: values.holds === '1' });
let replies = 0;
const actors = new Map<string, { actor: VehicleActor; connection: VehicleConnection }>();
for (const { vin } of story.talks) {
  const connection: VehicleConnection = { connectionId: vin, vin, networkInterface: 'wifi', clientVersion: '2024.44.25', connectedAt: START, isOpen: true, sendReply: () => { replies++; } };
  actors.set(vin, { actor: new VehicleActor(vin, bus, metrics.actors, START), connection });
}

/** What DecodePool.deliver does with a worker's result: every frame to its actor, in order. */
function deliver(result: DecodeResult, task: DecodeTask, tickets: FrameTicket[]): void {
  const batch = new DecodedBatch(result, task.frames);
  for (let i = 0; i < tickets.length; i++) tickets[i]!.actor.decoded(tickets[i]!, batch, i);
}

// Batches are decoded ahead in rounds of ~4,096 frames, and a round is delivered in one timed stretch:
// the process's CPU clock is too coarse to time one batch.
const perRound = Math.max(1, Math.ceil(4096 / frameCount));
// The cars' frames are made once (eight rounds, replayed in turn): making them is most of the garbage.
const rounds = Array.from({ length: lone ? 2 : 8 }, () => Array.from({ length: perRound }, () => nextTask()));
let records = 0;
let cpu = 0;
let batches = 0;
let until = Infinity;
let warm = 3;
const times: number[] = [];
for (let r = 0; performance.now() < until; r++) {
  // Late arrivals are ticketed and decoded in the timed loop.
  const round: Array<{ task: DecodeTask; tickets: FrameTicket[]; result: DecodeResult | null }> = arriveLate ? rounds[r % rounds.length]!.map((task) => ({ task, tickets: [], result: null })) : rounds[r % rounds.length]!.map((task) => {
    const tickets = task.vins.map((vin, i) => {
      const { actor, connection } = actors.get(vin)!;
      return actor.frameArrived(connection, task.receivedAt[i]!, performance.now());
    });
    return { task, tickets, result: decodeBatch(task) };
  });
  const started = process.cpuUsage();
  if (lone && arriveLate) {
    for (const { task } of round) {
      if (evictBytes !== 0) evict();
      const t0 = performance.now();
      const tickets = task.vins.map((vin, i) => {
        const { actor, connection } = actors.get(vin)!;
        return actor.frameArrived(connection, task.receivedAt[i]!, t0);
      });
      const result = decodeBatch(task, recycle);
      deliver(result, task, tickets);
      // The reader holds nothing past its call: the buffer is free at once (the pool's next turn).
      if (recycle) offerInlineResultBuffer(result.buffer);
      const t1 = performance.now();
      if (warm === 0) times.push((t1 - t0) * 1000);
    }
  } else if (lone) {
    for (const { task, tickets, result } of round) {
      const delivered = recycle ? recycled(result!) : result!;
      if (evictBytes !== 0) evict();
      const t0 = performance.now();
      deliver(delivered, task, tickets);
      const t1 = performance.now();
      if (warm === 0) times.push((t1 - t0) * 1000);
    }
  } else {
    for (const { task, tickets, result } of round) deliver(result!, task, tickets);
  }
  const used = process.cpuUsage(started);
  if (warm > 0) {
    // Warm-up: JIT, the actors' state filled. The measured window starts after it.
    if (--warm === 0) until = performance.now() + seconds * 1000;
    continue;
  }
  cpu += used.user + used.system;
  records += perRound * frameCount;
  batches += perRound;
}
console.log(`result side (deliver -> actor -> in-process bus), ${frameCount}-frame batches, dashboards ${watched ? 'watching' : 'not watching'}: ${(cpu / records).toFixed(3)} us CPU/record (${batches} batches; ${replies} replies, ${sink > 0 ? 'read' : 'none'})`);
if (lone) {
  times.sort((a, b) => a - b);
  const mean = times.reduce((sum, t) => sum + t, 0) / times.length;
  console.log(`  lone deliveries timed alone (${CARS} cars in turn, ${values['evict-kb']} KB evicted before each, reads ${readsAll ? 'all' : 'samples'}${values.holds === '1' ? ', holds' : ''}${recycle ? ', recycled' : ''}): median ${times[times.length >> 1]!.toFixed(3)} us, mean ${mean.toFixed(3)} us, p90 ${times[Math.floor(times.length * 0.9)]!.toFixed(3)} us (${times.length} records; ${evictSum === 1 ? '' : 'evicted'})`);
}
