// The actor's last-known state against a plain model, for any sequence of records: per field the value
// with the newest created_at (a tie: the later arrival), values we cannot decode replacing nothing,
// whatever mix of fields each record carries, with the state compacted at any point in between. The
// actor keeps one source slot per record folded in and counts the fields on each (VehicleActor.remember):
// this is what checks that bookkeeping.
import { expect } from 'chai';
import fc from 'fast-check';
import { VehicleActor } from '../../src/actors/vehicle-actor.js';
import type { VehicleConnection } from '../../src/actors/vehicle-connection.js';
import { decodeBatch } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData, type DatumInput } from '../../src/protocol/payload-encoder.js';
import { packFrames } from '../../tools/pack-frames.js';
import { RecordingBus } from '../helpers/recording-bus.js';

const VIN = '5YJ3E7EB0LF000001';
const FIELDS = ['Soc', 'Odometer', 'VehicleSpeed', 'Gear', 'Location', 'ChargeState', 'DetailedChargeState', 'MinutesToArrival'] as const;
const BASE_MS = Date.UTC(2026, 0, 2, 3, 4, 0);

/** A datum of one of the followed fields: a value of its type, a non-ASCII string, or no value at all. */
function datum(field: (typeof FIELDS)[number], n: number, kind: number): DatumInput {
  if (kind === 0) return { key: field };
  switch (field) {
    case 'Gear':
      return { key: field, value: { shiftStateValue: n % 2 === 0 ? 'ShiftStateD' : 'ShiftStateP' } };
    case 'Location':
      return { key: field, value: { locationValue: { latitude: 37 + n / 1000, longitude: -122 - n / 1000 } } };
    case 'ChargeState':
    case 'DetailedChargeState':
      return { key: field, value: { stringValue: kind === 1 ? `état ${n} ✓` : `state ${n}` } };
    default:
      return { key: field, value: { doubleValue: n + 0.5 } };
  }
}

interface Step {
  /** Seconds after BASE_MS of the record's created_at (records may come older than the last one). */
  at: number;
  datums: Array<{ field: number; n: number; kind: number }>;
  /** Frames of this step delivered as one batch (dashboard watching or not), then compacted or not. */
  watched: boolean;
  compact: boolean;
}

const step: fc.Arbitrary<Step> = fc.record({
  at: fc.integer({ min: 0, max: 20 }),
  datums: fc.array(fc.record({ field: fc.integer({ min: 0, max: FIELDS.length - 1 }), n: fc.integer({ min: 0, max: 999 }), kind: fc.integer({ min: 0, max: 4 }) }), { maxLength: 8 }),
  watched: fc.boolean(),
  compact: fc.boolean(),
});

function connection(): VehicleConnection {
  return { connectionId: 'c', vin: VIN, networkInterface: 'wifi', clientVersion: '', connectedAt: 0, isOpen: true, sendReply: () => {} };
}

describe('last-known state: the actor against a model', () => {
  const metrics = new ServerMetrics({ version: 'test' }).actors;

  it('keeps per field the newest value, in any order, any mix of fields, compacted or not', () => {
    fc.assert(
      fc.property(fc.array(fc.array(step, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }), (batches) => {
        const actor = new VehicleActor(VIN, new RecordingBus(), metrics, 0);
        const conn = connection();
        const model = new Map<string, { value: string; at: string; atMs: number }>();
        for (const steps of batches) {
          const payloads = steps.map((s) => encodeVehicleData({ vin: VIN, createdAt: new Date(BASE_MS + s.at * 1000), data: s.datums.map((d) => datum(FIELDS[d.field]!, d.n, d.kind)) }));
          const frames = payloads.map((payload, i) => writeStreamEnvelope({ txid: `t${i}`, topic: 'V', payload }));
          const seqs = frames.map(() => actor.nextFrame(BASE_MS));
          const task = packFrames(frames, VIN, BASE_MS, steps[0]!.watched);
          const batch = new DecodedBatch(decodeBatch(task), task.frames);
          // The model reads each record's values from its JSON, as a consumer would.
          steps.forEach((s, i) => {
            const record = JSON.parse(batch.recordJson(i)!) as { createdAt: string; data?: Array<{ key: string; value: unknown }> };
            const atMs = BASE_MS + s.at * 1000;
            for (const d of record.data ?? []) {
              const value = JSON.stringify(d.value);
              if (value === '{}' || value === 'null') continue;
              const known = model.get(d.key);
              if (known === undefined || atMs >= known.atMs) model.set(d.key, { value, at: record.createdAt, atMs });
            }
          });
          seqs.forEach((seq, i) => actor.frameDecoded(conn, seq, 0, BASE_MS, batch, i));
          if (steps.some((s) => s.compact)) actor.compactState();
          const state = actor.state;
          expect([...state.keys()].sort()).to.deep.equal([...model.keys()].sort());
          for (const [field, expected] of model) expect(state.get(field), field).to.deep.equal(expected);
        }
      }),
      { numRuns: 300 },
    );
  });
});
