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
    expect(refused).to.deep.include({ status: 401 });
    expect(JSON.parse((refused as { body: string }).body).reason).to.equal('missing_scope');
  });
});
