import { expect } from 'chai';
import { mergeState, parseStoredState } from '../../src/bus/nats/kv-state.js';
import pino from 'pino';
import { HEADER, StreamRecordError, fromStreamMessage, readStoredMessage, storedRecordOf, toStreamMessage } from '../../src/bus/nats/stream-record.js';
import { DecodePool } from '../../src/decode/decode-pool.js';
import { DecodeMetrics } from '../../src/decode/decode-metrics.js';
import client from 'prom-client';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { dashboardMessageOf, dashboardRecordMessage } from '../../src/dashboard/dashboard-protocol.js';
import { decodeRecord, encodeNormalised } from '../../src/protocol/payload.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { protoSchema } from '../../src/protocol/proto-schema.js';
import { bytesField, concat, varintField } from '../robustness/fuzz/protobuf-wire.js';

const VIN = '5YJ3E7EB0LF000001';

function vRecord(): BusRecord {
  // The car wrote another VIN, a Location string and a field our schema does not know (number 9).
  const payload = concat([
    encodeVehicleData({
      vin: 'SPOOFED0000000000',
      createdAt: new Date('2026-01-02T03:04:05Z'),
      isResend: true,
      // Only the first Location string is converted; read back, the second must stay a string too.
      data: [
        { key: 'VehicleSpeed', value: { doubleValue: 42.5 } },
        { key: 'Location', value: { stringValue: '(37.5 N, 122.25 W)' } },
        { key: 'Location', value: { stringValue: '(1 N, 2 E)' } },
      ],
    }),
    bytesField(9, varintField(1, 77)),
  ]);
  const decoded = decodeRecord('V', payload, VIN);
  const receivedAt = Date.parse('2026-01-02T03:04:06.789Z');
  return {
    vin: VIN,
    topic: 'V',
    txid: 'de9a74cb3a9245f4bf5502-000000007',
    receivedAt,
    recordJson: decoded.json,
    dashboardMessage: dashboardRecordMessage(VIN, 'V', receivedAt, decoded.json, decoded.isResend),
    payload,
    normalisedPayload: encodeNormalised('V', payload, VIN)!,
    clientVersion: '1.0.0',
  };
}

describe('stream records', () => {
  it('stores the normalised record as protobuf (certificate VIN, Location converted, unknown fields kept)', () => {
    const record = vRecord();
    const message = toStreamMessage(record, 'telemetry', 'protobuf', 'inst-a');
    expect(message.data).to.equal(record.normalisedPayload);
    // What an outside consumer decoding the body with the schema alone reads.
    const Payload = protoSchema().root.lookupType('telemetry.vehicle_data.Payload');
    const read = Payload.toObject(Payload.decode(message.data), { longs: String }) as { vin: string; data: Array<{ value: Record<string, unknown> }> };
    expect(read.vin).to.equal(VIN);
    expect(read.data[1]!.value.locationValue).to.deep.equal({ latitude: 37.5, longitude: -122.25 });
    expect(Buffer.from(message.data).includes(Buffer.from(bytesField(9, varintField(1, 77))))).to.equal(true);
    expect(Buffer.from(message.data).includes(Buffer.from('SPOOFED'))).to.equal(false);
    expect(message.headers.get(HEADER.clientVersion)).to.equal('1.0.0');
    expect(fromStreamMessage(message.data, message.headers).clientVersion).to.equal('1.0.0');
  });

  it('never stores the car\'s own bytes for a decoded topic: without a normalised protobuf the body is JSON', () => {
    const record = vRecord();
    delete record.normalisedPayload;
    const message = toStreamMessage(record, 'telemetry', 'protobuf', 'inst-a');
    expect(message.headers.get(HEADER.encoding)).to.equal('json');
    expect(new TextDecoder().decode(message.data)).to.equal(record.recordJson);
  });

  it('stores protobuf bytes with headers and rebuilds the same dashboard message', () => {
    const record = vRecord();
    const message = toStreamMessage(record, 'telemetry', 'protobuf', 'inst-a');
    expect(message.subject).to.equal(`telemetry.${VIN}.V`);
    expect(message.headers.get(HEADER.encoding)).to.equal('protobuf');
    expect(message.headers.get(HEADER.instance)).to.equal('inst-a');
    expect(message.headers.get(HEADER.receivedAt)).to.equal('2026-01-02T03:04:06.789Z');
    const back = fromStreamMessage(message.data, message.headers);
    expect(back).to.include({ vin: VIN, topic: 'V', txid: record.txid, receivedAt: record.receivedAt, recordJson: record.recordJson, instance: 'inst-a' });
    expect(dashboardMessageOf(back)).to.equal(record.dashboardMessage);
    expect(dashboardMessageOf(back)).to.contain('"resend":true');
  });

  it('stores canonical JSON when asked and still rebuilds the dashboard message', () => {
    const record = vRecord();
    const message = toStreamMessage(record, 'telemetry', 'json', 'inst-a');
    expect(new TextDecoder().decode(message.data)).to.equal(record.recordJson);
    const back = fromStreamMessage(message.data, message.headers);
    expect(dashboardMessageOf(back)).to.equal(record.dashboardMessage);
    expect(back.payload).to.equal(null);
  });

  it('passes opaque topics through and escapes car-chosen text in headers and subjects', () => {
    const record: BusRecord = {
      vin: VIN, topic: 'odd.topic*', txid: 'tx\r\nInjected: yes', receivedAt: 1000, recordJson: null,
      dashboardMessage: '', payload: new Uint8Array([1, 2, 3]),
    };
    const message = toStreamMessage(record, 'telemetry', 'json', 'i');
    expect(message.subject).to.equal(`telemetry.${VIN}.odd~2Etopic~2A`);
    expect(message.headers.get(HEADER.txid)).to.not.match(/[\r\n]/);
    const back = fromStreamMessage(message.data, message.headers);
    expect(back).to.include({ topic: 'odd.topic*', txid: 'tx\r\nInjected: yes', recordJson: null });
    expect([...(back.payload ?? [])]).to.deep.equal([1, 2, 3]);
  });

  it('refuses messages it did not write', () => {
    expect(() => fromStreamMessage(new Uint8Array(0), undefined)).to.throw(StreamRecordError);
  });
});

describe('stored records decoded by the decode pool (as car frames are)', () => {
  for (const inlineMaxFrames of [0, 64]) {
    it(`gives the records fromStreamMessage gives, in order, one bad body costing only itself (${inlineMaxFrames === 0 ? 'worker' : 'inline'})`, async () => {
      const pool = new DecodePool<never>(
        { workers: 1, batchMaxFrames: 64, taskTimeoutMs: 10_000, inlineMaxFrames, metrics: new DecodeMetrics(new client.Registry()), logger: pino({ level: 'silent' }) },
        () => {},
      );
      try {
        const messages = [toStreamMessage(vRecord(), 'telemetry', 'protobuf', 'a'), toStreamMessage(vRecord(), 'telemetry', 'json', 'a')];
        const stored = messages.map((m) => readStoredMessage(m.data, m.headers));
        const broken = { ...stored[0], body: { ...stored[0]!.body, body: new Uint8Array([0x0a, 0xff]) } };
        const outcomes = await pool.decodeStored([stored[0]!.body, broken.body, stored[1]!.body]);
        // Requests of one turn are decoded together and each gets its own outcomes, in order.
        const messagesBefore = pool.workerMessages;
        const [alone, pair] = await Promise.all([pool.decodeStored([stored[1]!.body]), pool.decodeStored([broken.body, stored[0]!.body])]);
        expect(alone).to.have.length(1);
        expect(alone[0]).to.deep.equal(outcomes[2]);
        expect(pair).to.have.length(2);
        expect(pair[0]).to.have.property('error');
        expect(pair[1]).to.deep.equal(outcomes[0]);
        // One worker message for both requests (none when decoded inline).
        expect(pool.workerMessages - messagesBefore).to.equal(inlineMaxFrames === 0 ? 1 : 0);
        expect(outcomes).to.have.length(3);
        expect(outcomes[1]).to.have.property('error');
        for (const [i, message] of [[0, messages[0]!], [2, messages[1]!]] as const) {
          const outcome = outcomes[i]!;
          if ('error' in outcome) throw new Error(outcome.error);
          const record = storedRecordOf(readStoredMessage(message.data, message.headers), outcome);
          expect(record).to.deep.equal(fromStreamMessage(message.data, message.headers));
        }
      } finally {
        await pool.close();
      }
    });
  }
});

describe('last-known state merge', () => {
  it('keeps the later sample per field and the latest lastSeenAt', () => {
    const base = { lastSeenAt: 2000, state: { A: { value: '1', at: '2026-01-01T00:00:02Z' }, B: { value: 'old', at: '2026-01-01T00:00:01Z' } } };
    const local = new Map([
      ['A', { value: 'older', at: '2026-01-01T00:00:01Z' }],
      ['B', { value: 'new', at: '2026-01-01T00:00:03Z' }],
      ['C', { value: 'c', at: '2026-01-01T00:00:00Z' }],
    ]);
    const merged = mergeState(base, { state: local, lastSeenAt: 1500 });
    expect(merged.state).to.deep.equal({
      A: { value: '1', at: '2026-01-01T00:00:02Z' },
      B: { value: 'new', at: '2026-01-01T00:00:03Z' },
      C: { value: 'c', at: '2026-01-01T00:00:00Z' },
    });
    expect(merged.lastSeenAt).to.equal(2000);
    expect(mergeState(null, { state: [], lastSeenAt: null })).to.deep.equal({ lastSeenAt: null, state: {} });
  });

  it('parses what it writes and tolerates missing parts', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ lastSeenAt: 5, state: { X: { value: '1', at: 't' } } }));
    expect(parseStoredState(bytes)).to.deep.equal({ lastSeenAt: 5, state: { X: { value: '1', at: 't' } } });
    expect(parseStoredState(new TextEncoder().encode('{}'))).to.deep.equal({ lastSeenAt: null, state: {} });
  });
});
