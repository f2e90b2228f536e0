import { assert, expect } from 'chai';
import fc from 'fast-check';
import pino from 'pino';
import { DecodePool } from '../../src/decode/decode-pool.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { dashboardMessageOf, dashboardRecordMessage } from '../../src/dashboard/dashboard-protocol.js';
import {
  RECYCLED_RESULT_MIN_BYTES,
  SMALL_RESULT_BYTES,
  decodeBatch,
  offerInlineResultBuffer,
  offerResultBuffers,
  receiveOutcomes,
  resultSizeClass,
  spareResultBuffers,
  spareSmallResultBuffers,
  stateFieldName,
} from '../../src/decode/decode-batch.js';
import { FRAME_SLOTS, resultReplies, type DecodeTask } from '../../src/decode/decode-task.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { SAMPLE_VALUES } from '../../src/history/signal-sample.js';
import { decodeResultOf } from '../../src/decode/worker-replies.js';
import { writeAck, writeErrorReply, writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { RECORD_TYPES, protoSchema } from '../../src/protocol/proto-schema.js';
import { encodeVehicleAlerts, encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { packFrames } from '../helpers/decode-task.js';

const VIN = '5YJ3E7EB0LF000001';
const RECEIVED_AT = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function task(frames: Uint8Array[]): DecodeTask {
  return packFrames(frames, VIN, RECEIVED_AT);
}

function frame(topic: string, payload: Uint8Array, txid: string): Uint8Array {
  return writeStreamEnvelope({ txid, topic, payload });
}

describe('decodeBatch: what crosses back to the main thread', () => {
  // Values chosen so the same Value text appears more than once, next to keys and inside other values.
  const vPayload = encodeVehicleData({
    vin: 'IGNORED',
    createdAt: new Date(RECEIVED_AT),
    data: [
      { key: 'VehicleSpeed', value: { doubleValue: 12.5 } },
      { key: 'Soc', value: { doubleValue: 12.5 } },
      { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } },
      { key: 'Location', value: { stringValue: '{"doubleValue":12.5}' } },
      { key: 300, value: { stringValue: '"value":' } },
      { key: 'Odometer' },
      { key: 'DoorState', value: { doorValue: { DriverFront: true } } },
    ],
  });
  const alertsPayload = encodeVehicleAlerts({ createdAt: new Date(RECEIVED_AT), alerts: [{ name: 'x', audiences: ['Customer'] }] });

  it('gives each record its JSON and each datum its state as views of the dashboard message, equal to decodeRecord', () => {
    const batch = task([frame('V', vPayload, 'a'), frame('alerts', alertsPayload, 'b'), frame('V', vPayload, 'c')]);
    const result = decodeBatch(batch);
    const outcomes = receiveOutcomes(result, batch.frames);
    const expected = decodeRecord('V', vPayload, VIN);
    for (const index of [0, 2]) {
      const outcome = outcomes[index]!;
      expect(outcome.recordJson).to.equal(expected.json);
      expect(outcome.createdAt).to.equal(expected.createdAt);
      expect(outcome.signals).to.equal(7);
      expect(JSON.parse(outcome.dashboardMessage!).record).to.deep.equal(JSON.parse(expected.json!));
      const entries: Array<{ field: string; value: string }> = [];
      for (let i = 0; i < outcome.state!.length; i += 3) {
        entries.push({ field: stateFieldName(outcome.state![i]!), value: outcome.dashboardMessage!.slice(outcome.state![i + 1], outcome.state![i + 2]) });
      }
      expect(entries).to.deep.equal(expected.state);
    }
    const alerts = outcomes[1]!;
    expect(alerts.recordJson).to.equal(decodeRecord('alerts', alertsPayload, VIN).json);
    expect(alerts.state).to.equal(null);
  });

  /** Decodes one batch of V and alerts frames with these certificate VINs and checks every record, message and stored body against the reference. */
  function expectVinsWritten(vins: string[]): void {
    const batch = { ...task(vins.map((_, i) => frame(i % 3 === 2 ? 'alerts' : 'V', i % 3 === 2 ? alertsPayload : vPayload, `t${i}`))), vins, normalise: true };
    const outcomes = receiveOutcomes(decodeBatch(batch), batch.frames);
    vins.forEach((vin, i) => {
      const topic = i % 3 === 2 ? 'alerts' : 'V';
      const expected = decodeRecord(topic, i % 3 === 2 ? alertsPayload : vPayload, vin);
      const outcome = outcomes[i]!;
      expect(outcome.kind, vin).to.equal('record');
      expect(outcome.recordJson, vin).to.equal(expected.json);
      expect(outcome.dashboardMessage, vin).to.equal(dashboardRecordMessage(vin, topic, RECEIVED_AT, expected.json));
      const stored = outcome.normalisedPayload!;
      expect(decodeRecord(topic, stored, vin, { normalised: true }).json, vin).to.equal(expected.json);
      expect((protoSchema().root.lookupType(RECORD_TYPES[topic]!).decode(stored) as unknown as { vin: string }).vin, 'the stored VIN').to.equal(vin);
    });
  }

  it('writes each frame\'s certificate VIN into its record and dashboard message as JSON.stringify does, plain or needing escapes, frame after frame', () => {
    expectVinsWritten([VIN, 'A"B', VIN, 'C\\D', 'Ünïcode-VIN', 'tab\tx', 'x'.repeat(300), VIN, 'DEL\u007f', VIN]);
  });

  it('writes any certificate VIN (each length mod 4, plain, needing escapes, past the packed bound) into record, message and normalised protobuf, frame after frame', () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
    const vinArb = fc.oneof({ weight: 6, arbitrary: printable }, fc.string({ maxLength: 12, unit: 'grapheme' }), fc.integer({ min: 250, max: 262 }).map((n) => 'V'.repeat(n)));
    fc.assert(fc.property(fc.array(vinArb, { minLength: 1, maxLength: 8 }), expectVinsWritten), { numRuns: 500 });
  });

  it('returns one buffer per batch, its sections back to back (empty ones taking no bytes), new each batch', () => {
    const errors = task([new Uint8Array([1, 2, 3])]);
    const errorResult = decodeBatch(errors);
    expect(receiveOutcomes(errorResult, errors.frames)[0]!.errorKind).to.equal('envelope_too_short');
    expect(errorResult.count).to.equal(1);
    expect(errorResult.stateAt).to.equal(FRAME_SLOTS * 4);
    expect(errorResult.repliesAt, 'no state').to.equal(errorResult.stateAt);
    expect(errorResult.normalisedAt, 'no text').to.equal(errorResult.textAt);
    expect(errorResult.buffer.byteLength, 'no normalised records').to.equal(errorResult.normalisedAt);
    expect(Buffer.from(resultReplies(errorResult))).to.deep.equal(Buffer.from(writeErrorReply(new Uint8Array(0))));

    const batch = { ...task([frame('V', vPayload, 'a'), frame('alerts', alertsPayload, 'b')]), normalise: true };
    const first = decodeBatch(batch);
    const second = decodeBatch(batch);
    expect(second.buffer, 'a new buffer each batch: consumers keep views of the last one').to.not.equal(first.buffer);
    expect(first.repliesAt - first.stateAt, 'the V record\'s 7 state triples').to.equal(7 * 3 * 4);
    expect(first.textAt).to.be.greaterThan(first.repliesAt);
    expect(first.normalisedAt).to.be.greaterThan(first.textAt);
    expect(first.buffer.byteLength).to.be.greaterThan(first.normalisedAt);
    const outcomes = receiveOutcomes(first, batch.frames);
    expect(outcomes[0]!.recordJson).to.equal(decodeRecord('V', vPayload, VIN).json);
    expect(outcomes[0]!.normalisedPayload!.buffer).to.equal(first.buffer);
    expect(outcomes[0]!.dashboardBytes!.buffer).to.equal(first.buffer);
  });

  it('leaves records without JSON (unknown topics) with a null record and no state', () => {
    const batch = task([frame('energy', new Uint8Array([1, 2, 3]), 'd')]);
    const [outcome] = receiveOutcomes(decodeBatch(batch), batch.frames);
    assert.exists(outcome);
    expect(outcome.kind).to.equal('record');
    expect(outcome.recordJson).to.equal(null);
    expect(outcome.state).to.equal(null);
    expect(JSON.parse(outcome.dashboardMessage!).record).to.equal(null);
  });

  it('packs each reply byte-identical to writeAck / writeErrorReply, also over a buffer dirtied by an earlier batch', () => {
    const enc = new TextEncoder();
    // A first batch with long txids and topics leaves non-zero bytes where the next batch's padding goes.
    decodeBatch(task(Array.from({ length: 300 }, (_, i) => frame('V'.repeat(7), vPayload, `${'f'.repeat(61)}${i}`))));
    const txids = ['a', 'bb', 'ccc', 'dddd'];
    const frames = txids.map((txid) => frame('V', vPayload, txid));
    frames.push(frame('V', new Uint8Array([0xff, 0xff]), 'bad'));
    const batch = task(frames);
    const result = decodeBatch(batch);
    const outcomes = receiveOutcomes(result, batch.frames);
    const replies = resultReplies(result);
    txids.forEach((txid, i) => {
      const outcome = outcomes[i]!;
      expect(Buffer.from(replies.subarray(outcome.replyStart, outcome.replyEnd))).to.deep.equal(Buffer.from(writeAck(enc.encode(txid), enc.encode('V'))));
    });
    const bad = outcomes[4]!;
    expect(bad.kind).to.equal('error');
    expect(Buffer.from(replies.subarray(bad.replyStart, bad.replyEnd))).to.deep.equal(Buffer.from(writeErrorReply(enc.encode('bad'))));
    expect(bad.replyEnd).to.equal(replies.byteLength);
  });

  it('writes no dashboard message for frames nobody watches: the record JSON alone, the same state, the message built later is the same', () => {
    const resent = encodeVehicleData({ vin: 'IGNORED', createdAt: new Date(RECEIVED_AT), isResend: true, data: [{ key: 'Soc', value: { doubleValue: 80 } }] });
    const frames = [frame('V', vPayload, 'a'), frame('alerts', alertsPayload, 'b'), frame('V', resent, 'c'), frame('other-topic', new Uint8Array([1, 2]), 'd')];
    const watchedBatch = task(frames);
    const watched = receiveOutcomes(decodeBatch(watchedBatch), watchedBatch.frames);
    const unwatchedBatch = { ...task(frames), watched: new Uint8Array([0, 0, 0, 0]) };
    const resultUnwatched = decodeBatch(unwatchedBatch);
    const unwatched = receiveOutcomes(resultUnwatched, unwatchedBatch.frames);
    const headBytes = watched.reduce((n, o) => n + Buffer.byteLength(o.dashboardMessage ?? '') - Buffer.byteLength(o.recordJson ?? ''), 0);
    expect(resultUnwatched.normalisedAt - resultUnwatched.textAt, 'the text is the record JSON only').to.equal(unwatched.reduce((n, o) => n + Buffer.byteLength(o.recordJson ?? ''), 0));
    expect(headBytes).to.be.greaterThan(0);
    for (let i = 0; i < frames.length; i++) {
      const a = watched[i]!;
      const b = unwatched[i]!;
      expect(b.kind).to.equal('record');
      expect(b.dashboardMessage, `frame ${i}`).to.equal(null);
      expect(b.recordJson).to.equal(a.recordJson);
      expect(b.createdAt).to.equal(a.createdAt);
      expect(b.isResend).to.equal(a.isResend);
      const values = (o: typeof a, text: string) => Array.from({ length: (o.state?.length ?? 0) / 3 }, (_, s) => [o.state![s * 3], text.slice(o.state![s * 3 + 1], o.state![s * 3 + 2])]);
      expect(values(b, b.recordJson ?? ''), `state of frame ${i}`).to.deep.equal(values(a, a.dashboardMessage!));
      // What the hub builds for a record that became watched after it was decoded.
      const record = { vin: VIN, topic: b.topic, txid: b.txid, receivedAt: RECEIVED_AT, recordJson: b.recordJson, dashboardMessage: '', payload: null };
      expect(dashboardMessageOf(record), `message of frame ${i}`).to.equal(a.dashboardMessage);
      expect(record.dashboardMessage).to.equal(a.dashboardMessage);
    }
    expect(watched[2]!.dashboardMessage).to.include('"resend":true');
    expect(dashboardMessageOf({ vin: VIN, topic: 'V', txid: 'x', receivedAt: 0, recordJson: null, dashboardMessage: 'kept', payload: null })).to.equal('kept');
    expect(dashboardRecordMessage(VIN, 'other-topic', RECEIVED_AT, null)).to.equal(watched[3]!.dashboardMessage);
  });
});

describe('decodeBatch: recycled result buffers', () => {
  const big = encodeVehicleData({
    vin: 'IGNORED',
    createdAt: new Date(RECEIVED_AT),
    data: Array.from({ length: 40 }, (_, d) => ({ key: d % 2 === 0 ? 'Odometer' : 'VehicleSpeed', value: { doubleValue: d + 0.5 } })),
  });
  const bigTask = () => task(Array.from({ length: 64 }, (_, i) => frame('V', big, `tx-${i}`)));

  it('writes a big result into a handed-back buffer (dirty, longer than the result), read exactly as a fresh one', () => {
    const fresh = decodeBatch(bigTask());
    expect(fresh.end).to.be.at.least(RECYCLED_RESULT_MIN_BYTES);
    expect(fresh.buffer.byteLength, 'a size class').to.equal(resultSizeClass(fresh.end!));
    const expected = receiveOutcomes(fresh, bigTask().frames);
    const spare = new ArrayBuffer(fresh.end! + 4096);
    new Uint8Array(spare).fill(0xa5);
    offerResultBuffers([spare]);
    expect(spareResultBuffers()).to.be.at.least(1);
    const reused = decodeBatch(bigTask());
    expect(reused.buffer, 'the handed-back buffer').to.equal(spare);
    expect(reused.end).to.equal(fresh.end);
    const checked = decodeResultOf(structuredClone(reused));
    const outcomes = receiveOutcomes(checked, bigTask().frames);
    expect(outcomes.map((o) => ({ ...o, dashboardBytes: undefined, state: Array.from(o.state ?? []) }))).to.deep.equal(expected.map((o) => ({ ...o, dashboardBytes: undefined, state: Array.from(o.state ?? []) })));
    const batch = new DecodedBatch(checked, bigTask().frames);
    const freshBatch = new DecodedBatch(fresh, bigTask().frames);
    // `samples` is a view of the whole buffer (kept per buffer): what a reader gets is each record's row at sampleAt.
    const rowsOf = (b: DecodedBatch) =>
      Array.from({ length: b.count }, (_, i) => {
        const at = b.sampleAt(i);
        return at < 0 ? null : Array.from(b.samples.subarray(at, at + SAMPLE_VALUES));
      });
    expect(rowsOf(batch), 'every record\'s samples as a fresh result\'s').to.deep.equal(rowsOf(freshBatch));
    expect(rowsOf(batch).filter((row) => row !== null)).to.have.length(64);
    for (let i = 0; i < batch.count; i++) {
      expect((batch.sampleAt(i) + SAMPLE_VALUES) * 8, 'the samples end at the result, not the buffer').to.be.at.most(checked.end!);
    }
  });

  it('keeps a spare too small or far too big for later; a small result never takes one', () => {
    const before = spareResultBuffers();
    const small = decodeBatch(task([frame('V', big, 'tx')]));
    expect(small.buffer.byteLength, 'small results are exact').to.equal(small.end);
    expect(spareResultBuffers()).to.equal(before);
    const tooSmall = new ArrayBuffer(RECYCLED_RESULT_MIN_BYTES);
    offerResultBuffers([tooSmall]);
    expect(decodeBatch(bigTask()).buffer).to.not.equal(tooSmall);
  });

  it('on the main thread\'s inline path (smallSpares), writes a lone frame\'s result into the newest small spare, dirty, read exactly as a fresh one; never one too small or far too big', () => {
    const lone = () => task([frame('V', big, 'tx-lone')]);
    const fresh = decodeBatch(lone());
    const expected = receiveOutcomes(fresh, lone().frames);
    expect(fresh.end).to.be.below(SMALL_RESULT_BYTES);
    // Spares other tests of this thread left may be there too: the ones offered here are the newest.
    const before = spareSmallResultBuffers();
    offerInlineResultBuffer(new ArrayBuffer(SMALL_RESULT_BYTES - 8));
    expect(spareSmallResultBuffers(), 'a buffer under the small class is not kept').to.equal(before);
    const farTooBig = new ArrayBuffer(32 * 1024);
    const spare = new ArrayBuffer(SMALL_RESULT_BYTES);
    new Uint8Array(spare).fill(0xa5);
    offerInlineResultBuffer(farTooBig);
    offerInlineResultBuffer(spare);
    expect(spareSmallResultBuffers()).to.equal(before + 2);
    const first = decodeBatch(lone(), true);
    expect(first.buffer, 'the newest spare').to.equal(spare);
    expect(receiveOutcomes(decodeResultOf(structuredClone(first)), lone().frames)).to.deep.equal(expected);
    const second = decodeBatch(lone(), true);
    expect(second.buffer, 'a lone frame never takes a spare eight times its size').to.not.equal(farTooBig);
    expect(second.buffer.byteLength, 'a small result: one class, or a spare at most four times it').to.be.within(SMALL_RESULT_BYTES, Math.max(SMALL_RESULT_BYTES, 4 * second.end!));
    const spares = spareSmallResultBuffers();
    const without = decodeBatch(lone());
    expect(without.buffer.byteLength, 'off the inline path, small results are exact').to.equal(without.end);
    expect(spareSmallResultBuffers(), 'and take no spare').to.equal(spares);
    // An inline burst's result (several frames) takes the big spare, the newest that fits.
    const burst = task(Array.from({ length: 6 }, (_, i) => frame('V', big, `tx-${i}`)));
    const burstResult = decodeBatch(burst, true);
    expect(burstResult.end).to.be.above(8 * 1024);
    expect(burstResult.buffer).to.equal(farTooBig);
  });

  it('size classes: an eighth of the next power of two, never less than asked', () => {
    for (const size of [65_536, 65_537, 100_000, 470_000, 524_288, 524_289, 3_000_000]) {
      const sized = resultSizeClass(size);
      expect(sized).to.be.at.least(size);
      expect(sized - size).to.be.below(2 ** Math.ceil(Math.log2(size)) / 8);
    }
  });
});

describe('decodeBatch: the dashboard message\'s receivedAt', () => {
  // V heads write receivedAt from its digits (no Date per lone frame); every instant must read as
  // toISOString writes it, and what that path does not take (fractions, before 1970, from year 10000)
  // as before.
  it('is toISOString of receivedAt for any instant, V and other topics, one frame or several per batch', () => {
    const vPayload = encodeVehicleData({ vin: VIN, data: [{ key: 'Soc', value: { doubleValue: 80 } }] });
    const edges = [0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000, 951_868_799_999, 4_107_542_399_999, 253_402_300_799_999, 253_402_300_800_000, 8.64e15, -1, -62_198_755_200_000, -8.64e15, 1.5, 1_780_000_000_000.25];
    const instants = [...edges, ...fc.sample(fc.integer({ min: 0, max: 253_402_300_799_999 }), { numRuns: 3000, seed: 20261130 }), ...fc.sample(fc.integer({ min: -8.64e15, max: 8.64e15 }), { numRuns: 500, seed: 20261131 })];
    for (let i = 0; i < instants.length; i += 4) {
      const chunk = instants.slice(i, i + 4);
      const frames = chunk.map((_, k) => (k === 2 ? frame('other-topic', new Uint8Array([1, 2]), `t${k}`) : frame('V', vPayload, `t${k}`)));
      const batch = task(frames);
      chunk.forEach((at, k) => { batch.receivedAt[k] = at; });
      const outcomes = receiveOutcomes(decodeBatch(batch), batch.frames);
      outcomes.forEach((o, k) => {
        expect(o.dashboardMessage, `receivedAt ${chunk[k]}`).to.equal(dashboardRecordMessage(VIN, o.topic!, chunk[k]!, o.recordJson));
      });
    }
  });
});

describe('decode: a bug of ours is not relabelled as an invalid payload', () => {
  const vPayload = encodeVehicleData({ vin: VIN, createdAt: new Date(RECEIVED_AT), data: [{ key: 'VehicleSpeed', value: { doubleValue: 12.5 } }] });

  // A receivedAt that is no instant comes from our own code, never from a car's bytes: writing the
  // dashboard message throws a RangeError inside the decoder, which stands in for any decoder bug.
  function batchWithBug(): DecodeTask {
    const batch = task([frame('V', vPayload, 'a'), frame('V', vPayload, 'b'), frame('V', vPayload, 'c')]);
    batch.receivedAt[1] = Number.NaN;
    return batch;
  }

  it('gives the frame the error reply with kind internal and its error text, and decodes the rest of the batch', () => {
    const batch = batchWithBug();
    const result = decodeBatch(batch);
    const outcomes = receiveOutcomes(result, batch.frames);
    expect(outcomes.map((o) => o.kind)).to.deep.equal(['record', 'error', 'record']);
    expect(outcomes[1]).to.include({ errorKind: 'internal', txid: 'b', topic: 'V' });
    expect(result.internalErrors).to.have.length(1);
    expect(result.internalErrors[0]).to.match(/RangeError/);
    const replies = resultReplies(result);
    expect([...replies.subarray(outcomes[1]!.replyStart, outcomes[1]!.replyEnd)]).to.deep.equal([...writeErrorReply(new TextEncoder().encode('b'))]);
    expect(outcomes[2]!.recordJson).to.equal(decodeRecord('V', vPayload, VIN).json);
  });

  it('counts it in decode_internal_errors_total and logs decode_internal_error, not decode_errors_total', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false }).decode;
    const logged: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const kinds: Array<string | null> = [];
    const pool = new DecodePool<number>({ workers: 1, batchMaxFrames: 64, taskTimeoutMs: 10_000, inlineMaxFrames: 64, metrics, logger }, (_ticket, decoded, index) => kinds.push(decoded.errorKind(index)));
    try {
      const batch = batchWithBug();
      for (let i = 0; i < 3; i++) {
        const bytes = new Uint8Array(batch.frames, batch.offsets[i], batch.offsets[i + 1]! - batch.offsets[i]!).slice();
        pool.submit(bytes.buffer, VIN, batch.receivedAt[i]!, i);
      }
      await pool.whenIdle();
    } finally {
      await pool.close();
    }
    expect(kinds).to.deep.equal([null, 'internal', null]);
    expect((await metrics.decodeInternalErrors.get()).values).to.deep.equal([{ value: 1, labels: { stage: 'frame' } }]);
    expect((await metrics.decodeErrors.get()).values).to.deep.equal([]);
    expect(logged).to.have.length(1);
    expect(logged[0]).to.include({ msg: 'decode_internal_error' });
  });
});
