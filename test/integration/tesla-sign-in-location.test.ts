import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { FakeTeslaOAuth, type FakeUser } from '../helpers/fake-tesla-oauth.js';
import { freePort } from '../helpers/nats-server.js';
import { call, sessionCookie, signIn, signInEnv } from '../helpers/tesla-sign-in.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN_A] = TEST_VINS;

/** A cookie session's grant follows Tesla's own rule: location only with the vehicle_location scope. */
describe('Sign in with Tesla: location follows the vehicle_location scope', function () {
  this.timeout(30_000);
  let tesla: FakeTeslaOAuth;
  let server: TestServer;
  let ca: Buffer;

  before(async () => {
    tesla = await new FakeTeslaOAuth().start();
    server = await startTestServer({
      env: {
        ...signInEnv(tesla, await freePort()),
        DASHBOARD_SESSION_SECRET: 'location-session-secret-0123456789abcdef',
      },
    });
    ca = readFileSync(server.pki.caChain);
  });
  after(async () => {
    await server?.stop();
    await tesla?.stop();
  });

  async function signInAs(user: FakeUser): Promise<{ location: boolean; requested: string }> {
    tesla.nextUser = user;
    const { login, done } = await signIn(server.dashboardBaseUrl, ca);
    const requested = new URL(login.location).searchParams.get('scope') ?? '';
    expect(done.location).to.equal('/');
    const session = await call(`${server.dashboardBaseUrl}/api/session`, ca, { cookie: sessionCookie(done) });
    expect(session.status).to.equal(200);
    return { location: (JSON.parse(session.body) as { location: boolean }).location, requested };
  }

  it('asks for vehicle_location and shows location when the owner grants it', async () => {
    const { location, requested } = await signInAs({ sub: 'owner-with-location', vins: [VIN_A] });
    expect(requested.split(' ')).to.include('vehicle_location');
    expect(location).to.equal(true);
  });

  it('holds location back when the owner unticks vehicle_location', async () => {
    const { location } = await signInAs({ sub: 'owner-without-location', vins: [VIN_A], grantScopes: ['openid', 'offline_access', 'vehicle_device_data'] });
    expect(location).to.equal(false);
  });
});
