// What the decode pool costs a lone frame on the main thread beyond decoding it: the sparse regime
// (1,000 cars at one frame a second each), where every frame is alone in its event-loop turn and is
// decoded inline. Per frame, process CPU of: the turn alone (a port message and a setImmediate, the
// harness's own cost), decodeBatch + receiveOutcomes called directly on a task built once, and the same frames
// through DecodePool.submit (copy, columns, the flush on the next turn, inline decode, delivery, metrics)
// with a fresh buffer per batch, with the inline buffer reused (DecodePoolOptions.reuseInlineFrames), and
// with that and the result buffers recycled too (recycleResults: the server's in-process bus; the result
// of a lone frame written into a spare let go of by an earlier batch instead of a new buffer each).
// "pool overhead" is the pool's figure minus the other two: the submit side's fixed cost per frame.
// The pool variants take the frame's arrival clock read and hand its ack to a real vehicle connection's
// reply queue (a socket that takes every send), as the server's message handler and actor do, with the
// listener's delivery bracket (replyFlush) when the listener module has one: so the "pool" lines hold
// the ack's queueing and flush too, which "direct" does not.
// --evict-kb N writes N KB of scratch memory before each frame (every variant, the turn alone included,
// so it cancels out): in the server a lone frame finds the decoder's code and data cold, evicted by the
// TLS, uWS and kernel work of the other 999 cars' turns since its car's last frame. Each frame has its own
// receivedAt (one ms after the last), as a lone frame in the server has (frames ~1 ms apart).
// --evict-code N runs N distinct optimised functions (a few hundred bytes of machine code each, almost
// no data) before each frame, every variant again: the decoder's lines stay in L2 while its L1i,
// micro-op cache, branch predictor and iTLB entries are taken by other code, as the TLS, uWS and other
// JavaScript between two lone frames in the server do (engineer V's method). Both options combine.
// With either, the CPU lines subtract two large, noisy figures (the eviction itself is in each): read the
// line "one call timed alone", the median of each direct call's own time (1,000 functions: a lone V
// frame's decodeBatch ~5.7 µs warm -> ~25 cold on the 2-core box, as V measured in a scratch loop).
// --unwatched 1 decodes every frame as a VIN no dashboard watches (the fleet's common case: values only,
// TEXT_LEVEL.VALUES_ONLY; the pool's isWatched says no), rather than with its dashboard message.
//   node dist/bench/micro/lone-frame-micro.js [--frames 20000] [--rounds 3] [--evict-kb 0] [--evict-code 0] [--unwatched 0]
import { parseArgs } from 'node:util';
import { MessageChannel } from 'node:worker_threads';
import pino from 'pino';
import { DecodePool, type DecodePoolOptions } from '../../src/decode/decode-pool.js';
import { decodeBatch, receiveOutcomes } from '../../src/decode/decode-batch.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { CarTalk, envelopeOf } from '../fleet/frames.js';
import * as vehicleListener from '../../src/vehicle/vehicle-listener.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' }, 'evict-kb': { type: 'string', default: '0' }, 'evict-code': { type: 'string', default: '0' }, unwatched: { type: 'string', default: '0' } } });
const unwatched = values.unwatched === '1';
/** The task's watched column of an unwatched VIN (the branch point's tree: 0, the record JSON alone). */
const UNWATCHED_LEVEL = 2;
const count = Number(values.frames);
const rounds = Number(values.rounds);
const evictBytes = Number(values['evict-kb']) * 1024;
const EVICT = new Int32Array(Math.max(16, evictBytes >> 2));
let evictSum = 0;
/**
 * Unrelated code: functions of one shape with distinct constants (each its own bytecode, hence its own
 * optimised code), branchy enough that each leaves its own branch-predictor and BTB entries.
 */
const CODE = Array.from({ length: Number(values['evict-code']) }, (_, f) => {
  const body: string[] = ['var a = x | 0, b = (x >>> 3) | 0;'];
  for (let k = 0; k < 12; k++) {
    const c = (f * 131 + k * 17 + 7) | 0;
    body.push(`if ((a & ${1 << (k % 8)}) !== 0) a = (a * ${c} + b) | 0; else b = (b ^ ${c + 3}) + (a >>> ${1 + (k % 5)}) | 0;`);
  }
  body.push('return (a ^ b) | 0;');
  return new Function('x', body.join('\n')) as (x: number) => number;
});
/** One write per cache line of the scratch memory (the lines the last frame used are gone), then the other code. */
function evict(): void {
  if (evictBytes !== 0) {
    const words = EVICT;
    for (let i = 0; i < words.length; i += 16) words[i] = (words[i]! + i) | 0;
    evictSum = (evictSum + words[16]!) | 0;
  }
  const code = CODE;
  let x = evictSum;
  for (let f = 0; f < code.length; f++) x = code[f]!(x + f);
  evictSum = x;
}
// The other code optimised before measuring, as the server's is.
for (let r = 0; r < 20_000; r++) evict();
const vin = '5YJBENCH000000001';
const RECEIVED_AT = Date.now();
const talk = new CarTalk(vin, 1);
// Each frame in its own ArrayBuffer, as uWS hands the message handler one.
const frames: ArrayBuffer[] = [];
for (let tick = 0; frames.length < 512; tick++) {
  for (const record of talk.tick(new Date(1_780_000_000_000 + tick * 1000))) {
    const bytes = envelopeOf(vin, `${tick.toString(16).padStart(22, '0')}-000000001`, record.topic, record.payload, `m${tick}`);
    frames.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  }
}

function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/**
 * Runs `step` once per event-loop turn, `n` times; resolves with the process CPU per turn in µs. Each
 * step starts from a port message, in the loop's poll phase as uWS's message handler does, so the
 * pool's setImmediate flush runs in the same loop iteration, as in the server.
 */
function perTurn(n: number, step: (i: number, next: () => void) => void): Promise<number> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    let i = 0;
    const cpu0 = cpuMicros();
    const next = (): void => port2.postMessage(null);
    port1.on('message', () => {
      if (i === n) {
        port1.close();
        resolve((cpuMicros() - cpu0) / n);
        return;
      }
      evict();
      step(i++, next);
    });
    next();
  });
}

// Each variant answers from the loop's check phase (setImmediate), where the pool's flush runs: the
// harness's port wakeup then costs the same in all three.
const turnAlone = (n: number): Promise<number> => perTurn(n, (_i, next) => setImmediate(next));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Per round of the recycled pool: the median submit-to-ack-write wall time (µs). */
const ROUNDS_TURN: number[] = [];

/** Wall time of each direct decodeBatch + receiveOutcomes call (µs), for its median: steadier than CPU differences. */
let CALLS: number[] = [];
const callMedians: number[] = [];

function direct(n: number): Promise<number> {
  CALLS = [];
  const shared = new SharedArrayBuffer(64 * 1024);
  const view = new Uint8Array(shared);
  const task = { frames: shared, offsets: new Uint32Array(2), vins: [vin], receivedAt: new Float64Array(1), watched: Uint8Array.of(unwatched ? UNWATCHED_LEVEL : 1) };
  return perTurn(n, (i, next) => {
    const frame = new Uint8Array(frames[i % frames.length]!);
    view.set(frame);
    task.offsets[1] = frame.byteLength;
    task.receivedAt[0] = RECEIVED_AT + i;
    setImmediate(() => {
      const t0 = performance.now();
      receiveOutcomes(decodeBatch(task), shared, task.vins);
      CALLS.push(performance.now() - t0);
      next();
    });
  });
}

/** When the frame being measured was submitted (performance.now()), and each frame's time from then to its ack's write (ms). */
let submittedAt = 0;
let ACK_TIMES: number[] = [];
/** A socket that takes every send, inside a cork (what flushReplies calls on a uWS WebSocket). */
const OPEN_SOCKET = {
  cork: (send: () => void): void => send(),
  send: (): number => {
    ACK_TIMES.push(performance.now() - submittedAt);
    return 1;
  },
};
/** The bracket the server hands the pool, when this tree's listener has one (replyFlush). */
const aroundDelivery = (vehicleListener as { replyFlush?: { begin(): void; end(): void } }).replyFlush;

async function viaPool(n: number, reuseInlineFrames: boolean, recycle = false): Promise<number> {
  let after: () => void = () => {};
  const metrics = new ServerMetrics({ version: 'bench' });
  const connection = new vehicleListener.UwsVehicleConnection('bench', vin, 'vehicle_device', '', '', metrics.vehicle);
  connection.attach(OPEN_SOCKET as unknown as Parameters<typeof connection.attach>[0]);
  const pool = new DecodePool<number>(
    // Asserted: the same file builds in the branch point's tree, whose options have no aroundDelivery.
    { workers: 1, batchMaxFrames: 256, taskTimeoutMs: 10_000, inlineMaxFrames: 4, reuseInlineFrames, ...(unwatched ? { isWatched: () => false } : {}), recycleResults: () => recycle, aroundDelivery, metrics: metrics.decode, logger: pino({ level: 'silent' }) } as DecodePoolOptions,
    // Not kept (a port.postMessage returns true, which would say kept). The ack queued as the actor does.
    (_ticket, batch, index, _seq, arrivedAt) => {
      connection.awaitingReply++;
      connection.sendReply(batch.reply(index), 'ack', arrivedAt);
      after();
    },
  );
  try {
    // The worker's start (module loading, the transcoders) is process CPU too: done before measuring,
    // by one batch too big to decode inline.
    await new Promise<void>((resolve) => {
      let left = 5;
      after = () => {
        if (--left === 0) resolve();
      };
      for (let i = 0; i < 5; i++) pool.submit(frames[i]!, vin, Date.now(), i, i, performance.now());
    });
    ACK_TIMES = [];
    const cpu = await perTurn(n, (i, next) => {
      // The wall time from this submit to its ack's write (the hop, decode, delivery, the reply's queue and
      // flush): its median is steadier than CPU differences on a shared box, and holds no eviction.
      const now = performance.now();
      submittedAt = now;
      after = next;
      // The arrival read the server's message handler takes for the ack latency.
      pool.submit(frames[i % frames.length]!, vin, RECEIVED_AT + i, i, i, now);
    });
    if (recycle) ROUNDS_TURN.push(median(ACK_TIMES) * 1000);
    // Every ack written (the reply queue flushed in either tree's way), none dropped.
    if (metrics.vehicle.replyCells.ack.pending !== n + 5) throw new Error(`${metrics.vehicle.replyCells.ack.pending} acks written of ${n + 5}`);
    return cpu;
  } finally {
    // The last batch waits for a next flush that never comes.
    if (recycle && pool.inlineResultsLetGo < n - 1) throw new Error(`only ${pool.inlineResultsLetGo} of ${n} results recycled`);
    await pool.close();
  }
}

const rows: Record<string, number[]> = { turn: [], direct: [], fresh: [], reused: [], recycled: [] };
await turnAlone(2000);
await direct(2000);
await viaPool(2000, false);
await viaPool(2000, true);
await viaPool(2000, true, true);
for (let r = 0; r < rounds; r++) {
  rows.turn!.push(await turnAlone(count));
  rows.direct!.push(await direct(count));
  callMedians.push(median(CALLS) * 1000);
  rows.fresh!.push(await viaPool(count, false));
  rows.reused!.push(await viaPool(count, true));
  rows.recycled!.push(await viaPool(count, true, true));
}
const turn = median(rows.turn!);
const decode = median(rows.direct!) - turn;
console.log(`lone frames, ${count} per run, median of ${rounds} runs, ${evictBytes / 1024} KB evicted and ${CODE.length} other functions run per frame (process CPU µs per frame):`);
console.log(`  the turn alone (a port message, setImmediate) ${turn.toFixed(2)}`);
console.log(`  decodeBatch + receiveOutcomes, direct        ${decode.toFixed(2)}  (beyond the turn)`);
console.log(`  the same, one call timed alone (median)      ${median(callMedians).toFixed(2)}  (rounds ${callMedians.map((m) => m.toFixed(2)).join(' ')})`);
for (const [name, label] of [['fresh', 'pool, a new buffer per batch'], ['reused', 'pool, inline buffer reused'], ['recycled', 'pool, inline buffer reused, results recycled']] as const) {
  const total = median(rows[name]!);
  console.log(`  ${label.padEnd(44)} ${(total - turn).toFixed(2)}  (beyond the turn; pool overhead ${(total - turn - decode).toFixed(2)})`);
}
// The warm-up's round is the first.
const turnRounds = ROUNDS_TURN.slice(1);
console.log(`  recycled pool, submit to the ack's write, wall (median of frames, of rounds) ${median(turnRounds).toFixed(2)}  (rounds ${turnRounds.map((m) => m.toFixed(2)).join(' ')})`);
if (evictSum === 0.5) console.log('unreachable: keeps the eviction loop observable');
