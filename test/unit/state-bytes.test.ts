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
import { InProcessBus } from '../../src/bus/in-process-bus.js';
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

  it('keeps the values right through overwrites, longer and shorter values, non-ASCII text and the buffer filling up', () => {
    const actor = new VehicleActor(VIN, new RecordingBus(), metrics, 0);
    const names = ['car', 'Élan ✓', 'x'.repeat(300), '🚗 😀', 'ab', 'ab', 'Ωmega'];
    for (let n = 0; n < 60; n++) {
      const name = names[n % names.length]!;
      const at = `2026-01-02T03:${String(10 + Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}Z`;
      // Soc in every record (same length, then longer), VehicleName in most, Odometer in one record of three.
      const data: DatumInput[] = [{ key: 'Soc', value: { doubleValue: n < 30 ? n % 10 : 1000 + n } }];
      if (n % 5 !== 4) data.push({ key: 'VehicleName', value: { stringValue: name } });
      if (n % 3 === 0) data.push({ key: 'Odometer', value: { doubleValue: n * 1.5 } });
      feed(actor, [v(VIN, at, data)]);
      if (n === 40) actor.compactState();
      const state = actor.state;
      expect(state.get('Soc')).to.include({ value: `{"doubleValue":${n < 30 ? n % 10 : 1000 + n}}`, at });
      const lastNamed = n % 5 !== 4 ? n : n - 1;
      expect(state.get('VehicleName')!.value).to.equal(JSON.stringify({ stringValue: names[lastNamed % names.length] }));
      const lastOdometer = n - (n % 3);
      expect(state.get('Odometer')!.value).to.equal(`{"doubleValue":${lastOdometer * 1.5}}`);
      expect(state.get('Odometer')!.at).to.equal(`2026-01-02T03:10:${String(lastOdometer).padStart(2, '0')}Z`);
    }
  });

  it('reuses the time slots of times no field holds any more: a car holds at most one slot more than its live times', () => {
    const actor = new VehicleActor(VIN, new RecordingBus(), metrics, 0);
    // The actor's time slots, [start, length, fields] each (private: read here to see slots are freed).
    const slots = () => (actor as unknown as { times: number[] }).times.length / 3;
    let most = 0;
    for (let n = 0; n < 90; n++) {
      const at = `2026-01-02T03:${String(10 + Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}Z`;
      // Fields leave their slots in different mixes: Soc every record, the name in most, Odometer in one of three.
      const data: DatumInput[] = [{ key: 'Soc', value: { doubleValue: n } }];
      if (n % 5 !== 4) data.push({ key: 'VehicleName', value: { stringValue: `car ${n}` } });
      if (n % 3 === 0) data.push({ key: 'Odometer', value: { doubleValue: n * 1.5 } });
      feed(actor, [v(VIN, at, data)]);
      const live = new Set([...actor.state.values()].map((known) => known.at)).size;
      most = Math.max(most, live);
      expect(slots(), `record ${n}`).to.be.at.most(most + 1);
    }
  });

  it('a record nobody reads makes no text: state and created_at come from the decode stage bytes', () => {
    // The in-process bus with no listener: nothing reads the record, nothing may keep it.
    const actor = new VehicleActor(VIN, new InProcessBus(), metrics, 0);
    for (const [n, at] of ['2026-01-02T03:04:10.123Z', '2026-01-02T03:04:11.500Z', '2026-01-02T03:04:09Z'].entries()) {
      const batch = decode([v(VIN, at, [{ key: 'Soc', value: { doubleValue: 80 + n } }, { key: 'VehicleName', value: { stringValue: `Élan ${n}` } }])]);
      let texts = 0;
      const text = batch.text.bind(batch);
      batch.text = (i: number) => {
        texts++;
        return text(i);
      };
      actor.decoded(actor.frameArrived(conn, 1_780_000_000_000, performance.now()), batch, 0);
      expect(texts, `record ${n}`).to.equal(0);
    }
    // The third record is older than the second: it changes nothing.
    expect(actor.state.get('Soc')).to.include({ value: '{"doubleValue":81}', at: '2026-01-02T03:04:11.500Z' });
    expect(actor.state.get('VehicleName')).to.include({ value: '{"stringValue":"Élan 1"}', at: '2026-01-02T03:04:11.500Z' });
  });

  it('a non-ASCII record whose text was made before its turn (character positions) is kept the same', () => {
    const actor = new VehicleActor(VIN, new RecordingBus(), metrics, 0);
    const batch = decode([v(VIN, '2026-01-02T03:04:10Z', [{ key: 'VehicleName', value: { stringValue: '🚗 Élan' } }, { key: 'Soc', value: { doubleValue: 7.5 } }, { key: 'Gear', value: { invalid: true } }])]);
    batch.text(0);
    expect(batch.stateBytes(0)).to.equal(null);
    actor.decoded(actor.frameArrived(conn, 1_780_000_000_000, performance.now()), batch, 0);
    expect(actor.state.get('VehicleName')).to.include({ value: '{"stringValue":"🚗 Élan"}', at: '2026-01-02T03:04:10Z' });
    expect(actor.state.get('Soc')).to.include({ value: '{"doubleValue":7.5}', at: '2026-01-02T03:04:10Z' });
  });

  it('frees the record texts: state of many cars costs its values, not their records', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // The state's bytes are off the V8 heap (VehicleActor.bytes), as are the decode results, whose
    // backing stores the GC frees a little after it runs: settled by a few GCs and turns.
    const settle = async (): Promise<{ heap: number; all: number }> => {
      for (let n = 0; n < 4; n++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const usage = process.memoryUsage();
      return { heap: usage.heapUsed, all: usage.heapUsed + usage.arrayBuffers };
    };
    const cars = 300;
    // A record with one 40 KB string datum and two small ones: only the small ones are state values
    // worth keeping, but a slice of the record would keep all of it alive.
    const big = 'x'.repeat(40_000);
    const actors: VehicleActor[] = [];
    const before = await settle();
    for (let i = 0; i < cars; i++) {
      const vin = `5YJ3E7EB0LF${String(100000 + i)}`;
      const actor = new VehicleActor(vin, new ForgetfulBus(), metrics, 0);
      feed(actor, [v(vin, '2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: i } }, { key: 'VehicleName', value: { stringValue: big } }, { key: 'Odometer', value: { doubleValue: 1 } }])]);
      // Replace the big value with a small one: Soc and Odometer still come from the first record.
      feed(actor, [v(vin, '2026-01-02T03:04:11Z', [{ key: 'VehicleName', value: { stringValue: 'car' } }])]);
      actors.push(actor);
    }
    const fed = await settle();
    // No record text on the heap (each would be ~40 KB a car), even before the sweep compacts.
    expect(fed.heap - before.heap, `heap ${before.heap} -> ${fed.heap}`).to.be.lessThan(cars * 10_000);
    for (const actor of actors) actor.compactState();
    const compacted = await settle();
    // Compacted, the 40 KB value no longer in use is gone from the state's bytes too.
    expect(compacted.all - before.all, `heap and array buffers ${before.all} -> ${compacted.all}`).to.be.lessThan(cars * 10_000);
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
    // First sweep: nothing is quiet since an earlier one, and a busy car's state is not trimmed.
    registry.sweepWatchdog();
    expect(worked).to.have.length(0);
    // Next sweep: every car is quiet since the first, but one sweep compacts at most 500.
    now += 5_000;
    worked.length = 0;
    registry.sweepWatchdog();
    expect(worked).to.have.length(500);
    now += 5_000;
    worked.length = 0;
    registry.sweepWatchdog();
    expect(worked).to.have.length(700 - 500);
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
