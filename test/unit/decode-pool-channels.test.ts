import { expect } from 'chai';
import pino from 'pino';
import client from 'prom-client';
import { DecodeMetrics } from '../../src/decode/decode-metrics.js';
import { DecodePool } from '../../src/decode/decode-pool.js';
import type { DecodedBatch } from '../../src/decode/decoded-batch.js';
import type { FrameOutcome } from '../../src/decode/decode-task.js';
import { readEnvelope, writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { SLOW_WORKER_LOADED } from '../helpers/worker-load-signal.js';

const VIN = '5YJ3E1EA7KF000001';

function frame(txid: string, odometer: number): ArrayBuffer {
  const payload = encodeVehicleData({ vin: 'SPOOFED0000000000', createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: odometer } }] });
  const bytes = writeStreamEnvelope({ txid, topic: 'V', payload });
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * A pool whose handler records each frame's outcome and the frames buffer it was read from (and keeps
 * the batch when `keeps` says so), with `submitTurn(from, count)`: frames from..from+count-1 submitted in
 * one turn, resolved once every one has its outcome.
 */
function recordingPool(options: { workers: number; inlineMaxFrames: number; reuseInlineFrames: boolean; registry?: client.Registry }, baseMs: number, keeps: (ticket: number) => boolean = () => false) {
  const outcomes = new Map<number, { outcome: FrameOutcome; buffer: ArrayBufferLike }>();
  let wanted = 0;
  let done: () => void = () => {};
  const pool = new DecodePool<number>(
    { workers: options.workers, batchMaxFrames: 64, taskTimeoutMs: 5_000, inlineMaxFrames: options.inlineMaxFrames, reuseInlineFrames: options.reuseInlineFrames, metrics: new DecodeMetrics(options.registry ?? new client.Registry()), logger: pino({ level: 'silent' }) },
    (ticket, batch, index) => {
      outcomes.set(ticket, { outcome: batch.outcome(index), buffer: batch.frames.buffer });
      if (outcomes.size === wanted) done();
      return keeps(ticket);
    },
  );
  const submitTurn = (from: number, count: number) =>
    new Promise<void>((resolve) => {
      wanted = from + count;
      done = resolve;
      for (let i = from; i < from + count; i++) pool.submit(frame(`tx-${i}`, i), VIN, baseMs + i * 1000, i);
    });
  return { pool, outcomes, submitTurn };
}

describe('decode pool: batches on a port per worker', function () {
  this.timeout(20_000);

  it('closes only after its workers have loaded their modules (a worker terminated mid-load can abort the process)', async () => {
    const loaded = new BroadcastChannel(SLOW_WORKER_LOADED);
    let loads = 0;
    loaded.onmessage = () => loads++;
    try {
      const pool = new DecodePool<number>(
        { workers: 2, batchMaxFrames: 64, taskTimeoutMs: 5_000, inlineMaxFrames: 0, workerFile: new URL('../helpers/slow-loading-decode-worker.js', import.meta.url), metrics: new DecodeMetrics(new client.Registry()), logger: pino({ level: 'silent' }) },
        () => false,
      );
      await pool.close();
      // The announcements travel through the channel: give them a turn or two to arrive.
      for (let i = 0; i < 50 && loads < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(loads, 'workers that finished loading before close() resolved').to.be.at.least(2);
    } finally {
      loaded.close();
    }
  });

  it('brackets every delivery with aroundDelivery, inline and worker batches alike, and ends the bracket when a handler throws', async () => {
    const events: string[] = [];
    let left = 0;
    let done: () => void = () => {};
    const pool = new DecodePool<number>(
      {
        workers: 1,
        batchMaxFrames: 64,
        taskTimeoutMs: 5_000,
        inlineMaxFrames: 4,
        aroundDelivery: { begin: () => events.push('begin'), end: () => events.push('end') },
        metrics: new DecodeMetrics(new client.Registry()),
        logger: pino({ level: 'silent' }),
      },
      (ticket) => {
        events.push(`frame ${ticket}`);
        if (--left === 0) done();
        if (ticket === 1) throw new Error('a handler that throws');
      },
    );
    const turn = (tickets: number[]) =>
      new Promise<void>((resolve) => {
        left = tickets.length;
        done = resolve;
        for (const ticket of tickets) pool.submit(frame(`tx-${ticket}`, ticket), VIN, Date.now(), ticket);
      });
    try {
      await turn([0]);
      await turn([1]);
      // Too many frames to decode inline: one worker batch.
      await turn([2, 3, 4, 5, 6, 7]);
    } finally {
      await pool.close();
    }
    expect(pool.workerMessages).to.equal(1);
    expect(events).to.deep.equal(['begin', 'frame 0', 'end', 'begin', 'frame 1', 'end', 'begin', 'frame 2', 'frame 3', 'frame 4', 'frame 5', 'frame 6', 'frame 7', 'end']);
  });

  it('decodes batches in the workers from the columns in the shared buffer: each frame its own outcome, VIN and arrival time', async () => {
    const seen = new Map<number, FrameOutcome>();
    let done: () => void = () => {};
    const count = 40;
    // Inline decoding off: every batch takes a worker's port.
    const pool = new DecodePool<number>(
      { workers: 2, batchMaxFrames: 8, taskTimeoutMs: 5_000, inlineMaxFrames: 0, metrics: new DecodeMetrics(new client.Registry()), logger: pino({ level: 'silent' }) },
      (ticket, batch, index) => {
        seen.set(ticket, batch.outcome(index));
        if (seen.size === count) done();
      },
    );
    try {
      const receivedAt = Date.UTC(2026, 10, 30, 6, 0, 0);
      await new Promise<void>((resolve) => {
        done = resolve;
        for (let i = 0; i < count; i++) pool.submit(frame(`tx-${i}`, i), VIN, receivedAt + i * 1000, i);
      });
      for (let i = 0; i < count; i++) {
        const outcome = seen.get(i)!;
        expect(outcome.kind, `frame ${i}`).to.equal('record');
        expect(outcome.txid).to.equal(`tx-${i}`);
        const record = JSON.parse(outcome.recordJson!) as { vin: string; data: Array<{ key: string; value: unknown }> };
        expect(record.vin, 'the certificate VIN, from the batch column').to.equal(VIN);
        expect(JSON.stringify(record.data)).to.contain(String(i));
        expect(outcome.dashboardMessage, 'the arrival time, from the batch column').to.contain(`"receivedAt":"${new Date(receivedAt + i * 1000).toISOString()}"`);
      }
      // 40 frames of 8 per batch at most: at least 5 messages, and one per batch, not per frame.
      expect(pool.workerMessages).to.be.at.least(5).and.below(count);
    } finally {
      await pool.close();
    }
  });

  it('reports its queue depth and the share of workers with a batch posted as they are when scraped', async () => {
    const registry = new client.Registry();
    const metrics = new DecodeMetrics(registry);
    const gauges = async (): Promise<[number, number]> => {
      const read = async (name: string): Promise<number> => (await registry.getSingleMetric(name)!.get()).values[0]!.value;
      return [await read('fleet_telemetry_decode_queue_depth'), await read('fleet_telemetry_decode_pool_utilisation_ratio')];
    };
    let delivered = 0;
    let wanted = 0;
    let done: () => void = () => {};
    // One worker, batches of 8, inline decoding off: a turn of 40 frames is 5 batches, 2 posted (one running,
    // one waiting in the worker's port) and 3 queued.
    const pool = new DecodePool<number>(
      { workers: 1, batchMaxFrames: 8, taskTimeoutMs: 5_000, inlineMaxFrames: 0, metrics, logger: pino({ level: 'silent' }) },
      () => {
        if (++delivered === wanted) done();
      },
    );
    const turn = (from: number, count: number): Promise<void> =>
      new Promise<void>((resolve) => {
        wanted = from + count;
        done = resolve;
        for (let i = from; i < from + count; i++) pool.submit(frame(`tx-${i}`, i), VIN, Date.UTC(2026, 10, 30, 9, 0, 0) + i, i);
      });
    try {
      await turn(0, 1); // the worker is ready once its first batch is answered
      expect(await gauges()).to.deep.equal([0, 0]);
      const busy = turn(1, 40);
      expect(await gauges(), 'scraped before any answer: 3 batches queued, the one worker busy').to.deep.equal([3, 1]);
      await busy;
      expect(await gauges(), 'every batch answered').to.deep.equal([0, 0]);
    } finally {
      await pool.close();
    }
  });

  it('decodes lone frames inline on one reused buffer when reuseInlineFrames is set, each with its own outcome; without it each batch has its own', async () => {
    for (const reuseInlineFrames of [true, false]) {
      const registry = new client.Registry();
      const sent = [0, 1, 2, 3, 4].map((i) => frame(`tx-${i}`, 1000 + i));
      const buffers: ArrayBufferLike[] = [];
      const records: Array<{ odometer: string; payload: number[] }> = [];
      let delivered: () => void = () => {};
      const pool = new DecodePool<number>(
        { workers: 1, batchMaxFrames: 8, taskTimeoutMs: 5_000, inlineMaxFrames: 4, reuseInlineFrames, metrics: new DecodeMetrics(registry), logger: pino({ level: 'silent' }) },
        (_ticket, batch, index) => {
          const outcome = batch.outcome(index);
          const frames = batch.frames;
          buffers.push(frames.buffer);
          // What a subscriber reads while the outcome is handed over: the record and the payload bytes.
          records.push({ odometer: JSON.stringify((JSON.parse(outcome.recordJson!) as { data: unknown[] }).data), payload: [...frames.subarray(outcome.payloadStart, outcome.payloadEnd)] });
          delivered();
        },
      );
      try {
        for (let i = 0; i < 5; i++) {
          const bytes = sent[i]!;
          await new Promise<void>((resolve) => {
            delivered = resolve;
            pool.submit(bytes, VIN, Date.now(), i);
          });
        }
      } finally {
        await pool.close();
      }
      expect(pool.workerMessages, 'every lone frame decoded inline').to.equal(0);
      expect(records.map((r) => r.odometer)).to.deep.equal([0, 1, 2, 3, 4].map((i) => JSON.stringify([{ key: 'Odometer', value: { doubleValue: 1000 + i } }])));
      for (let i = 0; i < 5; i++) expect(records[i]!.payload, `frame ${i}'s payload`).to.deep.equal([...decodePayloadOf(sent[i]!)]);
      expect(new Set(buffers).size, reuseInlineFrames ? 'one buffer for every inline batch' : 'a buffer per batch').to.equal(reuseInlineFrames ? 1 : 5);
      const text = await registry.metrics();
      expect(text).to.contain('fleet_telemetry_decode_batches_total{path="inline"} 5');
      expect(text).to.contain('fleet_telemetry_decode_batch_frames_count 5');
      expect(text).to.contain('fleet_telemetry_decode_batch_latency_seconds_count 5');
      expect(text, 'inline batches are no worker\'s load').to.contain('fleet_telemetry_decode_worker_busy_seconds_total 0\n');
    }
  });

  it('hands a turn too big for inline decoding to a worker with its own buffer, columns grown past their first size, and decodes the next lone frame inline on that buffer once the batch is delivered', async () => {
    const registry = new client.Registry();
    const receivedAt = Date.UTC(2026, 10, 30, 8, 0, 0);
    const { pool, outcomes, submitTurn } = recordingPool({ workers: 1, inlineMaxFrames: 4, reuseInlineFrames: true, registry }, receivedAt);
    try {
      await submitTurn(0, 1);
      await submitTurn(1, 40);
      await submitTurn(41, 1);
    } finally {
      await pool.close();
    }
    expect(pool.workerMessages, 'the 40 frames of one turn in one worker message').to.equal(1);
    for (let i = 0; i < 42; i++) {
      const { outcome } = outcomes.get(i)!;
      expect(outcome.txid).to.equal(`tx-${i}`);
      expect(JSON.stringify((JSON.parse(outcome.recordJson!) as { data: unknown[] }).data)).to.equal(JSON.stringify([{ key: 'Odometer', value: { doubleValue: i } }]));
      expect(outcome.dashboardMessage).to.contain(`"receivedAt":"${new Date(receivedAt + i * 1000).toISOString()}"`);
    }
    const workerBuffer = outcomes.get(1)!.buffer;
    expect(outcomes.get(40)!.buffer).to.equal(workerBuffer);
    expect(outcomes.get(0)!.buffer, 'the inline buffer did not go to the worker').to.not.equal(workerBuffer);
    // Delivered, and kept by no handler (nothing parked), the worker batch's buffer goes on to the next batch.
    expect(outcomes.get(41)!.buffer, 'the delivered worker batch\'s buffer reused').to.equal(workerBuffer);
    const text = await registry.metrics();
    expect(text).to.contain('fleet_telemetry_decode_batches_total{path="inline"} 2');
    expect(text).to.contain('fleet_telemetry_decode_batches_total{path="worker"} 1');
    // The worker batch's post-to-answer time: part of the latency histogram's sum, which also holds the two inline batches.
    const busy = Number(/^fleet_telemetry_decode_worker_busy_seconds_total (\S+)$/m.exec(text)?.[1]);
    const latencySum = Number(/^fleet_telemetry_decode_batch_latency_seconds_sum (\S+)$/m.exec(text)?.[1]);
    expect(busy).to.be.greaterThan(0);
    expect(busy).to.be.at.most(latencySum);
  });
});

describe('decode pool: a worker batch\'s frames buffer reused after delivery', function () {
  this.timeout(20_000);

  for (const keep of [false, true]) it(keep ? 'is not reused when a handler keeps the batch (a parked outcome), nor without reuseInlineFrames' : 'goes to the next batch when every outcome was handled at once, which reads its own frames', async () => {
    for (const reuseInlineFrames of keep ? [true, false] : [true]) {
      const { pool, outcomes, submitTurn } = recordingPool({ workers: 1, inlineMaxFrames: 0, reuseInlineFrames }, Date.UTC(2026, 10, 30, 9, 0, 0), (ticket) => keep && ticket < 40);
      try {
        await submitTurn(0, 40);
        await submitTurn(40, 40);
      } finally {
        await pool.close();
      }
      expect(pool.workerMessages).to.equal(2);
      for (let i = 0; i < 80; i++) {
        const { outcome } = outcomes.get(i)!;
        expect(outcome.txid).to.equal(`tx-${i}`);
        expect(JSON.stringify((JSON.parse(outcome.recordJson!) as { data: unknown[] }).data)).to.equal(JSON.stringify([{ key: 'Odometer', value: { doubleValue: i } }]));
      }
      const first = outcomes.get(0)!.buffer;
      if (keep || !reuseInlineFrames) expect(outcomes.get(40)!.buffer, `kept ${keep}, reuse ${reuseInlineFrames}`).to.not.equal(first);
      else expect(outcomes.get(40)!.buffer).to.equal(first);
    }
  });
});

/** The protobuf payload inside an envelope built by frame(). */
function decodePayloadOf(bytes: ArrayBuffer): Uint8Array {
  return readEnvelope(new Uint8Array(bytes)).stream!.payload;
}


/** A V record of many datums: 64 of them make a result past RECYCLED_RESULT_MIN_BYTES (recycled results). */
function bigFrame(txid: string, n: number): ArrayBuffer {
  const data = Array.from({ length: 40 }, (_, d) => ({ key: 'Odometer', value: { doubleValue: n * 100 + d + 0.25 } }));
  const payload = encodeVehicleData({ vin: 'SPOOFED0000000000', createdAt: new Date(), data });
  const bytes = writeStreamEnvelope({ txid, topic: 'V', payload });
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

describe('decode pool: result buffers recycled once every holder let go', function () {
  this.timeout(30_000);

  interface Held { batch: DecodedBatch; ticket: number; view: Uint8Array; copy: Buffer; samples: Float64Array; samplesCopy: Float64Array }

  /**
   * One worker, batches of 64 big records, recycling on. The handler checks each reply view a microtask
   * later (as the vehicle listener writes replies) and holds row 0 of a batch when `holdRow0` says so
   * (as the recent history holds a batch's samples for its window), keeping a view and a copy of it.
   */
  function recyclingPool(holdRow0: (ticket: number) => boolean, keeps: (ticket: number) => boolean = () => false) {
    const held: Held[] = [];
    const replyFailures: string[] = [];
    let wanted = 0;
    let seen = 0;
    let done: () => void = () => {};
    const pool = new DecodePool<number>(
      { workers: 1, batchMaxFrames: 64, taskTimeoutMs: 5_000, inlineMaxFrames: 0, reuseInlineFrames: true, recycleResults: () => true, metrics: new DecodeMetrics(new client.Registry()), logger: pino({ level: 'silent' }) },
      (ticket, batch, index) => {
        const reply = batch.reply(index);
        const replyCopy = Buffer.from(reply);
        queueMicrotask(() => {
          if (reply.byteLength === 0 || !Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).equals(replyCopy)) replyFailures.push(`reply of frame ${ticket}`);
        });
        if (index === 0 && (holdRow0(ticket) || keeps(ticket))) {
          if (!keeps(ticket)) batch.hold();
          const view = batch.dashboardBytes(index)!;
          const samples = batch.samples;
          held.push({ batch, ticket, view, copy: Buffer.from(view), samples, samplesCopy: samples.slice() });
        }
        if (++seen === wanted) done();
        return keeps(ticket);
      },
    );
    const turn = (from: number) =>
      new Promise<void>((resolve) => {
        wanted = seen + 64;
        done = resolve;
        for (let i = from; i < from + 64; i++) pool.submit(bigFrame(`tx-${i}`, i), VIN, Date.now(), i);
      });
    /** Every held view still reads what was decoded: its buffer was neither handed back nor written. */
    const checkHeld = (entries: Held[]) => {
      for (const entry of entries) {
        expect(entry.view.byteLength, `frame ${entry.ticket}'s view still attached`).to.equal(entry.copy.byteLength);
        expect(Buffer.from(entry.view.buffer, entry.view.byteOffset, entry.view.byteLength).equals(entry.copy), `frame ${entry.ticket}'s dashboard bytes unchanged`).to.equal(true);
        expect(Array.from(entry.samples), `frame ${entry.ticket}'s samples unchanged`).to.deep.equal(Array.from(entry.samplesCopy));
      }
    };
    return { pool, held, replyFailures, turn, checkHeld };
  }

  it('hands a batch\'s buffer back only after its turn and its last holder; held views read what was decoded until then, and a released one is detached by the hand-back', async () => {
    const { pool, held, replyFailures, turn, checkHeld } = recyclingPool(() => true);
    try {
      const letGoOf: Held[] = [];
      for (let t = 0; t < 12; t++) {
        await turn(t * 64);
        // Wait past the turn (the pool lets go of its own hold in setImmediate).
        await new Promise((resolve) => setImmediate(resolve));
        // The three newest held batches stay held; the older ones are let go of.
        while (held.length > 3) {
          const entry = held.shift()!;
          entry.batch.letGo();
          letGoOf.push(entry);
        }
        checkHeld(held);
      }
      expect(replyFailures, 'every reply read intact a microtask after its outcome').to.deep.equal([]);
      expect(pool.resultsLetGo, 'every batch let go of but the three held').to.equal(12 - 3);
      expect(pool.resultsHandedBack, 'their buffers went back to the worker').to.be.at.least(6);
      // A buffer handed back is transferred: this thread's views of it are detached (never read again).
      expect(letGoOf.filter((entry) => entry.view.byteLength === 0).length).to.be.at.least(6);
    } finally {
      await pool.close();
    }
  });

  it('never recycles a batch an outcome handler kept (a parked outcome), nor any batch while something holds it', async () => {
    // Batch 1 kept by its handler (parked); batch 2's row 0 held and never let go; the rest not held.
    const { pool, held, replyFailures, turn, checkHeld } = recyclingPool((ticket) => ticket === 128, (ticket) => ticket === 64);
    try {
      for (let t = 0; t < 10; t++) {
        await turn(t * 64);
        await new Promise((resolve) => setImmediate(resolve));
        checkHeld(held);
      }
      expect(held.map((entry) => entry.ticket)).to.deep.equal([64, 128]);
      expect(replyFailures).to.deep.equal([]);
      expect(pool.resultsLetGo, 'all but the kept and the held batch').to.equal(10 - 2);
      expect(pool.resultsHandedBack).to.be.at.least(4);
      expect(held[1]!.batch.holders, 'the held batch: its holder only').to.equal(1);
    } finally {
      await pool.close();
    }
  });

  it('hands nothing back before the turn is over: a batch flushed while the worker answered does not take the buffer whose replies are still to be written', async () => {
    const { pool, replyFailures } = recyclingPool(() => false);
    let delivered = 0;
    const total = 16 * 64;
    try {
      // Turns of 64 frames one after another without waiting: a batch is open whenever an answer comes,
      // and the flush the answer triggers runs in a microtask before the replies' writes.
      await new Promise<void>((resolve) => {
        let from = 0;
        const submitTurn = (): void => {
          for (let i = from; i < from + 64; i++) pool.submit(bigFrame(`tx-${i}`, i), VIN, Date.now(), i);
          from += 64;
          if (from < total) setImmediate(submitTurn);
        };
        submitTurn();
        const poll = setInterval(() => {
          delivered = total - pool.pending;
          if (from >= total && pool.pending === 0) {
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      expect(delivered).to.equal(total);
      expect(replyFailures, 'every reply read intact a microtask after its outcome').to.deep.equal([]);
      expect(pool.resultsHandedBack).to.be.at.least(4);
    } finally {
      await pool.close();
    }
  });

  it('recycles nothing when recycleResults says no (a subscriber that cannot say when it is done)', async () => {
    const { pool, turn } = recyclingPool(() => false);
    (pool as unknown as { options: { recycleResults: () => boolean } }).options.recycleResults = () => false;
    try {
      for (let t = 0; t < 4; t++) await turn(t * 64);
      await new Promise((resolve) => setImmediate(resolve));
      expect(pool.resultsLetGo).to.equal(0);
      expect(pool.resultsHandedBack).to.equal(0);
    } finally {
      await pool.close();
    }
  });
});

describe('decode pool: a lone frame\'s result buffer recycled on the main thread (inline batches)', function () {
  this.timeout(30_000);

  interface HeldInline { batch: DecodedBatch; ticket: number; view: Uint8Array; copy: Buffer; reply: Uint8Array; replyCopy: Buffer }

  /**
   * Lone frames decoded inline, one per turn, recycling on (or off). The handler checks each reply a
   * microtask later (as the vehicle listener writes it), notes a result written into a buffer a held or
   * kept batch still has, and holds (`holds`) or keeps (`keeps`, a parked outcome) a frame's batch with a
   * view and a copy of its dashboard bytes and reply.
   */
  function lonePool(recycle: boolean, holds: (ticket: number) => boolean, keeps: (ticket: number) => boolean = () => false, batchMaxFrames = 64) {
    const held: HeldInline[] = [];
    const replyFailures: string[] = [];
    const takenWhileHeld: string[] = [];
    const buffers: ArrayBufferLike[] = [];
    let done: () => void = () => {};
    const pool = new DecodePool<number>(
      { workers: 1, batchMaxFrames, taskTimeoutMs: 5_000, inlineMaxFrames: 4, reuseInlineFrames: true, recycleResults: () => recycle, metrics: new DecodeMetrics(new client.Registry()), logger: pino({ level: 'silent' }) },
      (ticket, batch, index) => {
        const reply = batch.reply(index);
        const replyCopy = Buffer.from(reply);
        queueMicrotask(() => {
          if (reply.byteLength === 0 || !Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).equals(replyCopy)) replyFailures.push(`reply of frame ${ticket}`);
        });
        const view = batch.dashboardBytes(index)!;
        for (const entry of held) if (entry.view.buffer === view.buffer) takenWhileHeld.push(`frame ${ticket} took frame ${entry.ticket}'s buffer`);
        buffers.push(view.buffer);
        if (holds(ticket) || keeps(ticket)) {
          if (!keeps(ticket)) batch.hold();
          held.push({ batch, ticket, view, copy: Buffer.from(view), reply, replyCopy });
        }
        done();
        return keeps(ticket);
      },
    );
    /** Frame `ticket` alone in its turn, resolved once it has its outcome and that turn is over. */
    const lone = (ticket: number) =>
      new Promise<void>((resolve) => {
        done = () => setImmediate(resolve);
        pool.submit(frame(`tx-${ticket}`, ticket), VIN, Date.now(), ticket);
      });
    const checkHeld = () => {
      for (const entry of held) {
        expect(Buffer.from(entry.view.buffer, entry.view.byteOffset, entry.view.byteLength).equals(entry.copy), `frame ${entry.ticket}'s dashboard bytes unchanged`).to.equal(true);
        expect(Buffer.from(entry.reply.buffer, entry.reply.byteOffset, entry.reply.byteLength).equals(entry.replyCopy), `frame ${entry.ticket}'s reply unchanged`).to.equal(true);
      }
    };
    return { pool, held, replyFailures, takenWhileHeld, buffers, lone, checkHeld };
  }

  it('writes a lone frame\'s result into a buffer an earlier one let go of, never into one still held: held views read what was decoded until let go', async () => {
    // Every third frame held for three turns (as the recent history holds a sparse record for its window).
    const { pool, held, replyFailures, takenWhileHeld, buffers, lone, checkHeld } = lonePool(true, (ticket) => ticket % 3 === 0);
    try {
      for (let ticket = 0; ticket < 60; ticket++) {
        await lone(ticket);
        checkHeld();
        while (held.length > 0 && held[0]!.ticket <= ticket - 3) held.shift()!.batch.letGo();
      }
      expect(replyFailures, 'every reply read intact a microtask after its outcome').to.deep.equal([]);
      expect(takenWhileHeld).to.deep.equal([]);
      expect(new Set(buffers).size, 'buffers reused').to.be.below(buffers.length / 4);
      // All but the ones still held and the last frame's (the pool's hold waits for the next flush);
      // the first frame went to the worker (the pool's first batch waits for it) and is not inline.
      expect(pool.inlineResultsLetGo).to.be.within(60 - 3 - held.length, 60 - 1 - held.length);
    } finally {
      await pool.close();
    }
  });

  it('never takes the buffer of a batch an outcome handler kept (a parked outcome), nor of one held and never let go', async () => {
    const { pool, held, replyFailures, takenWhileHeld, buffers, lone, checkHeld } = lonePool(true, (ticket) => ticket === 12, (ticket) => ticket === 7);
    try {
      for (let ticket = 0; ticket < 40; ticket++) {
        await lone(ticket);
        checkHeld();
      }
      expect(held.map((entry) => entry.ticket)).to.deep.equal([7, 12]);
      expect(replyFailures).to.deep.equal([]);
      expect(takenWhileHeld).to.deep.equal([]);
      // One outcome per frame, in order: buffers[ticket] is frame ticket's.
      expect(buffers.slice(7).filter((buffer) => buffer === held[0]!.view.buffer).length, 'the kept batch\'s buffer not taken after it').to.equal(1);
      expect(buffers.slice(12).filter((buffer) => buffer === held[1]!.view.buffer).length, 'the held batch\'s buffer not taken after it').to.equal(1);
      expect(new Set(buffers).size, 'the others reused').to.be.below(10);
    } finally {
      await pool.close();
    }
  });

  it('takes no buffer whose replies are still to be written: inline batches flushed one after another in one turn (full batches) each get their own', async () => {
    const { pool, replyFailures, takenWhileHeld, buffers, lone } = lonePool(true, () => false, () => false, 2);
    try {
      // The first batch waits for the worker; the rest are decoded inline.
      for (let ticket = 0; ticket < 4; ticket++) await lone(ticket);
      for (let round = 0; round < 10; round++) {
        const from = 4 + round * 8;
        await new Promise<void>((resolve) => {
          // Each pair fills a batch: four inline decodes in this one turn, before any reply's microtask.
          for (let i = from; i < from + 8; i++) pool.submit(frame(`tx-${i}`, i), VIN, Date.now(), i);
          const poll = (): void => {
            if (pool.pending === 0) resolve();
            else setImmediate(poll);
          };
          setImmediate(poll);
        });
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(replyFailures, 'every reply read intact a microtask after its outcome').to.deep.equal([]);
      expect(takenWhileHeld).to.deep.equal([]);
      expect(pool.inlineResultsLetGo, 'recycled in later turns').to.be.at.least(30);
      expect(new Set(buffers).size, 'buffers reused').to.be.below(buffers.length / 2);
    } finally {
      await pool.close();
    }
  });

  it('recycles nothing inline when recycleResults says no: each lone frame its own buffer', async () => {
    const { pool, buffers, lone } = lonePool(false, () => false);
    try {
      for (let ticket = 0; ticket < 20; ticket++) await lone(ticket);
      expect(pool.inlineResultsLetGo).to.equal(0);
      expect(new Set(buffers).size).to.equal(20);
    } finally {
      await pool.close();
    }
  });
});

describe('decode pool: the microtask flush holds the turn\'s inline batches', function () {
  this.timeout(30_000);

  it('lets go of no inline batch before the replies\' microtask queued after it has read their buffers (a worker\'s answer flushes the open batch in a microtask)', async () => {
    const SETTLED = Promise.resolve();
    // The vehicle listener's reply flush: the replies of a turn, read in one microtask queued by the first.
    const queued: Array<{ ticket: number; reply: Uint8Array; copy: Buffer }> = [];
    const replyFailures: string[] = [];
    let readQueued = false;
    const readReplies = (): void => {
      readQueued = false;
      for (const { ticket, reply, copy } of queued.splice(0)) {
        if (!Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).equals(copy)) replyFailures.push(`reply of frame ${ticket}`);
      }
    };
    const outcomes: number[] = [];
    const pool = new DecodePool<number>(
      { workers: 1, batchMaxFrames: 2, taskTimeoutMs: 5_000, inlineMaxFrames: 4, reuseInlineFrames: true, recycleResults: () => true, metrics: new DecodeMetrics(new client.Registry()), logger: pino({ level: 'silent' }) },
      (ticket, batch, index) => {
        outcomes.push(ticket);
        const reply = batch.reply(index);
        queued.push({ ticket, reply, copy: Buffer.from(reply) });
        if (!readQueued) {
          readQueued = true;
          void SETTLED.then(readReplies);
        }
      },
    );
    // What a worker's answer does (WorkerChannel -> taskEnded -> dispatch) when the check-phase flush had
    // held the open batch (no worker had room): the batch is flushed from a microtask. No public call gets
    // there with an inline batch delivered after it in the same stretch, so the test calls it directly.
    const internals = pool as unknown as { flushScheduled: boolean; dispatch(): void };
    const settle = () => new Promise<void>((resolve) => {
      const poll = (): void => {
        setImmediate(pool.pending === 0 ? resolve : poll);
      };
      setImmediate(poll);
    });
    try {
      // The first batch waits for the worker (not ready yet); then every small batch is decoded inline.
      pool.submit(frame('tx-warm-0', 0), VIN, Date.now(), 0);
      await settle();
      let ticket = 1;
      for (let round = 0; round < 8; round++) {
        await new Promise<void>((resolve) => {
          setImmediate(() => {
            pool.submit(frame(`tx-${ticket}`, ticket), VIN, Date.now(), ticket++);
            internals.flushScheduled = false; // as left by a check-phase flush that held it
            internals.dispatch(); // the answer's microtask flush is queued first
            // Then, in the same stretch, a full batch decoded inline: its replies are read by the microtask queued now.
            pool.submit(frame(`tx-${ticket}`, ticket), VIN, Date.now(), ticket++);
            // And a frame for the microtask flush to decode inline: it must not take that batch's buffer.
            pool.submit(frame(`tx-${ticket}`, ticket), VIN, Date.now(), ticket++);
            resolve();
          });
        });
        await settle();
      }
      expect(outcomes).to.deep.equal(Array.from({ length: ticket }, (_, i) => i));
      expect(replyFailures, 'every reply read intact by the microtask queued after its batch').to.deep.equal([]);
      expect(pool.inlineResultsLetGo, 'inline results recycled in later turns').to.be.at.least(8);
    } finally {
      await pool.close();
    }
  });
});
