// Last-known state and dashboard messages as bytes: the actor's state compacted out of record texts
// (no whole record kept alive per field), the dashboard message carried as the UTF-8 bytes the decode
// stage wrote, and the hub handing those bytes to the publisher.
import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { VehicleActor, type FrameTicket } from '../../src/actors/vehicle-actor.js';
import type { VehicleConnection } from '../../src/actors/vehicle-connection.js';
import { VehicleRegistry } from '../../src/actors/vehicle-registry.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { decodeBatch } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData, type DatumInput } from '../../src/protocol/payload-encoder.js';
import { packFrames } from '../helpers/decode-task.js';
import { RecordingBus } from '../helpers/recording-bus.js';
import pino from 'pino';

const VIN = '5YJ3E7EB0LF000001';


/** Keeps nothing: what stays alive is the actors' doing. */
class ForgetfulBus extends RecordingBus {
  override publish(_record: BusRecord, onSafe: (error: Error | null) => void): void {
    onSafe(null);
  }
}

const conn: VehicleConnection = { connectionId: 'c', vin: VIN, networkInterface: 'wifi', clientVersion: '', connectedAt: 0, isOpen: true, sendReply: () => {} };

/** Through the real decode path, every frame watched (so each gets its dashboard message). */
function decode(payloads: Uint8Array[], vin = VIN): DecodedBatch {
  const frames = payloads.map((payload, i) => writeStreamEnvelope({ txid: `t${i}`, topic: 'V', payload }));
  const task = packFrames(frames, vin, 1_780_000_000_000);
  task.watched = new Uint8Array(frames.length).fill(1);
  return new DecodedBatch(decodeBatch(task), task.frames);
}

function feed(actor: VehicleActor, payloads: Uint8Array[]): void {
  const tickets: FrameTicket[] = payloads.map(() => actor.frameArrived(conn, 1_780_000_000_000, performance.now()));
  const batch = decode(payloads, actor.vin);
  tickets.forEach((ticket, i) => actor.decoded(ticket, batch, i));
}

const v = (vin: string, createdAt: string, data: DatumInput[]) => encodeVehicleData({ vin, createdAt: new Date(createdAt), isResend: false, data });

describe('last-known state compacted out of the record texts', () => {
  const metrics = new ServerMetrics({ version: 'test' }).actors;

  it('keeps every value and time, and newest-wins still holds after compaction', () => {
    const actor = new VehicleActor(VIN, new RecordingBus(), metrics, 0);
    feed(actor, [
      v(VIN, '2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: 80 } }, { key: 'Odometer', value: { doubleValue: 100 } }]),
      v(VIN, '2026-01-02T03:04:12Z', [{ key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } }, { key: 'VehicleName', value: { stringValue: 'Élan ✓' } }]),
    ]);
    const before = [...actor.state].map(([field, known]) => [field, known.value, known.at, known.atMs]);
    actor.compactState();
    expect([...actor.state].map(([field, known]) => [field, known.value, known.at, known.atMs])).to.deep.equal(before);
    expect(actor.state.get('VehicleName')!.value).to.equal('{"stringValue":"Élan ✓"}');
    // An older sample still does not replace a compacted newer one; a newer one does.
    feed(actor, [v(VIN, '2026-01-02T03:04:05Z', [{ key: 'Soc', value: { doubleValue: 70 } }])]);
    expect(actor.state.get('Soc')).to.include({ value: '{"doubleValue":80}', at: '2026-01-02T03:04:10Z' });
    feed(actor, [v(VIN, '2026-01-02T03:04:20Z', [{ key: 'Soc', value: { doubleValue: 81 } }])]);
    actor.compactState();
    expect(actor.state.get('Soc')).to.include({ value: '{"doubleValue":81}', at: '2026-01-02T03:04:20Z' });
    expect(actor.state.get('Odometer')).to.include({ value: '{"doubleValue":100}', at: '2026-01-02T03:04:10Z' });
  });

  it('frees the record texts: state of many cars costs its values, not their records', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const cars = 300;
    // A record with one 40 KB string datum and two small ones: only the small ones are state values
    // worth keeping, but a slice of the record keeps all of it alive.
    const big = 'x'.repeat(40_000);
    const actors: VehicleActor[] = [];
    for (let i = 0; i < cars; i++) {
      const vin = `5YJ3E7EB0LF${String(100000 + i)}`;
      const actor = new VehicleActor(vin, new ForgetfulBus(), metrics, 0);
      feed(actor, [v(vin, '2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: i } }, { key: 'VehicleName', value: { stringValue: big } }, { key: 'Odometer', value: { doubleValue: 1 } }])]);
      // Replace the big value with a small one: only a slice of the first record still points at it.
      feed(actor, [v(vin, '2026-01-02T03:04:11Z', [{ key: 'VehicleName', value: { stringValue: 'car' } }])]);
      actors.push(actor);
    }
    gc();
    const pinned = process.memoryUsage().heapUsed;
    for (const actor of actors) actor.compactState();
    gc();
    const compacted = process.memoryUsage().heapUsed;
    // Before: each car keeps its first record (its dashboard message, ~40 KB) through Soc and Odometer.
    expect(pinned - compacted, `heap ${pinned} -> ${compacted}`).to.be.greaterThan(cars * 30_000);
    expect(actors[7]!.state.get('Soc')!.value).to.equal('{"doubleValue":7}');
    expect(actors[7]!.state.get('VehicleName')!.value).to.equal('{"stringValue":"car"}');
  });

  it('the registry sweep compacts cars quiet since the previous sweep, at most 500 a sweep', () => {
    let now = 1_000_000;
    const registry = new VehicleRegistry({ bus: new ForgetfulBus(), metrics, logger: pino({ level: 'silent' }), staleAfterMs: 3_600_000, now: () => now });
    const worked: string[] = [];
    const actors: VehicleActor[] = [];
    for (let i = 0; i < 700; i++) {
      const actor = registry.actorFor(`5YJ3E7EB0LF${String(200000 + i)}`);
      feed(actor, [v(actor.vin, '2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: i } }])]);
      actor.lastSeenAt = now;
      const original = actor.compactState.bind(actor);
      actor.compactState = () => {
        const did = original();
        if (did) worked.push(actor.vin);
        return did;
      };
      actors.push(actor);
    }
    // First sweep: nothing is quiet since an earlier one; only the rotation's eighth is compacted.
    registry.sweepWatchdog();
    expect(worked.length).to.be.within(1, 700 / 8 + 1);
    const rotated = worked.length;
    // Next sweep: every car is quiet since the first, but one sweep compacts at most 500.
    now += 5_000;
    worked.length = 0;
    registry.sweepWatchdog();
    expect(worked).to.have.length(500);
    now += 5_000;
    worked.length = 0;
    registry.sweepWatchdog();
    expect(worked).to.have.length(700 - rotated - 500);
    // Compacted state is compacted once: nothing to do until a record arrives again.
    now += 5_000;
    worked.length = 0;
    registry.sweepWatchdog();
    expect(worked).to.have.length(0);
    feed(actors[3]!, [v(actors[3]!.vin, '2026-01-02T03:04:20Z', [{ key: 'Soc', value: { doubleValue: 9 } }])]);
    actors[3]!.lastSeenAt = now; // heard from at the last sweep, silent since
    now += 5_000;
    registry.sweepWatchdog();
    expect(worked).to.deep.equal([actors[3]!.vin]);
    expect(actors[3]!.state.get('Soc')!.value).to.equal('{"doubleValue":9}');
  });
});

describe('dashboard messages as bytes', () => {
  const metrics = new ServerMetrics({ version: 'test' }).actors;

  it('each watched record carries its dashboard message as the UTF-8 bytes the decode stage wrote', () => {
    const bus = new RecordingBus();
    const actor = new VehicleActor(VIN, bus, metrics, 0);
    feed(actor, [
      v(VIN, '2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: 80 } }]),
      v(VIN, '2026-01-02T03:04:11Z', [{ key: 'VehicleName', value: { stringValue: 'Élan ✓' } }]),
    ]);
    expect(bus.records).to.have.length(2);
    for (const record of bus.records) {
      expect(record.dashboardBytes, record.txid).to.be.instanceOf(Uint8Array);
      expect(Buffer.from(record.dashboardBytes!).toString('utf8')).to.equal(record.dashboardMessage);
    }
  });
});
