import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { BrowserContext } from 'playwright-core';
import WebSocket from 'ws';
import { createLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { FakeTeslaOAuth } from '../helpers/fake-tesla-oauth.js';
import { call, sessionCookie, signIn, signInEnv, startLogin } from '../helpers/tesla-sign-in.js';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { SteppedWallClock } from '../helpers/test-clock.js';
import { freePort } from '../../tools/local-process.js';

const [VIN_A, VIN_B, VIN_OTHER] = TEST_VINS;
const SESSION_SECRET = 'session-secret-for-tests-0123456789abcdef';

describe('Sign in with Tesla in headless Chromium (fake Tesla auth server)', function () {
  this.timeout(120_000);
  // The server's clock: the 4 s access tokens run out when the test moves it, not after a real wait.
  const clock = new SteppedWallClock();
  let tesla: FakeTeslaOAuth;
  let t: TestServer;
  let browser: BrowserContext;
  let profile: string;
  let dir: string;
  let port: number;
  let env: Record<string, string>;
  let metrics: ServerMetrics;
  let ca: Buffer;
  const logs = new PassThrough();
  let logText = '';
  logs.on('data', (chunk: Buffer) => {
    logText += chunk.toString('utf8');
  });
  const cars: CarClient[] = [];

  async function startServer(): Promise<void> {
    metrics = new ServerMetrics({ collectDefaults: false });
    t = await startTestServer({ env, overrides: { logger: createLogger('debug', logs), metrics, clock } });
  }

  before(async function () {
    tesla = await new FakeTeslaOAuth().start();
    tesla.nextUser = { sub: 'owner-1', vins: [VIN_A, VIN_B] };
    // The account lives in another region: its cars must be listed at that region's base URL.
    tesla.regionPrefix = '/eu';
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-sign-in-'));
    env = {
      ...signInEnv(tesla, port),
      DASHBOARD_SESSION_SECRET: SESSION_SECRET,
      DASHBOARD_SESSION_FILE: join(dir, 'sessions.enc'),
    };
    await startServer();
    ca = readFileSync(t.pki.caChain);
    ({ browser, profile } = await launchChromium());
  });
  after(async () => {
    await Promise.all(cars.map((c) => c.close()));
    await browser?.close();
    await t?.stop();
    await tesla?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("signs in, sees only the account's cars, survives a token expiry and a restart, and signs out", async () => {
    const car = await CarClient.connect(t.carOptions(VIN_A));
    cars.push(car);
    await car.sendRecord('V', encodeVehicleData({ vin: VIN_A, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: 42 } }] }));
    const other = await CarClient.connect(t.carOptions(VIN_OTHER));
    cars.push(other);
    await other.sendRecord('V', encodeVehicleData({ vin: VIN_OTHER, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: 99 } }] }));
    tesla.accessTtlSeconds = 4;

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${t.dashboardBaseUrl}/`);
    await page.locator('#tesla-sign-in').waitFor({ state: 'visible', timeout: 10_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'tesla-sign-in.png') });
    await page.locator('#tesla-sign-in-link').click();
    await page.locator('#vehicle-list li').nth(1).waitFor({ timeout: 15_000 });
    expect(page.url()).to.equal(`https://127.0.0.1:${port}/`);
    const listed = await page.locator('#vehicle-list .vin').allTextContents();
    expect(listed.sort()).to.deep.equal([VIN_A, VIN_B]);
    expect(tesla.counts.regionCalls).to.be.greaterThan(0);
    await page.locator('.tile[data-field="VehicleSpeed"] [data-value]').filter({ hasText: /^42$/ }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#link-state').textContent()).to.equal('Live');

    // The car that never streamed gets the pairing link and its QR code.
    await page.locator('#pairing').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#pairing-vins li').allTextContents()).to.deep.equal([VIN_B]);
    expect(await page.locator('#pairing-link').getAttribute('href')).to.equal('https://tesla.com/_ak/localhost');
    await page.waitForFunction("document.getElementById('pairing-qr').naturalWidth > 0");
    await page.screenshot({ path: join(ARTIFACTS, 'tesla-signed-in.png'), fullPage: true });

    // The browser holds a session id only: HttpOnly, Secure, SameSite=Strict; no Tesla token anywhere.
    const cookies = await browser.cookies();
    const session = cookies.find((c) => c.name === '__Host-ft-session');
    expect(session).to.include({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    const storage = (await page.evaluate('JSON.stringify({ ...sessionStorage, ...localStorage }) + document.cookie')) as string;
    for (const secret of tesla.issuedSecrets) {
      expect(storage).not.to.include(secret);
      expect(cookies.map((c) => c.value).join(' ')).not.to.include(secret);
    }

    // The access token expires; the session refreshes it (rotating the refresh token) and carries on.
    const refreshesBefore = tesla.counts.refreshes;
    clock.advance(4500);
    await page.reload();
    await page.locator('#vehicle-list li').nth(1).waitFor({ timeout: 15_000 });
    await page.locator('#link-state').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
    expect(tesla.counts.refreshes).to.be.greaterThan(refreshesBefore);
    expect(tesla.counts.refreshRefused).to.equal(0);

    // A restart: the session comes back from the encrypted file (0600, no token in clear).
    const file = env.DASHBOARD_SESSION_FILE!;
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const sealed = readFileSync(file, 'utf8');
    for (const secret of tesla.issuedSecrets) expect(sealed).not.to.include(secret);
    await t.stop();
    await startServer();
    await page.reload();
    await page.locator('#vehicle-list li').nth(1).waitFor({ timeout: 15_000 });
    await page.locator('#link-state').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
    expect((await page.locator('#vehicle-list .vin').allTextContents()).sort()).to.deep.equal([VIN_A, VIN_B]);

    // Sign out: the page returns to sign-in, the cookie is gone, and the old id opens nothing.
    await page.locator('#sign-out').click();
    await page.locator('#sign-in').waitFor({ state: 'visible', timeout: 10_000 });
    for (let i = 0; i < 50 && (await browser.cookies()).some((c) => c.name === '__Host-ft-session'); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await browser.cookies()).find((c) => c.name === '__Host-ft-session')).to.equal(undefined);
    const after = await call(`https://127.0.0.1:${port}/api/session`, ca, { cookie: `__Host-ft-session=${session!.value}` });
    expect(after.status).to.equal(401);
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('explains a declined consent and a missing scope on the page, and counts each refusal', async () => {
    const page = await browser.newPage();
    const base = `https://127.0.0.1:${port}`;
    tesla.denyConsent = true;
    await page.goto(`${base}/`);
    await page.locator('#tesla-sign-in-link').click();
    await page.locator('#tesla-sign-in-error[data-reason="access_denied"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#tesla-sign-in-error').textContent()).to.include('declined');
    expect(page.url()).to.equal(`${base}/`);
    tesla.denyConsent = false;

    tesla.nextUser = { sub: 'owner-2', vins: [VIN_A], grantScopes: ['openid', 'offline_access'] };
    await page.locator('#tesla-sign-in-link').click();
    await page.locator('#tesla-sign-in-error[data-reason="missing_scope"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#tesla-sign-in-error').textContent()).to.include('vehicle data');
    expect(await page.locator('#app').isHidden()).to.equal(true);
    tesla.nextUser = { sub: 'owner-1', vins: [VIN_A, VIN_B] };
    await page.close();

    const text = await metrics.registry.metrics();
    expect(text).to.match(/fleet_telemetry_tesla_sign_ins_total\{result="access_denied"\} 1/);
    expect(text).to.match(/fleet_telemetry_tesla_sign_ins_total\{result="missing_scope"\} 1/);
  });

  it('refuses a replayed state, another browser\'s state, and offers no open redirect', async () => {
    const base = `https://127.0.0.1:${port}`;
    // A whole callback replayed (same login cookie, same URL): the state was spent.
    const first = await startLogin(base, ca);
    const ok = await call(first.callbackUrl, ca, { cookie: `__Host-ft-login=${first.loginCookie}` });
    expect(ok.location).to.equal('/');
    const replay = await call(first.callbackUrl, ca, { cookie: `__Host-ft-login=${first.loginCookie}` });
    expect(replay.location).to.equal('/?signin_error=state_replayed');
    expect(replay.setCookies.some((c) => c.startsWith('__Host-ft-session=') && !c.startsWith('__Host-ft-session=;'))).to.equal(false);

    // Browser B's callback delivered to browser A (login CSRF): A's cookie holds another state.
    const a = await startLogin(base, ca);
    const b = await startLogin(base, ca);
    const crossed = await call(b.callbackUrl, ca, { cookie: `__Host-ft-login=${a.loginCookie}` });
    expect(crossed.location).to.equal('/?signin_error=state_mismatch');
    // A right state with a forged code: Tesla refuses the exchange.
    const c = await startLogin(base, ca);
    const forged = c.callbackUrl.replace(/code=[^&]+/, 'code=forged-code');
    const badCode = await call(forged, ca, { cookie: `__Host-ft-login=${c.loginCookie}` });
    expect(badCode.location).to.equal('/?signin_error=bad_code');
    expect(tesla.violations.splice(0)).to.deep.equal(['token authorization_code: unknown, used or expired code']);

    const noCookie = await call(b.callbackUrl, ca);
    expect(noCookie.location).to.equal('/?signin_error=no_login_cookie');

    // The login route takes no return address: whatever is appended, it goes to Tesla with our own redirect URI.
    const login = await call(`${base}/auth/login?return=https://evil.example/&next=//evil.example&redirect_uri=https://evil.example/cb`, ca);
    const location = new URL(login.location);
    expect(location.origin + location.pathname).to.equal(tesla.authorizeUrl);
    expect(location.searchParams.get('redirect_uri')).to.equal(`${base}/auth/callback`);
    const spoofed = await call(`${base}/auth/callback?code=x&state=y&return=https://evil.example/`, ca, { cookie: `__Host-ft-login=${a.loginCookie}` });
    expect(spoofed.location.startsWith('/')).to.equal(true);
    expect(spoofed.location.startsWith('//')).to.equal(false);

    // Cross-site WebSocket hijacking: another site's page carrying the session cookie is refused by Origin
    // (and SameSite=Strict keeps a browser from sending the cookie there in the first place).
    const okCookie = sessionCookie(ok);
    const hijack = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/dashboard`, { ca, servername: 'localhost', headers: { cookie: okCookie, origin: 'https://evil.example' } } as WebSocket.ClientOptions);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', reject);
    });
    expect(hijack).to.equal(403);
    const sameOrigin = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/dashboard`, { ca, servername: 'localhost', headers: { cookie: okCookie, origin: base } } as WebSocket.ClientOptions);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', reject);
    });
    expect(sameOrigin).to.equal(101);

    const text = await metrics.registry.metrics();
    expect(text).to.match(/fleet_telemetry_tesla_sign_ins_total\{result="state_replayed"\} 1/);
    expect(text).to.match(/fleet_telemetry_tesla_sign_ins_total\{result="state_mismatch"\} 2/);
    expect(text).to.match(/fleet_telemetry_tesla_sign_ins_total\{result="no_login_cookie"\} 1/);
    expect(text).to.match(/fleet_telemetry_tesla_sign_ins_total\{result="bad_code"\} 1/);
  });

  it('closes the session when Tesla revokes the refresh token', async () => {
    const base = `https://127.0.0.1:${port}`;
    tesla.nextUser = { sub: 'owner-3', vins: [VIN_B] };
    const { done } = await signIn(base, ca);
    const cookie = sessionCookie(done);
    expect((await call(`${base}/api/session`, ca, { cookie })).status).to.equal(200);
    tesla.revoke('owner-3');
    clock.advance(4500); // the 4 s access token runs out, on the server's clock
    const refused = await call(`${base}/api/session`, ca, { cookie });
    expect(refused.status).to.equal(401);
    expect(await metrics.registry.metrics()).to.match(/fleet_telemetry_tesla_token_refreshes_total\{owner="session",result="revoked"\} 1/);
  });

  it('never writes a Tesla token, code or session id into the logs', () => {
    expect(logText).to.include('tesla_sign_in');
    for (const secret of tesla.issuedSecrets) expect(logText).not.to.include(secret);
    expect(logText).not.to.include(tesla.clientSecret);
    expect(logText).not.to.include(SESSION_SECRET);
    expect(tesla.violations).to.deep.equal([]);
  });
});
