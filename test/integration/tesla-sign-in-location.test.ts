import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { FakeTeslaOAuth, type FakeUser } from '../helpers/fake-tesla-oauth.js';
import { freePort } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN_A] = TEST_VINS;

interface Reply {
  status: number;
  location: string;
  setCookies: string[];
  body: string;
}

function call(url: string, ca: Buffer, cookie?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, servername: 'localhost', headers: cookie ? { cookie } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? ''), setCookies: res.headers['set-cookie'] ?? [], body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

function cookieFrom(reply: Reply, name: string): string {
  const line = reply.setCookies.find((c) => c.startsWith(`${name}=`));
  if (line === undefined) throw new Error(`no ${name} cookie`);
  return `${name}=${line.slice(name.length + 1).split(';')[0]}`;
}

/** A cookie session's grant follows Tesla's own rule: location only with the vehicle_location scope. */
describe('Sign in with Tesla: location follows the vehicle_location scope', function () {
  this.timeout(30_000);
  let tesla: FakeTeslaOAuth;
  let server: TestServer;
  let ca: Buffer;

  before(async () => {
    tesla = await new FakeTeslaOAuth().start();
    const port = await freePort();
    const redirect = `https://127.0.0.1:${port}/auth/callback`;
    tesla.redirectUris.add(redirect);
    server = await startTestServer({
      env: {
        DASHBOARD_PORT: String(port),
        TESLA_CLIENT_ID: tesla.clientId,
        TESLA_CLIENT_SECRET: tesla.clientSecret,
        TESLA_AUTHORIZE_URL: tesla.authorizeUrl,
        TESLA_TOKEN_URL: tesla.tokenUrl,
        TESLA_API_BASE_URL: tesla.baseUrl,
        DASHBOARD_REDIRECT_URI: redirect,
        DASHBOARD_SESSION_SECRET: 'location-session-secret-0123456789abcdef',
      },
    });
    ca = readFileSync(server.pki.caChain);
  });
  after(async () => {
    await server?.stop();
    await tesla?.stop();
  });

  async function signIn(user: FakeUser): Promise<{ location: boolean; requested: string }> {
    tesla.nextUser = user;
    const login = await call(`${server.dashboardBaseUrl}/auth/login`, ca);
    const requested = new URL(login.location).searchParams.get('scope') ?? '';
    const back = new URL((await fetch(login.location, { redirect: 'manual' })).headers.get('location') ?? '');
    const done = await call(`${server.dashboardBaseUrl}${back.pathname}${back.search}`, ca, cookieFrom(login, '__Host-ft-login'));
    expect(done.location).to.equal('/');
    const session = await call(`${server.dashboardBaseUrl}/api/session`, ca, cookieFrom(done, '__Host-ft-session'));
    expect(session.status).to.equal(200);
    return { location: (JSON.parse(session.body) as { location: boolean }).location, requested };
  }

  it('asks for vehicle_location and shows location when the owner grants it', async () => {
    const { location, requested } = await signIn({ sub: 'owner-with-location', vins: [VIN_A] });
    expect(requested.split(' ')).to.include('vehicle_location');
    expect(location).to.equal(true);
  });

  it('holds location back when the owner unticks vehicle_location', async () => {
    const { location } = await signIn({ sub: 'owner-without-location', vins: [VIN_A], grantScopes: ['openid', 'offline_access', 'vehicle_device_data'] });
    expect(location).to.equal(false);
  });
});
