// fast-check arbitraries for what a car (or anything on the internet holding a car's certificate) can put
// in a binary WebSocket frame: well-formed records, records with unknown fields and enum numbers,
// envelopes with the wrong union, garbage protobuf, deep nesting, huge declared vector lengths, and
// mutations (truncation, bit flips, splices) of all of those, plus plain random bytes.
import fc from 'fast-check';
import { Builder } from 'flatbuffers';
import { readEnvelope, writeStreamEnvelope } from '../../../src/protocol/envelope.js';
import { encodeConnectivity, encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../../src/protocol/payload-encoder.js';
import { fieldNames } from '../../../src/protocol/proto-schema.js';
import {
  WIRE_BYTES,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_VARINT,
  bytesField,
  concat,
  doubleField,
  nestedGroups,
  nestedMessages,
  tag,
  varint,
  varintField,
} from './protobuf-wire.js';

/** The families a frame comes from; reported per family so a run shows what it covered. */
export type FrameFamily =
  | 'random_bytes'
  | 'valid_record'
  | 'unknown_fields'
  | 'garbage_protobuf'
  | 'deep_nesting'
  | 'odd_envelope'
  | 'huge_vector_length'
  | 'mutated';

export interface FuzzFrame {
  family: FrameFamily;
  bytes: Uint8Array;
}

const TOPICS = ['V', 'alerts', 'errors', 'connectivity', 'custom-topic', '', 'v', 'V\u0000'] as const;
const VALID_VIN = '5YJ3E7EB0LF000001';

const txidArb = fc.oneof(
  fc.constant('de9a74cb3a9245f4bf5502-000000001'),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
);
const topicArb = fc.oneof({ arbitrary: fc.constantFrom(...TOPICS), weight: 6 }, { arbitrary: fc.string({ maxLength: 12 }), weight: 1 });

// ---- payloads ----------------------------------------------------------------------------------

const timestampArb = fc.oneof(
  fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }),
  fc.record({ seconds: fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
);

const valueArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.double({ noNaN: false }).map((doubleValue) => ({ doubleValue })),
  fc.string({ maxLength: 30 }).map((stringValue) => ({ stringValue })),
  fc.constantFrom('1.1920928955078125e-05', '(37.4000 N, 122.1000 W)', '(91 S, 500 E)', 'NaN', '-0').map((stringValue) => ({ stringValue })),
  fc.integer().map((intValue) => ({ intValue })),
  fc.boolean().map((booleanValue) => ({ booleanValue })),
  fc.record({ latitude: fc.double(), longitude: fc.double() }).map((locationValue) => ({ locationValue })),
  fc.constantFrom('ShiftStateD', 'ShiftStateP', 'ShiftStateR').map((shiftStateValue) => ({ shiftStateValue })),
  fc.constant({ invalid: true }),
);

const datumArb = fc.record({
  key: fc.oneof(fc.constantFrom(...fieldNames().slice(1)), fc.integer({ min: 0, max: 259 })),
  value: valueArb,
});

export const validPayloadArb: fc.Arbitrary<{ topic: string; payload: Uint8Array }> = fc.oneof(
  fc.record({ data: fc.array(datumArb, { maxLength: 12 }), createdAt: timestampArb, resend: fc.boolean() }).map(({ data, createdAt, resend }) => ({
    topic: 'V',
    payload: encodeVehicleData({ vin: 'SPOOFED-VIN', createdAt, data, isResend: resend }),
  })),
  fc.record({ names: fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), startedAt: timestampArb }).map(({ names, startedAt }) => ({
    topic: 'alerts',
    payload: encodeVehicleAlerts({ vin: VALID_VIN, createdAt: new Date(), alerts: names.map((name) => ({ name, audiences: [], startedAt })) }),
  })),
  fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }).map((names) => ({
    topic: 'errors',
    payload: encodeVehicleErrors({ vin: VALID_VIN, createdAt: new Date(), errors: names.map((name) => ({ name, tags: { k: name }, body: name })) }),
  })),
  fc.constantFrom('CONNECTED', 'DISCONNECTED').map((status) => ({
    topic: 'connectivity',
    payload: encodeConnectivity({ vin: VALID_VIN, connectionId: 'c', status, createdAt: new Date(), networkInterface: 'wifi' }),
  })),
  fc.uint8Array({ maxLength: 64 }).map((payload) => ({ topic: 'custom-topic', payload })),
);

/** A raw V Datum whose key and enum values may be numbers the schema has never heard of. */
const rawDatumArb = fc
  .record({
    key: fc.oneof(fc.integer({ min: 260, max: 100_000 }), fc.constant(-1), fc.constant(2 ** 31 - 1)),
    valueField: fc.oneof(fc.integer({ min: 1, max: 54 }), fc.integer({ min: 55, max: 5000 })),
    number: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(-1), fc.constant(2 ** 31)),
    unknownInValue: fc.boolean(),
  })
  .map(({ key, valueField, number, unknownInValue }) => {
    // Whatever the member's declared type, write it as a varint: right for enums, bools and ints,
    // a wire-type mismatch for strings, doubles and messages.
    const value = concat([varintField(valueField, number), unknownInValue ? varintField(999, number) : new Uint8Array(0)]);
    return bytesField(1, concat([varintField(1, key), bytesField(2, value)]));
  });

const unknownFieldArb = fc
  .record({
    field: fc.oneof(fc.integer({ min: 5, max: 1000 }), fc.constant(536_870_911)),
    kind: fc.constantFrom(WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES, WIRE_FIXED32),
    body: fc.uint8Array({ maxLength: 16 }),
  })
  .map(({ field, kind, body }) => {
    if (kind === WIRE_VARINT) return varintField(field, body.length * 1_000_003);
    if (kind === WIRE_FIXED64) return doubleField(field, body.length / 3);
    if (kind === WIRE_FIXED32) return concat([tag(field, WIRE_FIXED32), new Uint8Array(4)]);
    return bytesField(field, body);
  });

/** Well-formed payloads carrying unknown fields, unknown Field numbers and unknown enum values. */
export const unknownFieldsPayloadArb = fc
  .record({ base: validPayloadArb, extras: fc.array(fc.oneof(unknownFieldArb, rawDatumArb), { minLength: 1, maxLength: 6 }) })
  .map(({ base, extras }) => ({ topic: base.topic === 'custom-topic' ? 'V' : base.topic, payload: concat([base.payload, ...extras]) }));

export const garbagePayloadArb = fc.record({
  topic: fc.constantFrom('V', 'alerts', 'errors', 'connectivity'),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    // a length prefix that promises more than follows
    fc.integer({ min: 1, max: 2 ** 31 }).map((n) => concat([tag(1, WIRE_BYTES), varint(n), new Uint8Array(3)])),
    // a ten-byte varint that overflows 64 bits
    fc.constant(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
    // field number 0 and the reserved wire types 6 and 7
    fc.constantFrom(Uint8Array.from([0x00, 0x01]), Uint8Array.from([0x0e, 0x01]), Uint8Array.from([0x0f])),
    // a string that is not UTF-8 where the schema says string
    fc.constant(bytesField(3, Uint8Array.from([0xc3, 0x28, 0xff, 0xfe]))),
  ),
});

export const deepNestingPayloadArb = fc.record({
  topic: fc.constantFrom('V', 'alerts', 'errors', 'connectivity'),
  payload: fc.oneof(
    fc.record({ depth: fc.integer({ min: 10, max: 50_000 }), closed: fc.boolean() }).map(({ depth, closed }) => nestedGroups(7, depth, closed)),
    fc.integer({ min: 10, max: 5_000 }).map((depth) => nestedMessages(1, depth, varintField(1, 1))),
    fc.integer({ min: 10, max: 5_000 }).map((depth) => nestedMessages(999, depth, new Uint8Array(0))),
  ),
});

// ---- envelopes ---------------------------------------------------------------------------------

function envelopeOf(topic: string, payload: Uint8Array, txid: string): Uint8Array {
  return writeStreamEnvelope({ txid, topic, payload, messageId: 'm', createdAt: 1_700_000_000, deviceId: VALID_VIN, deliveredAtEpochMs: 1_700_000_000_000n });
}

const payloadFrame = (payloads: fc.Arbitrary<{ topic: string; payload: Uint8Array }>) =>
  fc.record({ p: payloads, txid: txidArb }).map(({ p, txid }) => envelopeOf(p.topic, p.payload, txid));

/**
 * Envelopes assembled field by field: any union type byte 0-255, the union pointing at a stream table,
 * an empty table, a byte vector or nothing, fields missing, vtables shorter or longer than the schema.
 */
const oddEnvelopeArb = fc
  .record({
    txid: fc.option(txidArb, { nil: undefined }),
    topic: fc.option(topicArb, { nil: undefined }),
    type: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5), fc.integer({ min: 0, max: 255 })),
    union: fc.constantFrom('stream', 'empty_table', 'byte_vector', 'none'),
    payload: fc.uint8Array({ maxLength: 32 }),
    extraFields: fc.integer({ min: 0, max: 8 }),
  })
  .map(({ txid, topic, type, union, payload, extraFields }) => {
    const b = new Builder(128);
    let unionOffset = 0;
    if (union === 'stream') {
      const p = b.createByteVector(payload);
      b.startObject(6);
      b.addFieldOffset(2, p, 0);
      unionOffset = b.endObject();
    } else if (union === 'empty_table') {
      b.startObject(0);
      unionOffset = b.endObject();
    } else if (union === 'byte_vector') {
      unionOffset = b.createByteVector(payload);
    }
    const t = txid === undefined ? 0 : b.createString(txid);
    const tp = topic === undefined ? 0 : b.createString(topic);
    b.startObject(5 + extraFields);
    if (t) b.addFieldOffset(0, t, 0);
    if (tp) b.addFieldOffset(1, tp, 0);
    b.addFieldInt8(2, type, -1);
    if (unionOffset) b.addFieldOffset(3, unionOffset, 0);
    for (let i = 0; i < extraFields; i++) b.addFieldInt32(5 + i, i + 1, 0);
    b.finish(b.endObject());
    return b.asUint8Array().slice();
  });

/** Positions of the u32 length words of every byte vector a valid envelope holds. */
function vectorLengthPositions(frame: Uint8Array): number[] {
  const e = readEnvelope(frame);
  const views = [e.txid, e.topic, e.messageId];
  if (e.stream) views.push(e.stream.payload, e.stream.senderId, e.stream.deviceId, e.stream.deviceType);
  return views.filter((v) => v.length > 0 && v.byteOffset >= frame.byteOffset + 4).map((v) => v.byteOffset - frame.byteOffset - 4);
}

const hugeVectorLengthArb = fc
  .record({
    frame: payloadFrame(validPayloadArb),
    pick: fc.nat(),
    length: fc.oneof(fc.constantFrom(0xffffffff, 0x7fffffff, 0x80000000, 0x10000000), fc.integer({ min: 0, max: 0xffffffff })),
  })
  .map(({ frame, pick, length }) => {
    const positions = vectorLengthPositions(frame);
    const at = positions[pick % positions.length];
    if (at === undefined) throw new Error('a valid envelope always has a byte vector (its topic)');
    new DataView(frame.buffer, frame.byteOffset).setUint32(at, length, true);
    return frame;
  });

type Mutation =
  | { op: 'truncate'; at: number }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'u32'; at: number; value: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 0xff, 0x7f, 0x80, 4, 5) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 0xffffffff, 0x7fffffff, 0xfffffffc, 1 << 20) }),
);

export function mutate(frame: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes: Uint8Array = frame.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % bytes.length;
    switch (m.op) {
      case 'truncate': bytes = bytes.slice(0, at); break;
      case 'flip': bytes[at]! ^= 1 << m.bit; break;
      case 'set': bytes[at] = m.value; break;
      case 'insert': bytes = concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]); break;
      case 'delete': bytes = concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]); break;
      case 'u32':
        if (at + 4 <= bytes.length) new DataView(bytes.buffer, bytes.byteOffset).setUint32(at & ~3, m.value, true);
        break;
    }
  }
  return bytes;
}

const seedFrameArb = fc.oneof(payloadFrame(validPayloadArb), payloadFrame(unknownFieldsPayloadArb), oddEnvelopeArb);
const mutatedArb = fc
  .record({ frame: seedFrameArb, mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) })
  .map(({ frame, mutations }) => mutate(frame, mutations));

const tagged = (family: FrameFamily, arb: fc.Arbitrary<Uint8Array>, weight: number) => ({
  arbitrary: arb.map((bytes): FuzzFrame => ({ family, bytes })),
  weight,
});

/** One frame, from any family; mutation gets the largest share, as it finds the most edge cases. */
export const fuzzFrameArb: fc.Arbitrary<FuzzFrame> = fc.oneof(
  tagged('random_bytes', fc.uint8Array({ maxLength: 300 }), 2),
  tagged('valid_record', payloadFrame(validPayloadArb), 2),
  tagged('unknown_fields', payloadFrame(unknownFieldsPayloadArb), 2),
  tagged('garbage_protobuf', payloadFrame(garbagePayloadArb), 2),
  tagged('deep_nesting', payloadFrame(deepNestingPayloadArb), 1),
  tagged('odd_envelope', oddEnvelopeArb, 2),
  tagged('huge_vector_length', hugeVectorLengthArb, 1),
  tagged('mutated', mutatedArb, 5),
);

/** A decode batch as the pool forms it: 1 to 32 frames of one event-loop turn. */
export const fuzzBatchArb = fc.array(fuzzFrameArb, { minLength: 1, maxLength: 32 });
