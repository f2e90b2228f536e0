import { expect } from 'chai';
import fc from 'fast-check';
import { decodeBatch, receiveOutcomes } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { CHARGING_CODES, GEAR_CODES, SignalSample, readSample, readSampleFromBytes, readSampleFromDatums, rfc3339Ms, sampleTimeOf } from '../../src/history/signal-sample.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { fieldNames } from '../../src/protocol/proto-schema.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { packFrames } from '../helpers/decode-task.js';

const VIN = '5YJ3E7EB0LF000001';
const NOW = Date.parse('2026-11-30T08:00:00Z');

const NUMERIC: Record<string, keyof SignalSample> = {
  Soc: 'soc',
  EstBatteryRange: 'range',
  VehicleSpeed: 'speed',
  PackVoltage: 'packVoltage',
  PackCurrent: 'packCurrent',
  ACChargingPower: 'acChargingPower',
  DCChargingPower: 'dcChargingPower',
  InsideTemp: 'insideTemp',
  OutsideTemp: 'outsideTemp',
  Odometer: 'odometer',
  FastChargerPresent: 'fastCharger',
};

/**
 * What a record says about the followed signals, worked out from JSON.parse of its canonical JSON: the
 * oracle the in-place readers are held to. A datum whose value says nothing leaves what an earlier one
 * said; BatteryLevel stands in for Soc only while none is known; created_at counts unless it is more
 * than five minutes ahead of the server's clock.
 */
function oracle(recordJson: string, receivedAt: number): Record<string, number> {
  const record = JSON.parse(recordJson) as { data?: Array<{ key: string; value: Record<string, unknown> }>; createdAt?: string };
  const s: Record<string, number> = {};
  for (const name of ['soc', 'range', 'speed', 'packVoltage', 'packCurrent', 'acChargingPower', 'dcChargingPower', 'insideTemp', 'outsideTemp', 'latitude', 'longitude', 'gear', 'charging', 'odometer', 'fastCharger']) s[name] = NaN;
  const numeric = (value: Record<string, unknown>): number => {
    const [member, v] = Object.entries(value)[0] ?? [];
    let n = NaN;
    if ((member === 'doubleValue' || member === 'floatValue' || member === 'intValue') && typeof v === 'number') n = v;
    else if (member === 'longValue' && typeof v === 'string') n = Number(v);
    else if (member === 'booleanValue' && typeof v === 'boolean') n = v ? 1 : 0;
    return Number.isFinite(n) ? n : NaN;
  };
  const named = (value: Record<string, unknown>, codes: Record<string, number>): number => {
    const v = Object.values(value)[0];
    return typeof v === 'string' && Object.hasOwn(codes, v) ? codes[v]! : NaN;
  };
  for (const { key, value } of record.data ?? []) {
    const field = NUMERIC[key];
    if (field !== undefined) {
      const n = numeric(value);
      if (!Number.isNaN(n)) s[field] = n;
    } else if (key === 'BatteryLevel') {
      if (Number.isNaN(s.soc!)) s.soc = numeric(value);
    } else if (key === 'Gear') {
      const code = named(value, GEAR_CODES);
      if (!Number.isNaN(code)) s.gear = code;
    } else if (key === 'DetailedChargeState') {
      const code = named(value, CHARGING_CODES);
      if (!Number.isNaN(code)) s.charging = code;
    } else if (key === 'Location') {
      const location = value.locationValue as { latitude?: unknown; longitude?: unknown } | undefined;
      const { latitude, longitude } = location ?? {};
      if (typeof latitude === 'number' && typeof longitude === 'number' && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
        s.latitude = latitude;
        s.longitude = longitude;
      }
    }
  }
  const created = record.createdAt === undefined ? NaN : Date.parse(record.createdAt);
  s.at = Number.isFinite(created) && created <= receivedAt + 300_000 ? created : receivedAt;
  return s;
}

const FOLLOWED = [...Object.keys(NUMERIC), 'BatteryLevel', 'Gear', 'DetailedChargeState', 'Location'];
const keyArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FOLLOWED) }, { weight: 1, arbitrary: fc.constantFrom('GpsHeading', 'DoorState', 'Locked', 'VehicleName') });
const enumNameArb = fc.constantFrom(...Object.keys(GEAR_CODES), ...Object.keys(CHARGING_CODES), 'ShiftStateSNA', 'ShiftStateInvalid', 'DetailedChargeStateUnknown', 'ShiftState', 'toString', '');
const valueArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.double({ noNaN: false }).map((doubleValue) => ({ doubleValue })),
  fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.constantFrom(0.1, 12.5, 73.4, 6271.96, 1e21, 1.5e-7)).map((doubleValue) => ({ doubleValue })),
  fc.float({ noNaN: false }).map((floatValue) => ({ floatValue })),
  fc.integer().map((intValue) => ({ intValue })),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((longValue) => ({ longValue: longValue.toString() })),
  fc.boolean().map((booleanValue) => ({ booleanValue })),
  fc.oneof(enumNameArb, fc.string({ maxLength: 20 }), fc.constantFrom('12.5', 'é ü 中', '{"doubleValue":1}')).map((stringValue) => ({ stringValue })),
  enumNameArb.filter((name) => name.startsWith('ShiftState') && Object.hasOwn(GEAR_CODES, name) || name === 'ShiftStateSNA').map((shiftStateValue) => ({ shiftStateValue })),
  fc.constantFrom(...Object.keys(CHARGING_CODES)).map((detailedChargeStateValue) => ({ detailedChargeStateValue })),
  fc.record({ latitude: fc.double({ noNaN: false }), longitude: fc.double({ noNaN: false }) }).map((locationValue) => ({ locationValue })),
  fc.record({ latitude: fc.double({ min: -90, max: 90, noNaN: true }), longitude: fc.double({ min: -180, max: 180, noNaN: true }) }).map((locationValue) => ({ locationValue })),
  fc.constant({ invalid: true }),
);
const createdAtArb = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: 0, max: 2 ** 42 }).map((ms) => new Date(ms)),
  fc.integer({ min: NOW - 3_600_000, max: NOW + 3_600_000 }).map((ms) => new Date(ms)),
);

function sampleOf(sample: SignalSample): Record<string, number> {
  return { ...sample };
}

describe('signal sample: followed signals read in place', () => {
  it('reads what JSON.parse of the record says, from the JSON and from the located datums alike (dashboard watching or not)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: keyArb, value: valueArb }), { maxLength: 24 }),
        createdAtArb,
        fc.boolean(),
        (data, createdAt, watched) => {
          const payload = encodeVehicleData({ vin: VIN, createdAt, data: data as never });
          const json = decodeRecord('V', payload, VIN).json!;
          const expected = oracle(json, NOW);
          expect(sampleOf(readSample(json, NOW, new SignalSample()))).to.deep.equal(expected);
          const task = { ...packFrames([writeStreamEnvelope({ txid: 't', topic: 'V', payload })], VIN, NOW), watched: Uint8Array.of(watched ? 1 : 0) };
          const result = decodeBatch(task);
          const [outcome] = receiveOutcomes(result, task.frames);
          expect(outcome!.recordJson).to.equal(json);
          const text = outcome!.dashboardMessage ?? outcome!.recordJson!;
          const fromDatums = readSampleFromDatums(outcome!.state ?? new Int32Array(0), text, outcome!.createdAt, NOW, new SignalSample());
          expect(sampleOf(fromDatums)).to.deep.equal(expected);
          // With the decode stage's created_at ms, as the history reads a record of this instance.
          const createdAtMs = new DecodedBatch(result, task.frames).createdAtMs(0);
          expect(sampleOf(readSampleFromDatums(outcome!.state ?? new Int32Array(0), text, outcome!.createdAt, NOW, new SignalSample(), createdAtMs))).to.deep.equal(expected);
          // The signals the decode stage read from the bytes (the samples section), as the history takes them.
          const batch = new DecodedBatch(result, task.frames);
          const sampleAt = batch.sampleAt(0);
          expect(sampleAt >= 0, 'a record with datums has its sample').to.equal(outcome!.state !== null);
          if (sampleAt >= 0) {
            const fromBytes = new SignalSample();
            fromBytes.reset(NOW);
            fromBytes.readRow(batch.samples, sampleAt);
            sampleTimeOf(fromBytes, outcome!.createdAt, NOW, createdAtMs);
            expect(sampleOf(fromBytes)).to.deep.equal(expected);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reads the same signals from UTF-8 bytes as from the text, canonical or not (the readers the decode stage uses)', () => {
    const numbers = fieldNames();
    const fieldArb = fc.constantFrom(...FOLLOWED, 'GpsHeading', 'Locked').map((name) => numbers.indexOf(name));
    const numberText = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }).map(String), fc.constantFrom('-0', '1e5', '1E+5', '2.5e-3', '00', '1.', '-', '.5', '12345678901234567890', '1e400', 'NaN', '"Infinity"'));
    const valueText = fc.oneof(
      fc.tuple(fc.constantFrom('doubleValue', 'floatValue', 'intValue', 'longValue', 'booleanValue', 'stringValue', 'invalid'), fc.oneof(numberText, numberText.map((n) => `"${n}"`), fc.constantFrom('true', 'false', '"x"', ' 5', '5 '))).map(([member, v]) => `{"${member}":${v}}`),
      fc.tuple(fc.constantFrom('shiftStateValue', 'detailedChargeStateValue', 'stringValue', 'sentryModeStateValue'), enumNameArb, fc.constantFrom('', 'é', 'x')).map(([member, name, tail]) => `{"${member}":"${name}${tail}"}`),
      fc.tuple(numberText, numberText, fc.constantFrom('', ' ', ',"x":1')).map(([lat, lon, extra]) => `{"locationValue":{"latitude":${lat},"longitude":${lon}${extra}}}`),
      fc.constantFrom('{}', 'null', '{"locationValue":{"latitude":1}}', '{"doubleValue":', '{"', '', '{"shiftStateValue":"ShiftState'),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fieldArb, valueText), { maxLength: 12 }), fc.constantFrom('', 'ü', '}]}'), (datums, tail) => {
        let text = '{"data":[';
        const triples: number[] = [];
        for (const [field, value] of datums) {
          text += `{"key":${field},"value":`;
          triples.push(field, text.length, text.length + value.length);
          text += `${value}},`;
        }
        text += tail;
        const fromText = readSampleFromDatums(Int32Array.from(triples), text, null, NOW, new SignalSample());
        // The same triples as UTF-8 byte positions.
        const byteTriples = triples.map((n, k) => (k % 3 === 0 ? n : Buffer.byteLength(text.slice(0, n))));
        const bytes = new Uint8Array([...Buffer.from(text), 0x7d, 0x22, 0x3a]);
        const fromBytes = readSampleFromBytes(bytes, Int32Array.from(byteTriples), 0, byteTriples.length, Buffer.byteLength(text), new SignalSample());
        fromBytes.at = NOW;
        expect(sampleOf(fromBytes), text).to.deep.equal(sampleOf(fromText));
      }),
      { numRuns: 3000 },
    );
  });

  it('reads RFC 3339 times as Date.parse does, and leaves what it does not recognise to Date.parse', () => {
    const fraction = fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{3}$/), fc.stringMatching(/^\.\d{6}$/), fc.stringMatching(/^\.\d{9}$/), fc.stringMatching(/^[.,][\d:a]{1,9}$/));
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 44), max: 2 ** 45 }), fraction, fc.constantFrom('Z', '+01:00', 'z', ''), (ms, fractionText, zone) => {
        const text = `${new Date(ms).toISOString().slice(0, 19)}${fractionText}${zone}`;
        expect(Object.is(rfc3339Ms(text), Date.parse(text)), text).to.equal(true);
      }),
      { numRuns: 5000 },
    );
    for (const text of ['2026-02-29T00:00:00Z', '2024-02-29T23:59:59.999Z', '2026-04-31T00:00:00Z', '2026-01-01T24:00:00Z', '2026-13-01T00:00:00Z', '1969-12-31T23:59:59.999Z', '0099-01-01T00:00:00Z', '2026-1a-01T00:00:00Z']) {
      expect(Object.is(rfc3339Ms(text), Date.parse(text)), text).to.equal(true);
    }
  });
});
