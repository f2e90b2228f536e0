import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { FakeTeslaAuth } from '../helpers/fake-tesla-auth.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN_A, VIN_B] = TEST_VINS;

describe('dashboard with Tesla sign-in (local JWKS, local fake Fleet API)', function () {
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

  it("lets a Tesla token see exactly the cars Tesla lists for it", async () => {
    const car = await CarClient.connect(t.carOptions(VIN_A));
    await car.sendRecord('V', encodeVehicleData({ vin: VIN_A, createdAt: new Date(), data: [{ key: 'Soc', value: { doubleValue: 64 } }] }));
    const token = await tesla.token({ vins: [VIN_A] });
    const dash = await DashboardTestClient.open({ url: t.dashboardUrl, caPem: readFileSync(t.pki.caChain), token, tokenInQuery: true });
    await dash.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
    expect(dash.ofType('hello')[0]!.vins).to.deep.equal([VIN_A]);
    dash.send({ type: 'subscribe', vins: [VIN_A, VIN_B] });
    await dash.waitFor((m) => m.some((x) => x.type === 'snapshot') && m.some((x) => x.type === 'error'), 5000, 'snapshot and refusal');
    expect(dash.ofType('snapshot')[0]!.state.Soc.value).to.deep.equal({ doubleValue: 64 });
    expect(dash.ofType('error')[0]).to.include({ code: 'forbidden_vin', vin: VIN_B });
    await dash.close();
    await car.close();

    const noScope = await tesla.token({ scopes: ['openid'], vins: [VIN_A] });
    const refused = await DashboardTestClient.attempt({ url: t.dashboardUrl, caPem: readFileSync(t.pki.caChain), token: noScope });
    // Tesla's keys decide: checked right after the upgrade, closed with 4401 and the reason code.
    expect(refused).to.deep.include({ status: null, code: 4401, reason: 'missing_scope' });
  });

  it('holds a socket whose token is still being checked: nothing flows, its requests wait and are answered in order; a 17th, or past 64 KiB held, closes it', async () => {
    const caPem = readFileSync(t.pki.caChain);
    const car = await CarClient.connect(t.carOptions(VIN_A));
    await car.sendRecord('V', encodeVehicleData({ vin: VIN_A, createdAt: new Date(), data: [{ key: 'Soc', value: { doubleValue: 71 } }] }));
    let release = (): void => {};
    tesla.vehiclesGate = new Promise((resolve) => (release = resolve));
    try {
      const calls = tesla.vehicleCalls;
      const dash = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await tesla.token({ vins: [VIN_A] }), early: true });
      dash.send({ type: 'subscribe', vins: [VIN_B] });
      dash.send({ type: 'subscribe', vins: [VIN_A] });
      // The check waits on Tesla's vehicle list: until it answers, the socket gets nothing.
      while (tesla.vehicleCalls === calls) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(dash.messages).to.deep.equal([]);
      release();
      await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'the snapshot');
      expect(dash.messages.map((m) => m.type)).to.deep.equal(['hello', 'error', 'snapshot']);
      expect(dash.messages[1]).to.include({ code: 'forbidden_vin', vin: VIN_B });
      expect(dash.messages[2]!.state.Soc.value).to.deep.equal({ doubleValue: 71 });
      await dash.close();

      tesla.vehiclesGate = new Promise((resolve) => (release = resolve));
      const eager = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await tesla.token({ vins: [VIN_A] }), early: true });
      for (let i = 0; i < 17; i++) eager.send({ type: 'subscribe', vins: [VIN_A] });
      const closed = await eager.closed;
      expect(closed.code).to.equal(1008);
      expect(eager.messages).to.deep.equal([]);
      // Few requests but large ones: past 64 KiB held together it is closed too.
      const bulky = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await tesla.token({ vins: [VIN_A] }), early: true });
      const padding = 'x'.repeat(40_000);
      bulky.send({ type: 'subscribe', vins: [VIN_A], padding });
      bulky.send({ type: 'subscribe', vins: [VIN_A], padding });
      expect((await bulky.closed).code).to.equal(1008);
      expect(bulky.messages).to.deep.equal([]);
    } finally {
      tesla.vehiclesGate = null;
      release();
      await car.close();
    }
  });

  it('closes a socket still being checked with 1001 when the server stops, and admits nothing after', async () => {
    const own = await startTestServer({ env: tesla.dashboardEnv() });
    let release = (): void => {};
    tesla.vehiclesGate = new Promise((resolve) => (release = resolve));
    try {
      const calls = tesla.vehicleCalls;
      const dash = await DashboardTestClient.open({ url: own.dashboardUrl, caPem: readFileSync(own.pki.caChain), token: await tesla.token({ vins: [VIN_A] }), early: true });
      while (tesla.vehicleCalls === calls) await new Promise((resolve) => setTimeout(resolve, 10));
      const stopped = own.stop();
      expect((await dash.closed).code).to.equal(1001);
      release();
      await stopped;
      expect(dash.messages).to.deep.equal([]);
    } finally {
      tesla.vehiclesGate = null;
      release();
    }
  });
});
