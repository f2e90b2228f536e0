// The compact transcoder (lone frames on the main thread) against the generated one: for any batch of
// payloads, decodeBatch with the compact transcoder gives a result byte for byte the same as without
// it (table, state, replies, dashboard messages, record JSON, normalised protobuf, samples) and the
// same verdicts on malformed payloads; and the records cars send never leave its path.
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeBatch, transcoderStats } from '../../src/decode/decode-batch.js';
import type { DecodeResult } from '../../src/decode/decode-task.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { fieldNames } from '../../src/protocol/proto-schema.js';
import { CarTalk } from '../../bench/fleet/frames.js';
import {
  deepNestingPayloadArb,
  garbagePayloadArb,
  mutate,
  mutationArb,
  unknownFieldsPayloadArb,
  validPayloadArb,
} from '../robustness/fuzz/frame-arbitraries.js';
import { packFrames } from '../../tools/pack-frames.js';
import { bytesField, concat, varintField } from '../robustness/fuzz/protobuf-wire.js';

const VIN = '5YJ3E7EB0LF000001';
const RUNS = Number(process.env.TRANSCODER_RUNS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

/** The result's every section and its bytes, copied (the next decodeBatch may reuse its buffers). */
function snapshot(result: DecodeResult): Record<string, unknown> {
  const end = result.end ?? result.buffer.byteLength;
  return { ...result, buffer: Buffer.from(new Uint8Array(result.buffer, 0, end)).toString('hex') };
}

interface Frame { topic: string; payload: Uint8Array }

/** Decodes the frames both ways, in every option the callers use, and throws where they differ. */
function same(frames: readonly Frame[], options: { normalise: boolean; samples: boolean; watched: boolean; receivedAt: number }): void {
  const envelopes = frames.map((f, i) => writeStreamEnvelope({ txid: `t${i}`, topic: f.topic, payload: f.payload }));
  const decode = (compact: boolean): Record<string, unknown> => {
    const task = { ...packFrames(envelopes, VIN, options.receivedAt, options.watched), normalise: options.normalise, samples: options.samples };
    return snapshot(decodeBatch(task, false, compact));
  };
  const generated = decode(false);
  const compact = decode(true);
  expect(compact, frames.map((f) => `${f.topic} ${Buffer.from(f.payload).toString('hex')}`).join(' | ')).to.deep.equal(generated);
}

// Every Value member kind, odd numbers included (transcoder.test.ts's rich values).
const richValueArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.double().map((doubleValue) => ({ doubleValue })),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => ({ doubleValue: n / 1000 })),
  fc.float().map((floatValue) => ({ floatValue })),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((longValue) => ({ longValue })),
  fc.integer().map((intValue) => ({ intValue })),
  fc.string({ maxLength: 40, unit: 'binary' }).map((stringValue) => ({ stringValue })),
  fc.constantFrom('1.1920928955078125e-05', '-2.5E+3', '1e5', '3.14', '(37.412374 N, 122.145867 W)', '( 1.5 S ,2 E )', '\ufeffx', 'a"b\\c\n\u0001\u007f').map((stringValue) => ({ stringValue })),
  fc.record({ latitude: fc.double(), longitude: fc.double() }).map((locationValue) => ({ locationValue })),
  fc.record({ DriverFront: fc.boolean(), TrunkRear: fc.boolean() }).map((doorValue) => ({ doorValue })),
  fc.record({ hour: fc.integer({ min: -5, max: 30 }), minute: fc.nat(59), second: fc.nat(59) }).map((timeValue) => ({ timeValue })),
  fc.record({ front_left: fc.boolean(), semi_rear_axle_right_2: fc.boolean() }).map((tireLocationValue) => ({ tireLocationValue })),
  fc.oneof(fc.constantFrom('ShiftStateD', 'ShiftStateP'), fc.integer({ min: -3, max: 100 })).map((shiftStateValue) => ({ shiftStateValue })),
  fc.oneof(fc.constantFrom('DetailedChargeStateCharging'), fc.integer({ min: 0, max: 50 })).map((detailedChargeStateValue) => ({ detailedChargeStateValue })),
  fc.boolean().map((booleanValue) => ({ booleanValue })),
  fc.constant({ invalid: true }),
);

const richVArb = fc
  .record({
    data: fc.array(
      fc.record({
        key: fc.oneof(fc.constantFrom(...fieldNames().slice(1)), fc.constant('Location'), fc.integer({ min: -2, max: 5000 })),
        value: fc.option(richValueArb, { nil: undefined }),
      }),
      { maxLength: 25 },
    ),
    createdAt: fc.option(fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), { nil: undefined }),
    isResend: fc.boolean(),
    vin: fc.string({ maxLength: 20 }),
  })
  .map((p) => ({ topic: 'V', payload: encodeVehicleData(p) }));

// Hand-built wire around the compact reads: Value members of another wire type, unknown members, two
// members, message members with odd, repeated or unknown fields, datums out of order.
const wireValueArb = fc.oneof(
  fc.record({ field: fc.integer({ min: 0, max: 70 }), v: fc.integer({ min: -3, max: 400 }) }).map(({ field, v }) => varintField(field, v)),
  fc.record({ field: fc.integer({ min: 1, max: 70 }), bytes: fc.uint8Array({ maxLength: 24 }) }).map(({ field, bytes }) => bytesField(field, bytes)),
  fc.record({ field: fc.constantFrom(7, 21, 31, 39), parts: fc.array(fc.oneof(fc.record({ f: fc.integer({ min: 0, max: 12 }), v: fc.integer({ min: -2, max: 70 }) }).map(({ f, v }) => varintField(f, v)), fc.double().map((d) => { const b = Buffer.alloc(9); b[0] = 0x09; b.writeDoubleLE(d, 1); return new Uint8Array(b); }), fc.double().map((d) => { const b = Buffer.alloc(9); b[0] = 0x11; b.writeDoubleLE(d, 1); return new Uint8Array(b); })), { maxLength: 5 }) }).map(({ field, parts }) => bytesField(field, concat(parts))),
  fc.float().map((v) => { const b = Buffer.alloc(5); b[0] = 0x25; b.writeFloatLE(v, 1); return new Uint8Array(b); }),
  fc.double().map((v) => { const b = Buffer.alloc(9); b[0] = 0x29; b.writeDoubleLE(v, 1); return new Uint8Array(b); }),
);
const wireVArb = fc
  .array(
    fc.oneof(
      { arbitrary: fc.record({ key: fc.integer({ min: 0, max: 20_000 }), value: fc.array(wireValueArb, { maxLength: 2 }) }).map(({ key, value }) => bytesField(1, concat([varintField(1, key), bytesField(2, concat(value))]))), weight: 6 },
      { arbitrary: fc.integer({ min: 0, max: 3 }).map((v) => varintField(4, v)), weight: 1 },
      { arbitrary: fc.integer({ min: 1_600_000_000, max: 1_900_000_000 }).map((seconds) => bytesField(2, varintField(1, seconds))), weight: 1 },
      { arbitrary: fc.string({ maxLength: 20 }).map((vin) => bytesField(3, Buffer.from(vin))), weight: 1 },
      { arbitrary: fc.integer({ min: 5, max: 40 }).map((field) => varintField(field, 1)), weight: 1 },
    ),
    { maxLength: 12 },
  )
  .map((parts) => ({ topic: 'V', payload: concat(parts) }));

const anyPayloadArb: fc.Arbitrary<Frame> = fc.oneof(
  { arbitrary: validPayloadArb, weight: 2 },
  { arbitrary: richVArb, weight: 4 },
  { arbitrary: wireVArb, weight: 3 },
  { arbitrary: unknownFieldsPayloadArb, weight: 2 },
  { arbitrary: garbagePayloadArb, weight: 1 },
  { arbitrary: deepNestingPayloadArb, weight: 1 },
);
const mutatedPayloadArb = fc
  .record({ p: anyPayloadArb, mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) })
  .map(({ p, mutations }) => ({ topic: p.topic, payload: mutate(p.payload, mutations) }));
const optionsArb = fc.record({
  normalise: fc.boolean(),
  samples: fc.boolean(),
  watched: fc.boolean(),
  receivedAt: fc.oneof(fc.constant(1_780_000_000_000), fc.integer({ min: 0, max: 4_000_000_000_000 })),
});

describe('compact transcoder: the generated transcoder\'s result, byte for byte', function () {
  this.timeout(120_000);

  it(`gives the same result on ${RUNS} batches of generated payloads (valid, rich, hand-built wire, unknown fields, garbage, deep nesting)`, () => {
    fc.assert(fc.property(fc.array(anyPayloadArb, { minLength: 1, maxLength: 3 }), optionsArb, (frames, options) => same(frames, options)), { numRuns: RUNS, seed: SEED + 21 });
  });

  it(`gives the same result and verdicts on ${RUNS} batches of mutated payloads (truncated, flipped, spliced)`, () => {
    fc.assert(fc.property(fc.array(mutatedPayloadArb, { minLength: 1, maxLength: 3 }), optionsArb, (frames, options) => same(frames, options)), { numRuns: RUNS, seed: SEED + 22 });
  });

  it('writes the records cars send itself: none leaves it for the generated transcoder', () => {
    const talk = new CarTalk(VIN, 1);
    const frames: Frame[] = [];
    for (let tick = 0; tick < 400; tick++) {
      for (const record of talk.tick(new Date(1_780_000_000_000 + tick * 1000))) if (record.topic === 'V') frames.push({ topic: 'V', payload: record.payload });
    }
    expect(frames.length).to.be.greaterThan(300);
    const before = { ...transcoderStats };
    for (const frame of frames) same([frame], { normalise: true, samples: true, watched: true, receivedAt: 1_780_000_000_000 });
    expect(transcoderStats.compact - before.compact).to.equal(frames.length);
    expect(transcoderStats.compactBails - before.compactBails).to.equal(0);
  });

  it('leaves for the generated transcoder what it does not read (two Value members), with the same result', () => {
    const before = transcoderStats.compactBails;
    same([{ topic: 'V', payload: bytesField(1, concat([varintField(1, 4), bytesField(2, concat([varintField(6, 1), varintField(2, 5)]))])) }], { normalise: true, samples: true, watched: true, receivedAt: 1_780_000_000_000 });
    expect(transcoderStats.compactBails - before).to.equal(1);
  });
});
