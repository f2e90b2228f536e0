// The main thread's result side: a decoded batch read by index (no object per frame), a frame parked
// for an earlier one keeping its batch, and the outcome of frames whose worker failed.
import { expect } from 'chai';
import fc from 'fast-check';
import { VehicleActor, type FrameTicket } from '../../src/actors/vehicle-actor.js';
import type { VehicleConnection } from '../../src/actors/vehicle-connection.js';
import { createdAtMsOf, decodeBatch, offerInlineResultBuffer } from '../../src/decode/decode-batch.js';
import { sampleTime } from '../../src/protocol/state-value.js';
import { SAMPLE_VALUES } from '../../src/history/signal-sample.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { KIND_ERROR, KIND_RECORD } from '../../src/decode/decode-task.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { writeErrorReply, writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { packFrames } from '../helpers/decode-task.js';
import { RecordingBus } from '../helpers/recording-bus.js';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord, RecordHold } from '../../src/bus/record-bus.js';

const VIN = '5YJ3E7EB0LF000001';
const RECEIVED_AT = 1_780_000_000_000;
const metrics = new ServerMetrics({ version: 'test' }).actors;

const speed = (createdAt: string, value: number) =>
  encodeVehicleData({ vin: 'SPOOFED0000000000', createdAt: new Date(createdAt), data: [{ key: 'VehicleSpeed', value: { doubleValue: value } }] });

function batchOf(payloads: Uint8Array[], txids: string[], vin = VIN, watched = true): DecodedBatch {
  const frames = payloads.map((payload, i) => writeStreamEnvelope({ txid: txids[i]!, topic: 'V', payload }));
  const task = packFrames(frames, vin, RECEIVED_AT);
  task.watched = new Uint8Array(frames.length).fill(watched ? 1 : 0);
  return new DecodedBatch(decodeBatch(task), task.frames);
}

describe('decoded batch on the main thread', () => {
  it('reads each row by index: kind, txid, topic, reply, record JSON, created_at as text and ms, state slices', () => {
    const batch = batchOf([speed('2026-01-02T03:04:10.250Z', 42), speed('2026-01-02T03:04:11Z', 43)], ['t-a', 't-b']);
    expect(batch.count).to.equal(2);
    for (let i = 0; i < 2; i++) {
      expect(batch.kind(i)).to.equal(KIND_RECORD);
      expect(batch.errorKind(i)).to.equal(null);
      expect(batch.topic(i)).to.equal('V');
      const record = JSON.parse(batch.recordJson(i)!) as { vin: string; createdAt: string };
      expect(record.vin, 'the certificate VIN').to.equal(VIN);
      expect(batch.createdAt(i)).to.equal(record.createdAt);
      expect(batch.createdAtMs(i)).to.equal(Date.parse(record.createdAt));
      const text = batch.text(i);
      expect(batch.dashboardBytes(i)).to.not.equal(undefined);
      expect(Buffer.from(batch.dashboardBytes(i)!).toString('utf8')).to.equal(text);
      const state = batch.state(i)!;
      expect(state).to.have.length(3);
      expect(text.slice(state[1], state[2])).to.equal(`{"doubleValue":${42 + i}}`);
    }
    expect(batch.txid(0)).to.equal('t-a');
    expect(batch.txid(1)).to.equal('t-b');
    // Asking again gives the same text and positions (rebased once).
    expect(batch.recordJson(1)).to.equal(batch.outcome(1).recordJson);
    expect(batch.reply(0).byteLength).to.be.greaterThan(0);
    expect(batch.reply(0).byteOffset + batch.reply(0).byteLength).to.equal(batch.reply(1).byteOffset);
  });

  it('lone batches decoded in turn into recycled result buffers read their own rows through the views kept per buffer', () => {
    /** What a reader of row 0 sees: its state triples and values, samples, created_at, reply. */
    const read = (batch: DecodedBatch) => {
      const bytes = batch.stateBytes(0)!;
      const triples = batch.triples;
      const values: string[] = [];
      for (let s = batch.stateFrom(0); s < batch.stateTo(0); s += 3) {
        values.push(`${triples[s]}=${bytes.toString('utf8', triples[s + 1]! + batch.textBytesAt, triples[s + 2]! + batch.textBytesAt)}`);
      }
      const at = batch.sampleAt(0);
      return { values, samples: at < 0 ? null : Array.from(batch.samples.subarray(at, at + SAMPLE_VALUES)), createdAtMs: batch.createdAtMs(0), reply: Buffer.from(batch.reply(0)).toString('hex'), json: batch.recordJson(0) };
    };
    const buffers = new Set<ArrayBuffer>();
    let shared = 0;
    let previous: DecodedBatch | null = null;
    for (let k = 0; k < 12; k++) {
      const frames = [writeStreamEnvelope({ txid: `t-${k}`, topic: 'V', payload: speed(`2026-01-02T03:04:${10 + k}Z`, 40 + k * 1.5) })];
      const task = packFrames(frames, VIN, RECEIVED_AT + k);
      task.watched = new Uint8Array(1);
      // The oracle: the same frame decoded into a buffer of its own.
      const expected = read(new DecodedBatch(decodeBatch(task), task.frames));
      const result = decodeBatch(task, true);
      const batch = new DecodedBatch(result, task.frames);
      if (previous !== null && previous.triples === batch.triples) shared++;
      expect(read(batch), `batch ${k}`).to.deep.equal(expected);
      expect(expected.values, 'the speed datum').to.deep.equal([`${expected.values[0]!.split('=')[0]}={"doubleValue":${40 + k * 1.5}}`]);
      expect(expected.samples, 'the decode stage read the speed').to.include(40 + k * 1.5);
      buffers.add(result.buffer);
      previous = batch;
      offerInlineResultBuffer(result.buffer);
    }
    expect(buffers.size, 'recycled buffers').to.be.lessThan(12);
    expect(shared, 'batches that found their buffer\'s views made').to.be.greaterThan(0);
  });

  it('gives character positions for a record whose text is not ASCII', () => {
    const vin = '5YJ3E7EB0LF00000é';
    const batch = batchOf([speed('2026-01-02T03:04:10Z', 7)], ['t'], vin);
    const text = batch.text(0);
    const state = batch.state(0)!;
    expect(text.slice(state[1], state[2])).to.equal('{"doubleValue":7}');
    expect((JSON.parse(batch.recordJson(0)!) as { vin: string }).vin).to.equal(vin);
    expect(batch.createdAt(0)).to.equal('2026-01-02T03:04:10Z');
  });

  it('gives every row its own text when a batch spans several latin1 chunks, non-ASCII rows among them, read in any order', () => {
    // ~300 rows of ~200 bytes: several 16 KB chunks; every 37th row names the car in non-ASCII.
    const payloads = Array.from({ length: 300 }, (_, i) =>
      encodeVehicleData({
        vin: VIN,
        createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 0, i)),
        data: [
          { key: 'VehicleSpeed', value: { doubleValue: i } },
          { key: 'VehicleName', value: { stringValue: i % 37 === 5 ? `Café ${i}` : `car ${i}` } },
        ],
      }),
    );
    const batch = batchOf(payloads, payloads.map((_, i) => `t-${i}`));
    // Out of order, as parked frames are released: some rows first, then the rest backwards.
    const order = [150, 3, 299, 42, 5, ...Array.from({ length: 300 }, (_, i) => 299 - i)];
    let bytes = 0;
    for (let i = 0; i < 300; i++) bytes += batch.dashboardBytes(i)!.byteLength;
    expect(bytes, 'more than a few chunks').to.be.greaterThan(4 * 16 * 1024);
    for (const i of order) {
      const text = batch.text(i);
      expect(text, `row ${i}`).to.equal(Buffer.from(batch.dashboardBytes(i)!).toString('utf8'));
      const state = batch.state(i)!;
      expect(text.slice(state[1], state[2])).to.equal(`{"doubleValue":${i}}`);
      expect(text.slice(state[4], state[5])).to.equal(JSON.stringify({ stringValue: i % 37 === 5 ? `Café ${i}` : `car ${i}` }));
      expect(Date.parse(batch.createdAt(i)!)).to.equal(Date.UTC(2026, 0, 2, 3, 4, 0, i));
      expect((JSON.parse(batch.recordJson(i)!) as { vin: string }).vin).to.equal(VIN);
    }
  });

  it('a frame decoded before an earlier one of its VIN waits with its batch, and records leave in arrival order', () => {
    const bus = new RecordingBus();
    const actor = new VehicleActor(VIN, bus, metrics, 0);
    const replies: Uint8Array[] = [];
    const conn: VehicleConnection = { connectionId: 'c', vin: VIN, networkInterface: 'wifi', clientVersion: '', connectedAt: 0, isOpen: true, sendReply: (reply) => replies.push(reply.slice()) };
    const tickets: FrameTicket[] = [0, 1, 2].map(() => actor.frameArrived(conn, RECEIVED_AT, performance.now()));
    const first = batchOf([speed('2026-01-02T03:04:10Z', 1)], ['first']);
    const later = batchOf([speed('2026-01-02T03:04:11Z', 2), speed('2026-01-02T03:04:12Z', 3)], ['second', 'third']);
    // The later batch answers first (two workers): nothing leaves until the first frame's outcome.
    actor.decoded(tickets[1]!, later, 0);
    actor.decoded(tickets[2]!, later, 1);
    expect(bus.records).to.have.length(0);
    expect(replies).to.have.length(0);
    actor.decoded(tickets[0]!, first, 0);
    expect(bus.records.map((r) => r.txid)).to.deep.equal(['first', 'second', 'third']);
    expect(bus.records.map((r) => (JSON.parse(r.recordJson!) as { data: Array<{ value: { doubleValue: number } }> }).data[0]!.value.doubleValue)).to.deep.equal([1, 2, 3]);
    expect(replies.map((r) => [...r])).to.deep.equal([[...first.reply(0)], [...later.reply(0)], [...later.reply(1)]]);
    expect(bus.records.map((r) => r.createdAtMs)).to.deep.equal(['2026-01-02T03:04:10Z', '2026-01-02T03:04:11Z', '2026-01-02T03:04:12Z'].map((at) => Date.parse(at)));
    expect(actor.state.get('VehicleSpeed')).to.include({ value: '{"doubleValue":3}', at: '2026-01-02T03:04:12Z' });
    expect(actor.inFlight).to.equal(0);
  });

  it('a record\'s txid: lazy only while every listener holds what it keeps; made before a hold, and at once otherwise', () => {
    const conn: VehicleConnection = { connectionId: 'c', vin: VIN, networkInterface: 'wifi', clientVersion: '', connectedAt: 0, isOpen: true, sendReply: () => {} };
    // The pool reuses a batch's frames once its publish is over: overwritten here as the next frame would.
    const overwrite = (batch: DecodedBatch): void => void batch.frames.fill(0x41);
    const run = (holding: boolean): { held: BusRecord; read: BusRecord; kept: BusRecord } => {
      const bus = new InProcessBus();
      let held: BusRecord | null = null;
      let read: BusRecord | null = null;
      let kept: BusRecord | null = null;
      const holds: RecordHold[] = [];
      const txidsRead: string[] = [];
      let n = 0;
      bus.subscribe((record) => {
        if (n === 0) {
          holds.push(record.hold!());
          held = record;
        }
      }, { holdsRecords: true });
      bus.subscribe((record) => {
        if (n === 1) kept = record;
        if (n === 2) {
          read = record;
          txidsRead.push(record.txid);
        }
        n++;
      }, { holdsRecords: holding });
      const actor = new VehicleActor(VIN, bus, metrics, 0);
      for (const txid of ['held-0001', 'kept-0002', 'read-0003']) {
        const batch = batchOf([speed('2026-01-02T03:04:10Z', 1)], [txid]);
        actor.decoded(actor.frameArrived(conn, RECEIVED_AT, performance.now()), batch, 0);
        overwrite(batch);
      }
      for (const hold of holds) hold.letGo();
      expect(txidsRead, 'read during publish').to.deep.equal(['read-0003']);
      return { held: held!, read: read!, kept: kept! };
    };
    const holding = run(true);
    expect(holding.held.txid, 'held: made before the hold').to.equal('held-0001');
    expect(holding.read.txid).to.equal('read-0003');
    const keeping = run(false);
    expect([keeping.held.txid, keeping.kept.txid, keeping.read.txid], 'a listener that may keep anything: made at once').to.deep.equal(['held-0001', 'kept-0002', 'read-0003']);
  });

  it('frames whose worker failed each get the error reply to their txid (empty when the envelope is unreadable)', () => {
    const good = writeStreamEnvelope({ txid: 'tx-1', topic: 'V', payload: speed('2026-01-02T03:04:10Z', 1) });
    const garbage = Uint8Array.of(1, 2, 3);
    const task = packFrames([good, garbage], VIN, RECEIVED_AT);
    const offsets = [...task.offsets];
    const failed = DecodedBatch.failed(task.frames, offsets);
    expect(failed.count).to.equal(2);
    for (let i = 0; i < 2; i++) {
      expect(failed.kind(i)).to.equal(KIND_ERROR);
      expect(failed.errorKind(i)).to.equal('worker_failed');
    }
    expect(failed.txid(0)).to.equal('tx-1');
    expect(failed.topic(0)).to.equal('V');
    expect([...failed.reply(0)]).to.deep.equal([...writeErrorReply(new TextEncoder().encode('tx-1'))]);
    expect(failed.txid(1)).to.equal('');
    expect([...failed.reply(1)]).to.deep.equal([...writeErrorReply(new Uint8Array(0))]);
  });

  it('reads created_at to the same epoch ms as sampleTime, for any text', () => {
    const bytesOf = (text: string) => new TextEncoder().encode(`xx${text}yy`);
    const check = (text: string) => {
      const bytes = bytesOf(text);
      expect(createdAtMsOf(bytes, 2, bytes.length - 2), text).to.equal(sampleTime(text));
    };
    const MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    fc.assert(
      fc.property(fc.integer({ min: new Date('0001-01-01T00:00:00Z').getTime(), max: MAX }), fc.constantFrom('ms', 'seconds', 'micros', 'nanos'), (ms, form) => {
        const iso = new Date(ms).toISOString();
        const text = form === 'ms' ? iso : form === 'seconds' ? `${iso.slice(0, 19)}Z` : form === 'micros' ? `${iso.slice(0, 23)}456Z` : `${iso.slice(0, 23)}456789Z`;
        check(text);
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.string({ maxLength: 30 }), (text) => check(text)), { numRuns: 2000 });
    for (const text of ['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T23:60:00Z', '0099-12-31T23:59:59.999Z', '2026-01-01T00:00:00.12aZ', '2026-01-01 00:00:00Z', '+02026-01-01T00:00:00Z', '2026-01-01T00:00:00+01:00', '2026-11-30T09:00:00.123456Z', '2026-04-31T23:59:59.999999999Z', '2026-11-32T00:00:00Z', '2026-01-01T00:00:00.123x56Z', '2026-01-01T00:00:00.12345Z', '2026-01-01T00:00:00.1234567890Z']) check(text);
  });
});
