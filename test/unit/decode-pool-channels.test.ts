import { expect } from 'chai';
import pino from 'pino';
import client from 'prom-client';
import { DecodeMetrics } from '../../src/decode/decode-metrics.js';
import { DecodePool } from '../../src/decode/decode-pool.js';
import type { FrameOutcome } from '../../src/decode/decode-task.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';

const VIN = '5YJ3E1EA7KF000001';

function frame(txid: string, odometer: number): ArrayBuffer {
  const payload = encodeVehicleData({ vin: 'SPOOFED0000000000', createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: odometer } }] });
  const bytes = writeStreamEnvelope({ txid, topic: 'V', payload });
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
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
});
