import { expect } from 'chai';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { freePort } from '../../tools/local-process.js';

/** Page-side code in page.evaluate runs in the browser, where this exists. */
declare const document: {
  getElementById(id: string): { textContent: string | null; dataset: Record<string, string | undefined> } | null;
  documentElement: { scrollWidth: number; clientWidth: number };
};

const VIN = TEST_VINS[0];
/** The story parks (up to 20 s), drives 90 s, charges 60 s, parks: 200 s hold one trip and one charge. */
const STORY_SECONDS = 200;

describe('history on the web dashboard in headless Chromium (desktop and phone)', function () {
  this.timeout(90_000);
  let t: TestServer;
  let browser: BrowserContext;
  let profile: string;
  let car: CarClient;
  const story = new VehicleStory({ seed: 11 });
  const start = Date.now() - STORY_SECONDS * 1000;
  let sent = 0;

  async function drive(until: number): Promise<void> {
    for (; sent < until; sent++) {
      const frame = encodeVehicleData({ vin: VIN, createdAt: new Date(start + sent * 1000), data: story.next() as never });
      expect((await car.sendRecord('V', frame)).kind).to.equal('ack');
    }
  }

  function watchConsole(page: Page): string[] {
    const errors: string[] = [];
    page.on('console', (message) => {
      // The tile server is unreachable on purpose; everything else is a real error.
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    return errors;
  }

  let tilePort = 0;

  before(async function () {
    // A loopback port nothing listens on: tile requests fail at once, as without internet.
    tilePort = await freePort();
    t = await startTestServer({ env: { MAP_TILE_URL: `http://127.0.0.1:${tilePort}/{z}/{x}/{y}.png` } });
    car = await CarClient.connect(t.carOptions(VIN));
    ({ browser, profile } = await launchChromium({ viewport: { width: 1440, height: 1050 }, deviceScaleFactor: 1 }));
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await car?.close();
    await browser?.close();
    await t?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('charts the history of a simulated drive, lists the trip when the car parks, opens its track; grid when tiles fail', async () => {
    // Parked and most of the drive before the page opens.
    await drive(90);
    const page = await browser.newPage();
    const errors = watchConsole(page);
    const response = await page.goto(`${t.dashboardBaseUrl}/?token=${await t.mintToken([VIN], 3600)}`);
    // The page may load map tiles from the configured tile server, and from nowhere else.
    expect(response!.headers()['content-security-policy']).to.include(`img-src 'self' data: http://127.0.0.1:${tilePort};`);
    await page.locator('#history-status').filter({ hasText: /points since/ }).waitFor({ timeout: 15_000 });
    for (const id of ['chart-battery', 'chart-speed', 'chart-charging', 'chart-temps']) {
      await page.locator(`#${id} .u-wrap canvas`).waitFor({ timeout: 10_000 });
    }
    expect(await page.locator('#trips li').first().textContent()).to.match(/Driving now|No trip yet/);

    // The rest of the drive, the park, the charge: the trip and the charge show up without a reload.
    await drive(STORY_SECONDS);
    const trip = page.locator('#trips button[data-trip]');
    await trip.first().waitFor({ timeout: 15_000 });
    expect(await trip.count()).to.equal(1);
    expect(await trip.first().textContent()).to.match(/\d+\.\d km/);
    await page.locator('#charges [data-charge]').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('#charges [data-charge]').first().textContent()).to.match(/kWh · peak 1\d\.\d kW/);

    // The battery chart has points up to the live edge (series drawn with data, not an empty frame).
    const points = await page.evaluate(() => Number((document.getElementById('history-status')?.textContent ?? '').split(' ')[0]));
    expect(points).to.be.greaterThan(20);

    await trip.first().click();
    await page.locator('#trip-detail').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#trip-figures').textContent()).to.match(/km .*Wh\/km/);
    await page.locator('#chart-trip-speed .u-wrap canvas').waitFor({ timeout: 10_000 });

    // No internet: the tiles fail and the grid canvas stays the map.
    await page.waitForFunction(() => document.getElementById('map')?.dataset.tiles === 'failed', undefined, { timeout: 10_000 });
    expect(await page.locator('#track').isVisible()).to.equal(true);
    expect(await page.locator('#trip-track').isVisible()).to.equal(true);

    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-history-desktop.png'), fullPage: true });
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('fits a 390 px phone: no sideways scroll, the badges in view, charts rendered', async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const errors = watchConsole(page);
    await page.goto(`${t.dashboardBaseUrl}/?token=${await t.mintToken([VIN], 3600)}`);
    await page.locator('#history-status').filter({ hasText: /points since/ }).waitFor({ timeout: 15_000 });
    await page.locator('#chart-battery .u-wrap canvas').waitFor({ timeout: 10_000 });
    await page.locator('#trips button[data-trip]').first().waitFor({ timeout: 10_000 });
    const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(widths.scroll, 'page width').to.be.at.most(widths.client);
    for (const selector of ['#link-state', '#vin-badge', '.tile[data-field="Gear"]', '.tile[data-field="EstBatteryRange"]', '#chart-battery']) {
      const box = await page.locator(selector).boundingBox();
      expect(box, selector).to.not.equal(null);
      expect(box!.x, `${selector} left`).to.be.at.least(0);
      expect(box!.x + box!.width, `${selector} right edge`).to.be.at.most(390);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-history-phone.png'), fullPage: true });
    expect(errors).to.deep.equal([]);
    await page.close();
  });
});
