// Record integrity on the main thread: last-known state keeps the newest sample per field, values we
// cannot decode replace nothing, the connection's Version travels with its records, X-TXID is kept
// only when well-formed.
import { expect } from 'chai';
import { VehicleActor, type FrameTicket } from '../../src/actors/vehicle-actor.js';
import type { VehicleConnection } from '../../src/actors/vehicle-connection.js';
import { decodeBatch } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleData, type DatumInput } from '../../src/protocol/payload-encoder.js';
import { clientVersionFrom, connectionIdFrom } from '../../src/vehicle/connection-headers.js';
import { packFrames } from '../helpers/decode-task.js';
import { RecordingBus } from '../helpers/recording-bus.js';
import { bytesField, concat, varintField } from '../robustness/fuzz/protobuf-wire.js';

const VIN = '5YJ3E7EB0LF000001';


function connection(clientVersion = '2024.44.25'): VehicleConnection {
  return { connectionId: 'c', vin: VIN, networkInterface: 'wifi', clientVersion, connectedAt: 0, isOpen: true, sendReply: () => {} };
}

/** Runs payloads through the real decode path and hands the outcomes to the actor in arrival order. */
function feed(actor: VehicleActor, conn: VehicleConnection, payloads: Uint8Array[]): void {
  const frames = payloads.map((payload, i) => writeStreamEnvelope({ txid: `t${i}`, topic: 'V', payload }));
  const tickets: FrameTicket[] = frames.map(() => actor.frameArrived(conn, 1_780_000_000_000, performance.now()));
  const task = packFrames(frames, VIN, 1_780_000_000_000);
  const shared = task.frames;
  const batch = new DecodedBatch(decodeBatch(task), shared);
  tickets.forEach((ticket, i) => actor.decoded(ticket, batch, i));
}

const v = (createdAt: string, data: DatumInput[], isResend = false) => encodeVehicleData({ vin: VIN, createdAt: new Date(createdAt), isResend, data });

describe('last-known state: newest sample wins', () => {
  const metrics = new ServerMetrics({ version: 'test' }).actors;

  it('a resent older record reaches the bus but does not roll a field back', () => {
    const bus = new RecordingBus();
    const actor = new VehicleActor(VIN, bus, metrics, 0);
    feed(actor, connection(), [
      v('2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: 80 } }, { key: 'Odometer', value: { doubleValue: 100 } }]),
      v('2026-01-02T03:04:05Z', [{ key: 'Soc', value: { doubleValue: 70 } }, { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } }], true),
    ]);
    expect(bus.records).to.have.length(2);
    expect(bus.records[1]!.dashboardMessage).to.contain('"resend":true');
    expect(actor.state.get('Soc')).to.include({ value: '{"doubleValue":80}', at: '2026-01-02T03:04:10Z' });
    // Fields the newer record did not carry are still taken from the older one.
    expect(actor.state.get('Gear')).to.include({ value: '{"shiftStateValue":"ShiftStateD"}', at: '2026-01-02T03:04:05Z' });
    feed(actor, connection(), [v('2026-01-02T03:04:11Z', [{ key: 'Soc', value: { doubleValue: 81 } }])]);
    expect(actor.state.get('Soc')!.value).to.equal('{"doubleValue":81}');
  });

  it('a value of a type we cannot decode, or no value, never replaces a known value', () => {
    const actor = new VehicleActor(VIN, new RecordingBus(), metrics, 0);
    feed(actor, connection(), [v('2026-01-02T03:04:10Z', [{ key: 'Soc', value: { doubleValue: 80 } }])]);
    // Value member 99 (newer firmware): protobuf JSON shows an empty Value.
    const unknownMember = concat([
      bytesField(1, concat([varintField(1, 8), bytesField(2, varintField(99, 1))])),
      bytesField(1, concat([varintField(1, 8)])),
      bytesField(2, varintField(1, 1_767_323_060)),
    ]);
    feed(actor, connection(), [unknownMember]);
    expect(actor.state.get('Soc')!.value).to.equal('{"doubleValue":80}');
  });
});

describe('connection metadata on records', () => {
  const metrics = new ServerMetrics({ version: 'test' }).actors;

  it('the Version header of the car connection travels with its records', () => {
    const bus = new RecordingBus();
    feed(new VehicleActor(VIN, bus, metrics, 0), connection('1.0.0'), [v('2026-01-02T03:04:10Z', [])]);
    expect(bus.records[0]!.clientVersion).to.equal('1.0.0');
    const none = new RecordingBus();
    feed(new VehicleActor(VIN, none, metrics, 0), connection(''), [v('2026-01-02T03:04:10Z', [])]);
    expect(none.records[0]!.clientVersion).to.equal(undefined);
  });

  it('X-TXID is the connection id only when it is a UUID; Version only when short printable text', () => {
    expect(connectionIdFrom('C0FFEE00-0000-4000-8000-000000000001')).to.equal('c0ffee00-0000-4000-8000-000000000001');
    for (const bad of ['', 'not-a-uuid', 'c0ffee00-0000-4000-8000-000000000001\r\nX: y', 'x'.repeat(5000)]) {
      const id = connectionIdFrom(bad);
      expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(id).to.not.equal(bad);
    }
    expect(clientVersionFrom('1.0.0')).to.equal('1.0.0');
    expect(clientVersionFrom('2024.44.25 abc123')).to.equal('2024.44.25 abc123');
    for (const bad of ['1.0\n', ' 1.0', 'v'.repeat(65), 'é']) expect(clientVersionFrom(bad)).to.equal('');
  });
});
