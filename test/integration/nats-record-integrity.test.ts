// Record integrity with the real nats-server: what an outside consumer reads from the stream body, and
// last-known state by created_at through the KV snapshot path.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { expect } from 'chai';
import { HEADER } from '../../src/bus/nats/stream-record.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { protoSchema } from '../../src/protocol/proto-schema.js';
import { CarClient } from '../../src/sim/car-client.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { bytesField, concat, varintField } from '../robustness/fuzz/protobuf-wire.js';
import { eventually, holdsAfter } from '../helpers/eventually.js';

const [VIN_A, VIN_B] = TEST_VINS;

describe('record integrity over NATS JetStream (real nats-server)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    nats = await NatsServer.start();
    const env = (instance: string) => ({ NATS_URL: nats.url, NATS_INSTANCE_ID: instance, NATS_STATE_FLUSH_MS: '100' });
    a = await startTestServer({ env: env('inst-a') });
    b = await startTestServer({ env: env('inst-b') });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await nats?.dispose();
  });

  it('the stream body holds the normalised record: certificate VIN, Location converted, unknown fields kept, Version header', async () => {
    const car = await CarClient.connect(a.carOptions(VIN_A, { clientVersion: '1.2.3' }));
    const payload = concat([
      encodeVehicleData({
        vin: 'SPOOFEDVIN0000000',
        createdAt: new Date(),
        data: [{ key: 'Location', value: { stringValue: '(37.5 N, 122.25 W)' } }, { key: 'Soc', value: { doubleValue: 50 } }],
      }),
      bytesField(9, varintField(1, 77)),
    ]);
    expect((await car.sendRecord('V', payload)).kind).to.equal('ack');
    await car.close();

    // An outside consumer with its own client, reading the stored message as it is.
    const nc = await connect({ servers: nats.url, timeout: 5000 });
    try {
      const jsm = await jetstreamManager(nc);
      const message = await jsm.streams.getMessage('TELEMETRY', { last_by_subj: `telemetry.${VIN_A}.V` });
      expect(message).to.not.equal(null);
      expect(message!.header.get(HEADER.encoding)).to.equal('protobuf');
      expect(message!.header.get(HEADER.clientVersion)).to.equal('1.2.3');
      const Payload = protoSchema().root.lookupType('telemetry.vehicle_data.Payload');
      const body = Payload.toObject(Payload.decode(message!.data)) as { vin: string; data: Array<{ value: Record<string, unknown> }> };
      expect(body.vin).to.equal(VIN_A);
      expect(body.data[0]!.value.locationValue).to.deep.equal({ latitude: 37.5, longitude: -122.25 });
      expect(Buffer.from(message!.data).includes(Buffer.from('SPOOFED'))).to.equal(false);
      expect(Buffer.from(message!.data).includes(Buffer.from(bytesField(9, varintField(1, 77))))).to.equal(true);
    } finally {
      await nc.close();
    }
  });

  it('a resent older record does not roll back state, on the car instance and in another instance\'s snapshot', async () => {
    const car = await CarClient.connect(a.carOptions(VIN_B));
    const soc = (value: number, at: string, isResend = false) =>
      encodeVehicleData({ vin: VIN_B, createdAt: new Date(at), isResend, data: [{ key: 'Soc', value: { doubleValue: value } }] });
    expect((await car.sendRecord('V', soc(80, '2026-01-02T03:04:10Z'))).kind).to.equal('ack');
    expect((await car.sendRecord('V', soc(70, '2026-01-02T03:04:05Z', true))).kind).to.equal('ack');
    expect(a.server.registry.get(VIN_B)!.state.get('Soc')!.value).to.equal('{"doubleValue":80}');
    b.server.bus.watch(VIN_B);
    try {
      await eventually(async () => (await b.server.snapshots.snapshot(VIN_B)).state.has('Soc'));
      // Both the KV entry and the stream catch-up fold must keep the newer sample, over a settle.
      await holdsAfter(Promise.resolve(), async () => {
        const snapshot = await b.server.snapshots.snapshot(VIN_B);
        expect(snapshot.state.get('Soc')).to.include({ value: '{"doubleValue":80}', at: '2026-01-02T03:04:10Z' });
      }, 300);
    } finally {
      b.server.bus.unwatch(VIN_B);
      await car.close();
    }
  });
});
