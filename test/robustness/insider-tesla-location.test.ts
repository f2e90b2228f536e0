// A Tesla sign-in token with `vehicle_device_data` but without `vehicle_location` (issue #12): Tesla keeps
// a car's position from such a token, and so must the dashboard, in the snapshot, in live records and in
// what the page is told. A token with the scope still sees everything. Real server, fake Tesla auth.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { FakeTeslaAuth } from '../helpers/fake-tesla-auth.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN] = TEST_VINS;

function located(speed: number): Uint8Array {
  return encodeVehicleData({
    vin: VIN,
    createdAt: new Date(),
    data: [
      { key: 'VehicleSpeed', value: { doubleValue: speed } },
      { key: 'Location', value: { locationValue: { latitude: 37.4, longitude: -122.1 } } },
      { key: 'GpsHeading', value: { doubleValue: 90 } },
      { key: 'DestinationName', value: { stringValue: 'Home' } },
    ],
  });
}

describe('robustness: location held back from a Tesla token without vehicle_location (real server)', function () {
  this.timeout(30_000);
  let t: TestServer;
  let tesla: FakeTeslaAuth;

  before(async () => {
    tesla = await new FakeTeslaAuth().start();
    t = await startTestServer({ env: tesla.dashboardEnv() });
  });
  after(async () => {
    await t?.stop();
    await tesla?.stop();
  });

  it('strips location fields from snapshot and live records for a token without the scope, not for one with it', async () => {
    const car = await CarClient.connect(t.carOptions(VIN));
    expect((await car.sendRecord('V', located(10))).kind).to.equal('ack');
    const caPem = readFileSync(t.pki.caChain);
    const without = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await tesla.token({ vins: [VIN] }) });
    const withScope = await DashboardTestClient.open({
      url: t.dashboardUrl,
      caPem,
      token: await tesla.token({ vins: [VIN], scopes: ['openid', 'vehicle_device_data', 'vehicle_location'] }),
    });
    for (const d of [without, withScope]) {
      await d.waitFor((m) => m.some((x) => x.type === 'hello'), 5_000, 'hello');
      d.send({ type: 'subscribe', vins: [VIN] });
      await d.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5_000, 'snapshot');
    }
    expect(without.ofType('hello')[0]!.location).to.equal(false);
    expect(withScope.ofType('hello')[0]!.location).to.equal(true);
    expect(Object.keys(without.ofType('snapshot')[0]!.state)).to.include('VehicleSpeed').and.not.include('Location').and.not.include('GpsHeading').and.not.include('DestinationName');
    expect(Object.keys(withScope.ofType('snapshot')[0]!.state)).to.include('Location');

    expect((await car.sendRecord('V', located(20))).kind).to.equal('ack');
    for (const d of [without, withScope]) await d.waitFor((m) => m.some((x) => x.type === 'record' && x.topic === 'V'), 5_000, 'live record');
    const keys = (d: DashboardTestClient) => (d.ofType('record').find((r) => r.topic === 'V')!.record.data as Array<{ key: string }>).map((x) => x.key);
    expect(keys(without)).to.deep.equal(['VehicleSpeed']);
    expect(keys(withScope)).to.include('Location').and.include('GpsHeading');
    expect(JSON.stringify(without.messages)).to.not.match(/37\.4|-122\.1|"Home"/);
    await without.close();
    await withScope.close();
    await car.close();
  });
});
