import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { eventually } from '../helpers/eventually.js';
import { FakeTeslaOAuth } from '../helpers/fake-tesla-oauth.js';
import { NatsServer, freePort } from '../helpers/nats-server.js';
import { call, sessionCookie, signIn, signInEnv } from '../helpers/tesla-sign-in.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { SteppedWallClock } from '../helpers/test-clock.js';
import WebSocket from 'ws';

const [VIN_A] = TEST_VINS;
const SESSION_SECRET = 'nats-session-secret-0123456789abcdefghij';

describe('Sign in with Tesla sessions shared over NATS (real nats-server, two instances)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  // Both instances' clock: the access token runs out when the test moves it.
  const clock = new SteppedWallClock();
  let tesla: FakeTeslaOAuth;
  let a: TestServer;
  let b: TestServer;
  let ca: Buffer;

  async function instance(name: string): Promise<TestServer> {
    return startTestServer({
      env: {
        NATS_URL: nats.url,
        NATS_INSTANCE_ID: name,
        ...signInEnv(tesla, await freePort()),
        DASHBOARD_SESSION_SECRET: SESSION_SECRET,
      },
      overrides: { clock },
    });
  }

  before(async () => {
    nats = await NatsServer.start();
    tesla = await new FakeTeslaOAuth().start();
    tesla.nextUser = { sub: 'owner-nats', vins: [VIN_A] };
    a = await instance('inst-a');
    b = await instance('inst-b');
    ca = readFileSync(a.pki.caChain);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await tesla?.stop();
    await nats?.dispose();
  });

  it('a sign-in on one instance works on the other, a refresh there is shared, and a sign-out closes both', async () => {
    tesla.accessTtlSeconds = 3;
    const { done } = await signIn(a.dashboardBaseUrl, ca);
    expect(done.location).to.equal('/');
    const cookie = sessionCookie(done);

    await eventually(async () => (await call(`${b.dashboardBaseUrl}/api/session`, ca, { cookie })).status === 200);

    // The access token runs out; B refreshes (rotating the refresh token), and A then uses B's result
    // instead of presenting the dead refresh token to Tesla.
    clock.advance(2000);
    expect((await call(`${b.dashboardBaseUrl}/api/session`, ca, { cookie })).status).to.equal(200);
    expect((await call(`${a.dashboardBaseUrl}/api/session`, ca, { cookie })).status).to.equal(200);
    expect(tesla.counts.refreshes).to.equal(1);
    expect(tesla.counts.refreshRefused).to.equal(0);

    // A socket on B, then a sign-out on A: B closes it with 4003.
    const socket = new WebSocket(`wss://127.0.0.1:${b.server.dashboardPort}/dashboard`, { ca, servername: 'localhost', headers: { cookie } } as WebSocket.ClientOptions);
    await new Promise<void>((resolve, reject) => {
      socket.once('message', () => resolve());
      socket.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    expect((await call(`${a.dashboardBaseUrl}/auth/logout`, ca, { method: 'POST', cookie })).status).to.equal(204);
    expect(await closed).to.equal(4003);
    await eventually(async () => (await call(`${b.dashboardBaseUrl}/api/session`, ca, { cookie })).status === 401);
    expect(tesla.violations).to.deep.equal([]);
  });
});
