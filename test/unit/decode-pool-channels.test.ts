import { expect } from 'chai';
import pino from 'pino';
import client from 'prom-client';
import { DecodeMetrics } from '../../src/decode/decode-metrics.js';
import { DecodePool } from '../../src/decode/decode-pool.js';
import type { FrameOutcome } from '../../src/decode/decode-task.js';
import { readEnvelope, writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';

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

