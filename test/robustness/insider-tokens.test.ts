// What the holder of one validly signed dashboard token could do to the whole process (issue #12): absurd
// `exp` values, an `iat` in the future and lifetimes past DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS, thrown at
// `node dist/main.js` as operators run it. Each must be refused with a reason, and the process must stay up
// with its cars acked.
import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { TEST_JWT_SECRET, TEST_VINS, testPki } from '../helpers/test-server.js';
import { holdsAfter } from '../helpers/eventually.js';
import { CountingCar } from './helpers/counting-car.js';
import { freePort, spawnServer, type SpawnedServer } from './helpers/spawned-server.js';

const [VIN] = TEST_VINS;
const MAX_LIFETIME_SECONDS = 3_600;

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An HS256 token with whatever claims, signed with the server's own secret: a valid signature. */
export function signedToken(claims: Record<string, unknown>, secret = TEST_JWT_SECRET): string {
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** The same, with the payload JSON written by hand (numbers such as 1e300 survive as written). */
function signedRawToken(payloadJson: string): string {
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${Buffer.from(payloadJson).toString('base64url')}`;
  return `${body}.${createHmac('sha256', TEST_JWT_SECRET).update(body).digest('base64url')}`;
}

export function getJson(url: string, caPem: Buffer, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: caPem, servername: 'localhost', headers: { Authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { raw: text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
  });
}

describe('robustness: what one valid dashboard token can do (spawned server)', function () {
  this.timeout(60_000);
  let server: SpawnedServer;
  let dashboardPort: number;
  let caPem: Buffer;

  before(async () => {
    dashboardPort = await freePort();
    server = await spawnServer({ env: { DASHBOARD_PORT: String(dashboardPort), DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS: String(MAX_LIFETIME_SECONDS) } });
    caPem = readFileSync((await testPki()).caChain);
  });

  after(() => {
    if (server.child.exitCode === null) server.kill();
  });

  async function expectAlive(): Promise<void> {
    expect(server.child.exitCode, `the server exited: ${server.stderr().slice(-2000)}`).to.equal(null);
    const car = await CountingCar.connect(server.carOptions(VIN), 5_000);
    car.sendRecord('V', encodeVehicleData({ vin: VIN, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: 1 } }] }));
    await car.waitForReplies(1, 5_000);
    expect(car.acked).to.equal(1);
    await car.close();
  }

  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<{ name: string; token: () => string; reason: string }> = [
    { name: 'exp 9999999999999', token: () => signedToken({ vins: [VIN], exp: 9_999_999_999_999 }), reason: 'lifetime_too_long' },
    { name: 'exp 1e300', token: () => signedRawToken(`{"vins":["${VIN}"],"exp":1e300}`), reason: 'lifetime_too_long' },
    { name: 'exp a year away (past the cap)', token: () => signedToken({ vins: [VIN], iat: now(), exp: now() + 366 * 86_400 }), reason: 'lifetime_too_long' },
    { name: 'iat an hour in the future', token: () => signedToken({ vins: [VIN], iat: now() + 3_600, exp: now() + 3_700 }), reason: 'issued_in_future' },
    { name: 'iat 1e300', token: () => signedRawToken(`{"vins":["${VIN}"],"iat":1e300,"exp":${now() + 60}}`), reason: 'issued_in_future' },
  ];

  for (const c of cases) {
    it(`refuses a token with ${c.name} at /api/session and at the upgrade, and stays up`, async () => {
      const token = c.token();
      const session = await getJson(`https://127.0.0.1:${dashboardPort}/api/session`, caPem, token);
      expect(session.status, JSON.stringify(session.body)).to.equal(401);
      expect(session.body.reason).to.equal(c.reason);
      // The refusal itself, not any failure to connect: signed, so checked right after the upgrade and
      // closed with 4401 and the reason before any message.
      const upgrade = await DashboardTestClient.attempt({ url: `wss://127.0.0.1:${dashboardPort}/dashboard`, caPem, token });
      expect(upgrade).to.not.be.instanceOf(DashboardTestClient);
      expect(upgrade).to.deep.include({ status: null, code: 4401, reason: c.reason });
      // A car served after the refusals, then a bounded settle in which the process stays up.
      await holdsAfter(expectAlive(), () => {
        expect(server.child.exitCode, `the server exited: ${server.stderr().slice(-2000)}`).to.equal(null);
      }, 200);
    });
  }

  it('still accepts a token within the cap', async () => {
    const token = signedToken({ vins: [VIN], iat: now(), exp: now() + MAX_LIFETIME_SECONDS - 60 });
    const session = await getJson(`https://127.0.0.1:${dashboardPort}/api/session`, caPem, token);
    expect(session.status).to.equal(200);
    const client = await DashboardTestClient.open({ url: `wss://127.0.0.1:${dashboardPort}/dashboard`, caPem, token });
    await client.waitFor((m) => m.some((x) => x.type === 'hello'), 5_000, 'hello');
    client.socket.close();
    await expectAlive();
  });

  it('checks a token naming 400 VINs (past the 4 KiB uWS default header limit) instead of answering 431', async () => {
    const vins = Array.from({ length: 400 }, (_, i) => `5YJ3E7EB0LF${String(i).padStart(6, '0')}`);
    const good = signedToken({ vins, iat: now(), exp: now() + 600 });
    const session = await getJson(`https://127.0.0.1:${dashboardPort}/api/session`, caPem, good);
    expect(session.status, JSON.stringify(session.body).slice(0, 200)).to.equal(200);
    expect(session.body.vins).to.have.length(400);
    const forged = `${good.slice(0, -4)}AAAA`;
    const refused = await getJson(`https://127.0.0.1:${dashboardPort}/api/session`, caPem, forged);
    expect(refused.status).to.equal(401);
    expect(refused.body.reason).to.equal('bad_signature');
    await expectAlive();
  });
});
