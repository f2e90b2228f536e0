import { expect } from 'chai';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { encodeVehicleAlerts, encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN_A, VIN_B] = TEST_VINS;

function frame(vin: string, step: number): Uint8Array {
  const latitude = 37.3948 + step * 0.0009;
  const longitude = -122.1503 + Math.sin(step / 3) * 0.0012;
  return encodeVehicleData({
    vin,
    createdAt: new Date(),
    data: [
      { key: 'VehicleSpeed', value: { doubleValue: 40 + step } },
      { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } },
      { key: 'Soc', value: { doubleValue: 81.5 } },
      { key: 'EstBatteryRange', value: { doubleValue: 252.6 } },
      { key: 'Odometer', value: { doubleValue: 18342.7 } },
      { key: 'InsideTemp', value: { doubleValue: 21.5 } },
      { key: 'OutsideTemp', value: { doubleValue: 14.2 } },
      { key: 'DetailedChargeState', value: { detailedChargeStateValue: 'DetailedChargeStateDisconnected' } },
      { key: 'ACChargingPower', value: { doubleValue: 0 } },
      { key: 'TpmsPressureFl', value: { doubleValue: 2.93 } },
      { key: 'TpmsPressureFr', value: { doubleValue: 2.91 } },
      { key: 'TpmsPressureRl', value: { doubleValue: 2.88 } },
      { key: 'TpmsPressureRr', value: { doubleValue: 2.2 } },
      { key: 'Locked', value: { booleanValue: true } },
      { key: 'DoorState', value: { doorValue: { DriverFront: false, DriverRear: false, PassengerFront: false, PassengerRear: false, TrunkFront: false, TrunkRear: step === 0 } } },
      { key: 'GpsHeading', value: { doubleValue: 15 + step * 4 } },
      { key: 'Location', value: { locationValue: { latitude, longitude } } },
    ],
  });
}

describe('web dashboard in headless Chromium', function () {
  this.timeout(60_000);
  let t: TestServer;
  let browser: BrowserContext;
  let profile: string;
  const cars: CarClient[] = [];

  before(async function () {
    t = await startTestServer();
    ({ browser, profile } = await launchChromium({ viewport: { width: 1440, height: 1050 }, deviceScaleFactor: 1 }));
  });
  after(async () => {
    await Promise.all(cars.map((c) => c.close()));
    await browser?.close();
    await t?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('signs in from ?token=, shows what a test car just sent, updates live, and is screenshotted', async () => {
    const carA = await CarClient.connect(t.carOptions(VIN_A, { networkInterface: 'wifi' }));
    const carB = await CarClient.connect(t.carOptions(VIN_B));
    cars.push(carA, carB);
    for (let step = 0; step < 6; step++) expect((await carA.sendRecord('V', frame(VIN_A, step))).kind).to.equal('ack');
    await carB.sendRecord('V', frame(VIN_B, 0));

    const page = await browser.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    // The page must live within its Content-Security-Policy: any blocked script, style, image or socket
    // is recorded here (as well as logged to the console).
    await page.addInitScript({
      content: "window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
    });

    const token = await t.mintToken([VIN_A, VIN_B], 3600);
    await page.goto(`${t.dashboardBaseUrl}/?token=${token}`);
    // The token leaves the address bar at once.
    expect(page.url()).not.to.include('token=');

    const speed = page.locator('.tile[data-field="VehicleSpeed"] [data-value]');
    await speed.filter({ hasText: /^45$/ }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#vin-title').textContent()).to.equal(VIN_A);
    expect(await page.locator('.tile[data-field="Soc"] [data-value]').textContent()).to.equal('81.5');
    expect(await page.locator('#vin-badge').textContent()).to.equal('Connected');
    expect(await page.locator('#link-state').textContent()).to.equal('Live');
    expect(await page.locator('#vehicle-list li').count()).to.equal(2);

    // Live, without a reload: more of the drive and an alert.
    for (let step = 6; step < 14; step++) await carA.sendRecord('V', frame(VIN_A, step));
    await carA.sendRecord('alerts', encodeVehicleAlerts({ vin: VIN_A, createdAt: new Date(), alerts: [{ name: 'UI_a004_TPMS_Hard_Warning', audiences: ['Customer'], startedAt: new Date() }] }));
    await speed.filter({ hasText: /^53$/ }).waitFor({ timeout: 10_000 });
    await page.locator('#feed li[data-kind="alert"]').first().waitFor({ timeout: 10_000 });
    expect(await page.locator('#feed li[data-kind="alert"] .feed-title').first().textContent()).to.equal('UI_a004_TPMS_Hard_Warning');
    expect(await page.locator('.tire[data-field="TpmsPressureRr"]').getAttribute('data-low')).to.equal('true');

    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, 'dashboard.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(existsSync(file)).to.equal(true);
    expect(consoleErrors).to.deep.equal([]);
    expect(await page.evaluate('window.cspViolations')).to.deep.equal([]);
    const headers = (await page.request.get(`${t.dashboardBaseUrl}/`)).headers();
    expect(headers['content-security-policy']).to.include("default-src 'none'");
    expect(headers['strict-transport-security']).to.match(/^max-age=/);
    await page.close();
  });

  it('shows why a bad token is refused', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.dashboardBaseUrl}/?token=not-a-token`);
    await page.locator('#sign-in-error').filter({ hasText: 'does not look like a token' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#app').isHidden()).to.equal(true);
    await page.close();
  });
});
