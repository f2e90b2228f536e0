// The generated transcoder against its oracle: for any payload, decodeBatch (which runs the
// transcoder, and protobufjs only for what leaves its common path) gives exactly what protobufjs +
// the canonical writer (decodeRecord) give: the same record JSON text, state, created_at, signal count
// and resend flag, or the same error verdict.
import { expect } from 'chai';
import fc from 'fast-check';
import { createdAtMsOf, decodeBatch, receiveOutcomes, stateFieldName, transcoderStats } from '../../src/decode/decode-batch.js';
import { FRAME_SLOTS, KIND_RECORD, SLOT, TEXT_LEVEL, type FrameOutcome } from '../../src/decode/decode-task.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { dashboardRecordMessage } from '../../src/protocol/record-message.js';
import { SAMPLE_VALUES, SignalSample, readSampleFromBytes } from '../../src/history/signal-sample.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import protobuf from 'protobufjs';
import { PayloadError, decodeRecord, encodeNormalised, type StateEntry } from '../../src/protocol/payload.js';
import { encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../src/protocol/payload-encoder.js';
import { RECORD_TYPES, fieldNames, protoSchema } from '../../src/protocol/proto-schema.js';
import {
  deepNestingPayloadArb,
  fuzzFrameArb,
  garbagePayloadArb,
  mutate,
  mutationArb,
  unknownFieldsPayloadArb,
  validPayloadArb,
} from '../robustness/fuzz/frame-arbitraries.js';
import { packFrames } from '../helpers/decode-task.js';
import { bytesField, concat, varintField } from '../robustness/fuzz/protobuf-wire.js';

const VIN = '5YJ3E7EB0LF000001';
const RUNS = Number(process.env.TRANSCODER_RUNS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

type Verdict =
  | { ok: true; json: string | null; state: StateEntry[] | null; createdAt: string | null; signals: number; isResend: boolean }
  | { ok: false; kind: string };

function oracle(topic: string, payload: Uint8Array, vin: string): Verdict {
  try {
    const r = decodeRecord(topic, payload, vin);
    return { ok: true, json: r.json, state: r.state && r.state.length > 0 ? r.state : null, createdAt: r.createdAt, signals: r.signals, isResend: r.isResend };
  } catch (error) {
    return { ok: false, kind: error instanceof PayloadError ? `payload_${error.kind}` : 'internal' };
  }
}

function viaBatch(topic: string, payload: Uint8Array, vin: string, normalise = false): FrameOutcome {
  // Other frames around it, so positions inside the shared buffers are not all zero.
  const frames = [writeStreamEnvelope({ txid: 'before', topic: 'V', payload: encodeVehicleData({ vin, data: [{ key: 'Soc', value: { doubleValue: 1 } }] }) }), writeStreamEnvelope({ txid: 't', topic, payload })];
  const task = { ...packFrames(frames, vin, 1_780_000_000_000), normalise };
  const shared = task.frames;
  const result = decodeBatch(task);
  return receiveOutcomes(result, shared)[1]!;
}

function stateOf(outcome: FrameOutcome): StateEntry[] | null {
  if (outcome.state === null) return null;
  const entries: StateEntry[] = [];
  for (let i = 0; i < outcome.state.length; i += 3) {
    entries.push({ field: stateFieldName(outcome.state[i]!), value: outcome.dashboardMessage!.slice(outcome.state[i + 1], outcome.state[i + 2]) });
  }
  return entries;
}

/** Throws with both sides when the batch path and the oracle disagree. */
function agree(topic: string, payload: Uint8Array, vin = VIN): void {
  const expected = oracle(topic, payload, vin);
  const outcome = viaBatch(topic, payload, vin);
  const where = `${topic} payload ${Buffer.from(payload).toString('hex')}`;
  if (!expected.ok) {
    expect(outcome.kind, where).to.equal('error');
    expect(outcome.errorKind, where).to.equal(expected.kind);
    return;
  }
  expect(outcome.kind, where).to.equal('record');
  expect(outcome.recordJson, where).to.equal(expected.json);
  expect(stateOf(outcome), where).to.deep.equal(expected.state);
  expect(outcome.createdAt, where).to.equal(expected.createdAt);
  expect(outcome.signals, where).to.equal(expected.signals);
  expect(outcome.isResend, where).to.equal(expected.isResend);
  const message = JSON.parse(outcome.dashboardMessage!) as { record: unknown; vin: string; resend?: boolean };
  expect(message.record, where).to.deep.equal(expected.json === null ? null : JSON.parse(expected.json));
  expect(message.vin).to.equal(vin);
  expect(message.resend === true, where).to.equal(expected.isResend);
}

// Every Value member kind, odd numbers included, beyond what the frame fuzzer's values cover.
const richValueArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.double().map((doubleValue) => ({ doubleValue })),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => ({ doubleValue: n / 1000 })),
  fc.float().map((floatValue) => ({ floatValue })),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((longValue) => ({ longValue })),
  fc.integer().map((intValue) => ({ intValue })),
  fc.string({ maxLength: 40, unit: 'binary' }).map((stringValue) => ({ stringValue })),
  fc.string({ maxLength: 40, unit: 'grapheme' }).map((stringValue) => ({ stringValue })),
  fc.constantFrom('1.1920928955078125e-05', '-2.5E+3', '1e5', '3.14', '(37.412374 N, 122.145867 W)', '( 1.5 S ,2 E )', '(90.0 N, 180.0 E)', '(37.4\u00a0N, 1 W)', '\ufeffx', 'a"b\\c\n\u0001\u007f').map((stringValue) => ({ stringValue })),
  fc.record({ latitude: fc.double(), longitude: fc.double() }).map((locationValue) => ({ locationValue })),
  fc.record({ DriverFront: fc.boolean(), TrunkRear: fc.boolean() }).map((doorValue) => ({ doorValue })),
  fc.record({ hour: fc.integer({ min: -5, max: 30 }), minute: fc.nat(59), second: fc.nat(59) }).map((timeValue) => ({ timeValue })),
  fc.record({ front_left: fc.boolean(), semi_rear_axle_right_2: fc.boolean() }).map((tireLocationValue) => ({ tireLocationValue })),
  fc.oneof(fc.constantFrom('ShiftStateD', 'ShiftStateP'), fc.integer({ min: 0, max: 100 })).map((shiftStateValue) => ({ shiftStateValue })),
  fc.oneof(fc.constantFrom('DetailedChargeStateCharging'), fc.integer({ min: 0, max: 50 })).map((detailedChargeStateValue) => ({ detailedChargeStateValue })),
  fc.boolean().map((booleanValue) => ({ booleanValue })),
  fc.constant({ invalid: true }),
);

const richVArb = fc
  .record({
    data: fc.array(
      fc.record({
        key: fc.oneof(fc.constantFrom(...fieldNames().slice(1)), fc.constant('Location'), fc.integer({ min: 0, max: 400 })),
        value: fc.option(richValueArb, { nil: undefined }),
      }),
      { maxLength: 25 },
    ),
    createdAt: fc.option(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), { nil: undefined }),
    isResend: fc.boolean(),
    vin: fc.string({ maxLength: 20 }),
  })
  .map((p) => ({ topic: 'V', payload: encodeVehicleData(p) }));

const msOrSeconds = fc.oneof(
  fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true }),
  fc.bigInt({ min: 315_576_000_000n - 5n, max: 4_102_444_800_000n }).map((seconds) => ({ seconds, nanos: 0 })),
  fc.record({ seconds: fc.bigInt({ min: 0n, max: 300_000_000_000n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
);

const richAlertsArb = fc
  .record({
    alerts: fc.array(
      fc.record({
        name: fc.string({ maxLength: 20 }),
        audiences: fc.array(fc.oneof(fc.constantFrom('Customer', 'Service'), fc.integer({ min: 0, max: 9 })), { maxLength: 3 }),
        startedAt: fc.option(msOrSeconds, { nil: undefined }),
        endedAt: fc.option(msOrSeconds, { nil: undefined }),
      }),
      { maxLength: 5 },
    ),
    createdAt: fc.option(msOrSeconds, { nil: undefined }),
  })
  .map((p) => ({ topic: 'alerts', payload: encodeVehicleAlerts(p) }));

const richErrorsArb = fc
  .record({
    errors: fc.array(
      fc.record({
        name: fc.string({ maxLength: 12 }),
        body: fc.string({ maxLength: 12, unit: 'grapheme' }),
        tags: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', '10', '2', 'é')), fc.string({ maxLength: 6 }), { maxKeys: 4 }),
        createdAt: fc.option(msOrSeconds, { nil: undefined }),
      }),
      { maxLength: 4 },
    ),
  })
  .map((p) => ({ topic: 'errors', payload: encodeVehicleErrors(p) }));

const anyPayloadArb = fc.oneof(
  { arbitrary: validPayloadArb, weight: 2 },
  { arbitrary: richVArb, weight: 4 },
  { arbitrary: richAlertsArb, weight: 2 },
  { arbitrary: richErrorsArb, weight: 2 },
  { arbitrary: unknownFieldsPayloadArb, weight: 2 },
  { arbitrary: garbagePayloadArb, weight: 1 },
  { arbitrary: deepNestingPayloadArb, weight: 1 },
);

const mutatedPayloadArb = fc
  .record({ p: anyPayloadArb, mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) })
  .map(({ p, mutations }) => ({ topic: p.topic, payload: mutate(p.payload, mutations) }));

describe('transcoder: the same records and verdicts as protobufjs + the canonical writer', function () {
  this.timeout(120_000);

  it(`agrees on ${RUNS} generated payloads (valid, rich, unknown fields, garbage, deep nesting)`, () => {
    fc.assert(fc.property(anyPayloadArb, ({ topic, payload }) => agree(topic, payload)), { numRuns: RUNS, seed: SEED });
  });

  it(`agrees on ${RUNS} mutated payloads (truncated, flipped, spliced)`, () => {
    fc.assert(fc.property(mutatedPayloadArb, ({ topic, payload }) => agree(topic, payload)), { numRuns: RUNS, seed: SEED + 1 });
  });

  it('takes the protobufjs path for none of the well-formed records a car sends', () => {
    const before = transcoderStats.fallbacks;
    fc.assert(
      fc.property(fc.oneof(richVArb, richAlertsArb, richErrorsArb), ({ topic, payload }) => {
        if (oracle(topic, payload, VIN).ok) viaBatch(topic, payload, VIN);
      }),
      { numRuns: 500, seed: SEED + 2 },
    );
    // Millisecond alert times far out and Timestamps without an RFC 3339 form are errors, not records.
    expect(transcoderStats.fallbacks - before).to.equal(0);
  });

  it('gives the normalised protobuf the stream stores: the record read back is the same, VIN and unknown fields as protobufjs re-encodes them', () => {
    const PayloadTypes = Object.fromEntries(Object.entries(RECORD_TYPES).map(([topic, name]) => [topic, protoSchema().root.lookupType(name)]));
    const topLevelUnknowns = (topic: string, bytes: Uint8Array): string => {
      const reader = protobuf.Reader.create(bytes);
      (reader as unknown as { discardUnknown: boolean }).discardUnknown = false;
      const m = PayloadTypes[topic]!.decode(reader) as unknown as { $unknowns?: Uint8Array[] };
      return (m.$unknowns ?? []).map((u) => Buffer.from(u).toString('hex')).join(',');
    };
    fc.assert(
      fc.property(fc.oneof(richVArb, richAlertsArb, richErrorsArb, unknownFieldsPayloadArb, validPayloadArb), ({ topic, payload }) => {
        const outcome = viaBatch(topic, payload, VIN, true);
        if (outcome.kind !== 'record' || outcome.recordJson === null) return;
        const stored = outcome.normalisedPayload!;
        const reference = encodeNormalised(topic, payload, VIN)!;
        const raw = PayloadTypes[topic]!.decode(stored) as unknown as { vin: string };
        expect(raw.vin).to.equal(VIN);
        // Read back as the stream reader does, the stored record is the one dashboards got.
        expect(decodeRecord(topic, stored, VIN, { normalised: true }).json).to.equal(outcome.recordJson);
        expect(decodeRecord(topic, reference, VIN, { normalised: true }).json).to.equal(outcome.recordJson);
        expect(topLevelUnknowns(topic, stored)).to.equal(topLevelUnknowns(topic, reference));
      }),
      { numRuns: 1500, seed: SEED + 3 },
    );
  });

  it('writes doubles, floats, integers and timestamps with the canonical writer\'s text', () => {
    // The transcoder writes numbers from integer digits; the canonical writer uses String(v).
    const decimal = fc
      .record({ units: fc.integer({ min: 0, max: 2 ** 53 - 1 }), places: fc.integer({ min: 0, max: 16 }), negative: fc.boolean() })
      .map(({ units, places, negative }) => (negative ? -1 : 1) * (units % 10 ** Math.min(places + 8, 15)) / 10 ** places);
    const edges = fc.constantFrom(1e-6, 9.99999e-7, 1.000001e-6, 2e6, 1999999.999999999, 1999999.99999999, 2000000.000000001, 99999999999999, 999999999999999,
      1e15, 0.1 + 0.2, 123456.789012345, 5e-324, Number.MAX_VALUE, -0, 1 / 3, 37.418853, -122.126881);
    const valueArb = fc.oneof(
      decimal.map((v) => ({ doubleValue: v })),
      edges.map((v) => ({ doubleValue: v })),
      fc.double().map((v) => ({ doubleValue: v })),
      fc.float().map((v) => ({ floatValue: v })),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) => ({ intValue: v })),
    );
    fc.assert(
      fc.property(fc.array(valueArb, { minLength: 1, maxLength: 20 }), fc.integer({ min: -62_135_596_800, max: 253_402_300_799 }), fc.integer({ min: 0, max: 999_999_999 }), (values, seconds, nanos) => {
        const payload = encodeVehicleData({ vin: VIN, createdAt: { seconds, nanos }, data: values.map((value) => ({ key: 'Soc', value })) });
        agree('V', payload);
      }),
      { numRuns: RUNS, seed: SEED + 4 },
    );
  });

  it('patches rewritten datums into the normalised protobuf: Location and scientific strings, any key, unknown fields kept as the reference keeps them', () => {
    const datum = (key: number, value: Uint8Array, extra: Uint8Array = new Uint8Array(0)) => bytesField(1, concat([extra, varintField(1, key), bytesField(2, value)]));
    const text = (s: string) => bytesField(1, Buffer.from(s));
    const cases: Uint8Array[] = [
      concat([bytesField(3, Buffer.from('SPOOFED')), datum(21, text('(37.412374 N, 122.145867 W)')), datum(4, varintField(6, 1))]),
      concat([datum(-5, text('1.1920928955078125e-05')), bytesField(3, Buffer.from('A')), datum(400, text('-2.5E+3')), bytesField(3, Buffer.from('B'))]),
      // only the first Location is converted; a datum's unknown field and key given twice
      concat([datum(21, text('( 1.5 S ,2 E )'), varintField(9, 7)), datum(21, text('(1 N, 2 E)')), varintField(99, 5)]),
      concat([bytesField(1, concat([varintField(1, 3), varintField(1, 21), bytesField(2, text('(90.0 N, 180.0 E)'))])), datum(2_000_000, text('6.02e+23'))]),
      // unknown fields inside the Value of a rewritten string (kept) and of a converted Location (dropped)
      concat([datum(7, concat([varintField(120, 1), text('1.5e-7'), bytesField(121, Buffer.from('x'))]), bytesField(60, Buffer.from('d'))), datum(21, concat([text('(1 N, 2 E)'), varintField(120, 2)]))]),
    ];
    const V = protoSchema().root.lookupType(RECORD_TYPES.V);
    type Unknowing = { $unknowns?: Uint8Array[]; value?: Unknowing | null };
    const unknownsOf = (bytes: Uint8Array): string => {
      const reader = protobuf.Reader.create(bytes);
      (reader as unknown as { discardUnknown: boolean }).discardUnknown = false;
      const m = V.decode(reader) as unknown as { data: Unknowing[] } & Unknowing;
      const hex = (u: Unknowing | null | undefined) => (u?.$unknowns ?? []).map((x) => Buffer.from(x).toString('hex')).join('+');
      return [hex(m), ...m.data.map((d) => `${hex(d)}/${hex(d.value)}`)].join(',');
    };
    for (const payload of cases) {
      const reencodedBefore = transcoderStats.reencoded;
      const outcome = viaBatch('V', payload, VIN, true);
      expect(outcome.kind).to.equal('record');
      expect(transcoderStats.reencoded, 'patched from the car\'s bytes, not encoded again').to.equal(reencodedBefore);
      const stored = outcome.normalisedPayload!;
      expect(decodeRecord('V', stored, VIN, { normalised: true }).json).to.equal(outcome.recordJson);
      const reference = encodeNormalised('V', payload, VIN)!;
      expect(decodeRecord('V', stored, VIN, { normalised: true }).json).to.equal(decodeRecord('V', reference, VIN, { normalised: true }).json);
      expect(unknownsOf(stored)).to.equal(unknownsOf(reference));
      expect(Buffer.from(stored).includes(Buffer.from('SPOOFED'))).to.equal(false);
    }
  });

  it('gives the recent history the signals the bytes reader reads from the JSON it wrote (numbers and locations taken as written)', () => {
    const followed = ['Soc', 'BatteryLevel', 'EstBatteryRange', 'VehicleSpeed', 'PackVoltage', 'PackCurrent', 'ACChargingPower', 'DCChargingPower', 'InsideTemp', 'OutsideTemp', 'Odometer', 'FastChargerPresent', 'Gear', 'DetailedChargeState', 'Location'];
    const recordArb = fc
      .record({
        data: fc.array(
          fc.record({
            key: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...followed) }, { weight: 1, arbitrary: fc.constantFrom(...fieldNames().slice(1)) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 400 }) }),
            value: fc.option(richValueArb, { nil: undefined, freq: 10 }),
          }),
          { maxLength: 25 },
        ),
        vin: fc.string({ maxLength: 20 }),
      })
      .map((p) => encodeVehicleData(p));
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 4 }), (payloads) => {
        const task = packFrames(payloads.map((payload, i) => writeStreamEnvelope({ txid: `t${i}`, topic: 'V', payload })), VIN, 1_780_000_000_000);
        const result = decodeBatch(task);
        const table = new Int32Array(result.buffer, 0, result.count * FRAME_SLOTS);
        const state = new Int32Array(result.buffer, result.stateAt, (result.repliesAt - result.stateAt) >> 2);
        const text = new Uint8Array(result.buffer, result.textAt, result.normalisedAt - result.textAt);
        const samples = new Float64Array(result.buffer, result.samplesAt, (result.buffer.byteLength - result.samplesAt) >> 3);
        for (let i = 0; i < result.count; i++) {
          const row = i * FRAME_SLOTS;
          if (table[row + SLOT.KIND] !== KIND_RECORD || table[row + SLOT.STATE_END]! <= table[row + SLOT.STATE_START]!) continue;
          const expected = readSampleFromBytes(text, state, table[row + SLOT.STATE_START]! * 3, table[row + SLOT.STATE_END]! * 3, table[row + SLOT.MESSAGE_END]!, new SignalSample());
          const got = new SignalSample();
          got.readRow(samples, (table[row + SLOT.SAMPLE]! - 1) * SAMPLE_VALUES);
          const where = Buffer.from(payloads[i]!).toString('hex');
          expect(Object.is(got.soc, expected.soc) && Object.is(got.latitude, expected.latitude), where).to.equal(true);
          expect({ ...got }, where).to.deep.equal({ ...expected });
        }
      }),
      { numRuns: 1000, seed: SEED + 3 },
    );
  });

  it('gives created_at in ms as the text it wrote reads (createdAtMsOf), from year 1 to 9999 and beyond', () => {
    const createdAtArb = fc.oneof(
      fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
      fc.date({ min: new Date('0099-12-31T23:59:59Z'), max: new Date('0100-01-01T00:00:01Z'), noInvalidDate: true }),
      fc.record({ seconds: fc.bigInt({ min: -62_135_596_900n, max: 253_402_300_900n }), nanos: fc.integer({ min: -1, max: 1_000_000_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(createdAtArb, { minLength: 1, maxLength: 4 }), (times) => {
        const payloads = times.map((createdAt) => encodeVehicleData({ vin: VIN, createdAt: createdAt as never, data: [{ key: 'Soc', value: { doubleValue: 1 } }] }));
        const task = packFrames(payloads.map((payload, i) => writeStreamEnvelope({ txid: `t${i}`, topic: 'V', payload })), VIN, 1_780_000_000_000);
        const result = decodeBatch(task);
        const table = new Int32Array(result.buffer, 0, result.count * FRAME_SLOTS);
        const text = new Uint8Array(result.buffer, result.textAt, result.normalisedAt - result.textAt);
        for (let i = 0; i < result.count; i++) {
          const row = i * FRAME_SLOTS;
          if (table[row + SLOT.KIND] !== KIND_RECORD || table[row + SLOT.CREATED_AT_START]! < 0) continue;
          const ms = table[row + SLOT.CREATED_AT_MS_HI]! * 4294967296 + (table[row + SLOT.CREATED_AT_MS_LO]! >>> 0);
          expect(ms, Buffer.from(text.subarray(table[row + SLOT.CREATED_AT_START], table[row + SLOT.CREATED_AT_END])).toString()).to.equal(createdAtMsOf(text, table[row + SLOT.CREATED_AT_START]!, table[row + SLOT.CREATED_AT_END]!));
        }
      }),
      { numRuns: 1000, seed: SEED + 4 },
    );
  });

  it('agrees on the edge cases the wire allows', () => {
    const datum = (key: number, value: Uint8Array) => bytesField(1, concat([varintField(1, key), bytesField(2, value)]));
    const cases: Array<[string, Uint8Array]> = [
      // a Value with two members (the later one wins), a Datum with its key twice
      ['V', datum(4, concat([varintField(6, 1), varintField(2, 5)]))],
      ['V', bytesField(1, concat([varintField(1, 4), varintField(1, 8), bytesField(2, varintField(6, 1))]))],
      // a Value message field given twice (protobufjs merges), a Timestamp given twice
      ['V', bytesField(1, concat([varintField(1, 21), bytesField(2, bytesField(7, new Uint8Array(0))), bytesField(2, varintField(6, 1))]))],
      ['V', concat([bytesField(2, varintField(1, 1_700_000_000)), bytesField(2, varintField(2, 5))])],
      // negative int32 (ten-byte varint), is_resend as a long varint, a Field number past the schema
      ['V', datum(4, varintField(2, -5))],
      ['V', varintField(4, 2n ** 40n)],
      ['V', datum(2_000_000, varintField(6, 1))],
      ['V', datum(-1, varintField(6, 0))],
      // a Location in a later datum, the first Location unparseable
      ['V', concat([datum(21, bytesField(1, Buffer.from('nowhere'))), datum(21, bytesField(1, Buffer.from('(1 N, 2 E)')))])],
      // an empty payload, only unknown fields
      ['V', new Uint8Array(0)],
      ['alerts', concat([varintField(99, 1), bytesField(100, new Uint8Array(3))])],
      ['connectivity', concat([bytesField(1, Buffer.from('SPOOF')), varintField(3, 1), bytesField(4, varintField(1, 1_700_000_000))])],
    ];
    for (const [topic, payload] of cases) agree(topic, payload);
  });

  it(`agrees on ${RUNS} hand-built datums around the one-step write of a Value that is one double (any double, known and unknown keys, Values of 8-10 bytes, the tag of another member or wire type, a second member), samples included`, () => {
    // A plain datum whose Value is its double member alone is written by the Datum's function with its
    // head and the member's prefix as one text: every shape near it must come out as protobufjs reads
    // it, and the samples as the bytes reader reads the JSON.
    const doubleArb = fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 5e-324, 1e21, 65.3, 37.412374), fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => n / 100));
    const valueArb = fc.oneof(
      { weight: 6, arbitrary: doubleArb.map((v) => { const b = Buffer.alloc(9); b[0] = 0x29; b.writeDoubleLE(v, 1); return new Uint8Array(b); }) },
      { weight: 1, arbitrary: fc.tuple(doubleArb, fc.constantFrom(0x29, 0x21, 0x2d, 0x28, 0x31, 0x2a), fc.integer({ min: 7, max: 10 })).map(([v, tag, length]) => { const b = Buffer.alloc(Math.max(9, length)); b[0] = tag; b.writeDoubleLE(v, 1); return new Uint8Array(b.subarray(0, length)); }) },
      { weight: 1, arbitrary: fc.tuple(doubleArb, fc.uint8Array({ minLength: 1, maxLength: 9 })).map(([v, extra]) => { const b = Buffer.alloc(9); b[0] = 0x29; b.writeDoubleLE(v, 1); return concat([new Uint8Array(b), extra]); }) },
      { weight: 1, arbitrary: fc.tuple(doubleArb, doubleArb).map(([v, w]) => { const b = Buffer.alloc(18); b[0] = 0x29; b.writeDoubleLE(v, 1); b[9] = 0x29; b.writeDoubleLE(w, 10); return new Uint8Array(b); }) },
    );
    const followed = ['Soc', 'BatteryLevel', 'VehicleSpeed', 'Odometer', 'Gear', 'Location', 'PackVoltage'].map((name) => fieldNames().indexOf(name));
    const keyArb = fc.oneof(fc.constantFrom(...followed), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 300, max: 20_000 }));
    const datumArb = fc.record({ key: keyArb, value: valueArb }).map(({ key, value }) => concat([varintField(1, key), bytesField(2, value)]));
    fc.assert(
      fc.property(fc.array(datumArb, { minLength: 1, maxLength: 6 }), (datums) => {
        const payload = concat(datums.map((datum) => bytesField(1, datum)));
        agree('V', payload);
        const task = packFrames([writeStreamEnvelope({ txid: 't', topic: 'V', payload })], VIN, 1_780_000_000_000);
        const result = decodeBatch(task);
        const table = new Int32Array(result.buffer, 0, result.count * FRAME_SLOTS);
        if (table[SLOT.KIND] !== KIND_RECORD || table[SLOT.STATE_END]! <= table[SLOT.STATE_START]!) return;
        const state = new Int32Array(result.buffer, result.stateAt, (result.repliesAt - result.stateAt) >> 2);
        const text = new Uint8Array(result.buffer, result.textAt, result.normalisedAt - result.textAt);
        const samples = new Float64Array(result.buffer, result.samplesAt, (result.buffer.byteLength - result.samplesAt) >> 3);
        const expected = readSampleFromBytes(text, state, table[SLOT.STATE_START]! * 3, table[SLOT.STATE_END]! * 3, table[SLOT.MESSAGE_END]!, new SignalSample());
        const got = new SignalSample();
        got.readRow(samples, (table[SLOT.SAMPLE]! - 1) * SAMPLE_VALUES);
        expect({ ...got }, Buffer.from(payload).toString('hex')).to.deep.equal({ ...expected });
      }),
      { numRuns: RUNS, seed: SEED + 11 },
    );
  });

  it(`agrees on ${RUNS} hand-built datums around the one-pass read of a plain datum (key varints of 1-3 bytes, values around 128 bytes, fields missing, repeated, reordered, extra or of another wire type)`, () => {
    // A plain datum (key, then a value shorter than 128 bytes, nothing else) is read without the scan
    // loop: every shape near it must come out as protobufjs reads it.
    const valueArb = fc.oneof(
      fc.double().map((v) => { const b = Buffer.alloc(9); b[0] = 0x29; b.writeDoubleLE(v, 1); return new Uint8Array(b); }),
      fc.integer({ min: -5, max: 1000 }).map((n) => varintField(2, n)),
      fc.string({ minLength: 0, maxLength: 200 }).map((text) => bytesField(1, Buffer.from(text))),
      fc.uint8Array({ maxLength: 140 }),
    );
    const partArb = fc.oneof(
      { arbitrary: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 16_000, max: 3_000_000 })).map((key) => varintField(1, key)), weight: 4 },
      { arbitrary: valueArb.map((value) => bytesField(2, value)), weight: 4 },
      { arbitrary: fc.integer({ min: 3, max: 40 }).map((field) => varintField(field, 7)), weight: 1 },
      { arbitrary: fc.constantFrom(new Uint8Array([0x0d, 1, 2, 3, 4]), new Uint8Array([0x12]), new Uint8Array([0x08]), new Uint8Array([0x12, 0x05, 1])), weight: 1 },
    );
    const plainArb = fc.record({ key: fc.integer({ min: 0, max: 20_000 }), value: valueArb }).map(({ key, value }) => [varintField(1, key), bytesField(2, value)]);
    const datumArb = fc.oneof({ arbitrary: plainArb, weight: 3 }, { arbitrary: fc.array(partArb, { maxLength: 4 }), weight: 2 });
    fc.assert(
      fc.property(fc.array(datumArb, { minLength: 1, maxLength: 4 }), (datums) => agree('V', concat(datums.map((parts) => bytesField(1, concat(parts)))))),
      { numRuns: RUNS, seed: SEED + 7 },
    );
  });
});

/**
 * What a decoded row gives the main thread, read as the server reads it: the state values as bytes
 * (stateBytes, before any text is made, as the actor does), then through the text; the created_at, the
 * samples, the reply, the kind, and the record JSON (made on demand for a row decoded values only).
 */
function rowReading(batch: DecodedBatch, i: number, vin: string): Record<string, unknown> {
  const kind = batch.kind(i);
  const reading: Record<string, unknown> = { kind, errorKind: batch.errorKind(i), reply: Buffer.from(batch.reply(i)).toString('hex'), txid: batch.txid(i), topic: batch.topic(i) };
  if (kind !== KIND_RECORD) return reading;
  const triples = batch.triples;
  const from = batch.stateFrom(i);
  const to = batch.stateTo(i);
  const bytes = batch.stateBytes(i);
  if (bytes !== null) {
    const at = batch.textBytesAt;
    const values: string[] = [];
    for (let s = from; s < to; s += 3) values.push(`${triples[s]}=${bytes.toString('utf8', at + triples[s + 1]!, at + triples[s + 2]!)}`);
    if (batch.hasCreatedAt(i)) values.push(`createdAt=${bytes.toString('utf8', at + batch.createdAtStart(i), at + batch.createdAtEnd(i))}`);
    reading.stateBytes = values;
  }
  const text = batch.text(i);
  const base = batch.textBase(i);
  const state: string[] = [];
  for (let s = from; s < to; s += 3) state.push(`${triples[s]}=${text.slice(triples[s + 1]! - base, triples[s + 2]! - base)}`);
  reading.state = state;
  reading.createdAt = batch.createdAt(i);
  reading.createdAtMs = batch.hasCreatedAt(i) ? batch.createdAtMs(i) : null;
  const sampleAt = batch.sampleAt(i);
  reading.samples = sampleAt < 0 ? null : Array.from(batch.samples.subarray(sampleAt, sampleAt + SAMPLE_VALUES), (v) => (Object.is(v, -0) ? '-0' : String(v)));
  reading.signals = batch.signals(i);
  reading.isResend = batch.isResend(i);
  reading.payload = Buffer.from(batch.payload(i)).toString('hex');
  reading.recordJson = batch.recordJson(i, vin);
  return reading;
}

describe('transcoder: a record decoded values only (nothing reads its text) gives what the whole record gives', function () {
  this.timeout(120_000);
  const RECEIVED_AT = 1_780_000_000_123;
  const vinArb = fc.oneof({ weight: 4, arbitrary: fc.constant(VIN) }, fc.constantFrom('5YJ3E7EB0LF00000Ü', 'LRW"quoted\\', ''), fc.string({ maxLength: 20 }));
  const followed = ['Soc', 'BatteryLevel', 'VehicleSpeed', 'Odometer', 'Gear', 'Location', 'PackVoltage', 'DetailedChargeState'].map((name) => fieldNames().indexOf(name));
  const doubleDatumsArb = fc
    .array(fc.record({ key: fc.oneof(fc.constantFrom(...followed), fc.integer({ min: 0, max: 20_000 })), value: fc.oneof(fc.double(), fc.integer({ min: -100_000, max: 100_000 }).map((n) => n / 100)) }), { minLength: 1, maxLength: 8 })
    .map((datums) => ({ topic: 'V', payload: concat(datums.map(({ key, value }) => { const b = Buffer.alloc(9); b[0] = 0x29; b.writeDoubleLE(value, 1); return bytesField(1, concat([varintField(1, key), bytesField(2, new Uint8Array(b))])); })) }));
  const frameArb = fc.oneof(
    { weight: 4, arbitrary: fc.oneof(anyPayloadArb, mutatedPayloadArb, doubleDatumsArb).map(({ topic, payload }) => ({ topic, payload })) },
    { weight: 1, arbitrary: fuzzFrameArb.map((frame) => frame.bytes) },
  );
  // Per frame: the level the values-only batch asks for (mostly values only), and the reference's (record JSON or message).
  const batchArb = fc.array(fc.record({ frame: frameArb, level: fc.constantFrom(2, 2, 2, 0, 1), reference: fc.constantFrom(0, 1) }), { minLength: 1, maxLength: 8 });

  function decodeWithLevels(frames: Uint8Array[], vin: string, levels: number[]): DecodedBatch {
    const task = packFrames(frames, vin, RECEIVED_AT);
    task.watched = Uint8Array.from(levels);
    return new DecodedBatch(decodeBatch(task), task.frames);
  }

  function expectSame(entries: Array<{ frame: { topic: string; payload: Uint8Array } | Uint8Array; level: number; reference: number }>, vin: string): void {
    const frames = entries.map(({ frame }, n) => (frame instanceof Uint8Array ? frame : writeStreamEnvelope({ txid: `t${n}`, topic: frame.topic, payload: frame.payload })));
    const reference = decodeWithLevels(frames, vin, entries.map((e) => e.reference));
    const valuesOnly = decodeWithLevels(frames, vin, entries.map((e) => e.level));
    for (let i = 0; i < frames.length; i++) {
      const where = `frame ${i} ${Buffer.from(frames[i]!).toString('hex')} vin ${JSON.stringify(vin)}`;
      const expected = rowReading(reference, i, vin);
      const got = rowReading(valuesOnly, i, vin);
      expect(got, where).to.deep.equal(expected);
      if (got.kind !== KIND_RECORD) continue;
      // A V record asked for values only that the transcoder wrote has no text but its values: no key, no VIN.
      if (valuesOnly.valuesOnly(i)) {
        expect(entries[i]!.level, where).to.equal(TEXT_LEVEL.VALUES_ONLY);
        expect(valuesOnly.topic(i)).to.equal('V');
        expect(valuesOnly.text(i), where).to.not.include('"key":');
        expect(valuesOnly.hasDashboardMessage(i)).to.equal(false);
      }
      // The hub's late dashboard message, from the on-demand JSON, is the one the decode stage writes.
      if (reference.hasDashboardMessage(i)) {
        expect(dashboardRecordMessage(vin, valuesOnly.topic(i), RECEIVED_AT, got.recordJson as string | null, valuesOnly.isResend(i)), where).to.equal(reference.text(i));
      }
    }
  }

  it(`gives the same state values, times, samples, replies and kinds, and the same record JSON on demand, on ${RUNS} batches`, () => {
    let valuesOnlyRows = 0;
    fc.assert(
      fc.property(batchArb, vinArb, (entries, vin) => {
        expectSame(entries, vin);
      }),
      { numRuns: RUNS, seed: SEED + 20 },
    );
    // The property covered rows actually written values only (not all sent to protobufjs or refused).
    for (const { topic, payload } of fc.sample(fc.oneof(anyPayloadArb, doubleDatumsArb), { numRuns: 200, seed: SEED + 21 })) {
      const batch = decodeWithLevels([writeStreamEnvelope({ txid: 't', topic, payload })], VIN, [TEXT_LEVEL.VALUES_ONLY]);
      if (batch.kind(0) === KIND_RECORD && batch.valuesOnly(0)) valuesOnlyRows++;
    }
    expect(valuesOnlyRows).to.be.greaterThan(50);
  });

  it(`writes a lone double's datum in the record's own loop as the Datum's function does, on ${RUNS} records of datums near that shape`, () => {
    // Values only, a datum that is a known key and a Value of the double member alone is written by the
    // record's loop without calling the Datum's function: every shape near it (key varints of 1-3 bytes,
    // known and unknown keys, the Value's length byte one off, another tag, 7-10 bytes, a field after)
    // must give what the whole record gives, verdicts included.
    const doubleArb = fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, 5e-324, 65.3), fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => n / 100));
    const keyArb = fc.oneof(fc.constantFrom(...followed), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 300, max: 20_000 }), fc.integer({ min: 16_000, max: 3_000_000 }));
    const datumArb = fc
      .record({
        key: keyArb,
        value: doubleArb,
        tag: fc.constantFrom(0x29, 0x29, 0x29, 0x21, 0x2d, 0x28, 0x31),
        length: fc.constantFrom(9, 9, 9, 9, 9, 9, 7, 8, 10),
        declared: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, -1, 1),
        after: fc.constantFrom(0, 0, 0, 1),
      })
      .map(({ key, value, tag, length, declared, after }) => {
        const b = Buffer.alloc(10);
        b[0] = tag;
        b.writeDoubleLE(value, 1);
        const member = new Uint8Array(b.subarray(0, length));
        const valueField = concat([new Uint8Array([0x12, length + declared]), member]);
        return bytesField(1, concat([varintField(1, key), valueField, after === 1 ? varintField(3, 7) : new Uint8Array(0)]));
      });
    const recordArb = fc.array(datumArb, { minLength: 1, maxLength: 6 }).map((datums) => ({ topic: 'V', payload: concat(datums) }));
    let valuesOnlyRows = 0;
    fc.assert(
      fc.property(fc.array(fc.record({ frame: recordArb, level: fc.constant(2), reference: fc.constantFrom(0, 1) }), { minLength: 1, maxLength: 4 }), (entries) => {
        expectSame(entries, VIN);
      }),
      { numRuns: RUNS, seed: SEED + 22 },
    );
    // The whole record (a dashboard message) takes the same shape in its own loop too: against protobufjs.
    fc.assert(fc.property(recordArb, ({ topic, payload }) => agree(topic, payload)), { numRuns: RUNS, seed: SEED + 24 });
    for (const { topic, payload } of fc.sample(recordArb, { numRuns: 200, seed: SEED + 23 })) {
      const batch = decodeWithLevels([writeStreamEnvelope({ txid: 't', topic, payload })], VIN, [TEXT_LEVEL.VALUES_ONLY]);
      if (batch.kind(0) === KIND_RECORD && batch.valuesOnly(0)) valuesOnlyRows++;
    }
    expect(valuesOnlyRows).to.be.greaterThan(20);
  });

  it('writes fewer bytes: a record of plain doubles is its values and created_at alone', () => {
    const payload = encodeVehicleData({ vin: 'SPOOFED', createdAt: new Date('2026-11-30T12:00:00.250Z'), data: [{ key: 'VehicleSpeed', value: { doubleValue: 65.5 } }, { key: 'Soc', value: { doubleValue: 80 } }, { key: 'Location', value: { stringValue: '(37.5 N, 122.25 W)' } }] });
    const frames = [writeStreamEnvelope({ txid: 't', topic: 'V', payload })];
    const batch = decodeWithLevels(frames, VIN, [TEXT_LEVEL.VALUES_ONLY]);
    expect(batch.valuesOnly(0)).to.equal(true);
    expect(batch.text(0)).to.equal('{"doubleValue":65.5}{"doubleValue":80}{"locationValue":{"latitude":37.5,"longitude":-122.25}}"2026-11-30T12:00:00.250Z"');
    const full = decodeWithLevels(frames, VIN, [TEXT_LEVEL.RECORD_JSON]);
    expect(batch.recordJson(0, VIN)).to.equal(full.recordJson(0));
    expect(batch.recordJson(0, VIN)).to.include(`"vin":"${VIN}"`);
    expect(() => batch.recordJson(0)).to.throw(/needs its VIN/);
  });
});
