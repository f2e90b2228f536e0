import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { WatchdogEvent } from '../../src/actors/vehicle-registry.js';
import { loadConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { ensureDevPki } from '../../src/pki/dev-certs.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { startServer } from '../../src/server.js';
import { CarClient } from '../../src/sim/car-client.js';
import { appKeyFromPem } from '../../src/tesla/ss256.js';
import { PRESETS } from '../../src/tesla/telemetry-config.js';
import { PUBLIC_KEY_PATH } from '../../src/vehicle/vehicle-listener.js';
import { TEST_VINS, startTestServer, testEnv, testPki, type TestServer } from '../helpers/test-server.js';
import { FakeFleetApi } from './tesla-fake-fleet-api.js';
import { eventually } from '../helpers/eventually.js';

const MAIN = fileURLToPath(new URL('../../main.js', import.meta.url));
const [VIN_A, VIN_B] = TEST_VINS;
const TOKEN = 'server-test-access-token-0123';

function httpsGet(t: TestServer, path: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: t.server.vehiclePort, path, servername: 'localhost', ca: readFileSync(t.pki.caChain) },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function speedPayload(vin: string, speed: number): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: speed } }] });
}

async function counterValue(counter: { get(): Promise<{ values: Array<{ labels: Partial<Record<string, string | number>>; value: number }> }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

describe('Tesla setup, server side (real server on loopback)', function () {
  this.timeout(30_000);

  describe('public key route and self-check', () => {
    let t: TestServer;
    let publicPem: string;

    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tesla-server-test-'));
      publicPem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
      writeFileSync(join(dir, 'public-key.pem'), publicPem);
      // SELF_CHECK on: the server checks its own dev chain as a car would before it starts.
      t = await startTestServer({ env: { SELF_CHECK: 'true', TESLA_PUBLIC_KEY_FILE: join(dir, 'public-key.pem') } });
    });
    after(() => t.stop());

    it('serves the app public key to a client without a certificate', async () => {
      const res = await httpsGet(t, PUBLIC_KEY_PATH);
      expect(res.status).to.equal(200);
      expect(res.body).to.equal(publicPem);
      expect(res.type).to.equal('application/x-pem-file');
    });

    it('still refuses every other route and the WebSocket to a client without a certificate', async () => {
      for (const path of ['/status', '/', '/.well-known/appspecific/other.pem', '/anything']) {
        const res = await httpsGet(t, path);
        expect(res.status, path).to.equal(401);
        expect(res.body, path).to.contain('client certificate refused: no_certificate');
      }
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`wss://127.0.0.1:${t.server.vehiclePort}/`, { servername: 'localhost', ca: readFileSync(t.pki.caChain) } as WebSocket.ClientOptions);
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('open', () => reject(new Error('a car without a certificate was let in')));
        ws.on('error', () => undefined);
      });
      expect(status).to.equal(401);
    });

    it('refuses to start when the ca chain does not verify the served certificate', async () => {
      const env = await testEnv({ SELF_CHECK: 'true' });
      const config = loadConfig({ env, cwd: mkdtempSync(join(tmpdir(), 'tesla-self-check-')) });
      const other = await ensureDevPki({ dir: mkdtempSync(join(tmpdir(), 'tesla-other-pki-')), domain: 'localhost', vins: [] });
      // After loading: what a car is given no longer matches what the server presents.
      config.tls.caChainFile = other.caChain;
      const error = await startServer(config, { logger: silentLogger() }).catch((e: unknown) => e as Error);
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.match(/^self-check failed: a car would refuse this server: the ca chain does not lead to the server's root/);
    });

    it('the real server process exits non-zero when the ca chain is wrong', async () => {
      const pki = await testPki();
      // Only the intermediate, no root: the loader accepts it, a car (and the self-check) does not.
      const env = { ...(await testEnv({ SELF_CHECK: 'true', TLS_CA_CHAIN_FILE: pki.serverCaCert })), PATH: process.env.PATH ?? '' };
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [MAIN], { env, cwd: mkdtempSync(join(tmpdir(), 'tesla-main-')), stdio: ['ignore', 'ignore', 'pipe'] });
        let text = '';
        child.stderr.on('data', (chunk: Buffer) => (text += chunk));
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('error', reject);
        child.on('close', (exitCode) => {
          clearTimeout(timer);
          resolve({ code: exitCode, stderr: text });
        });
      });
      expect(code).to.equal(1);
      expect(stderr).to.contain('could not start: self-check failed');
      expect(stderr).to.contain('the ca chain holds no root');
    });
  });

  describe('watchdog', () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ env: { WATCHDOG_STALE_AFTER_SECONDS: '2', WATCHDOG_SWEEP_INTERVAL_SECONDS: '1' } });
    });
    after(() => t.stop());

    it('emits stale for a car that stops sending and fresh when it sends again', async () => {
      const events: WatchdogEvent[] = [];
      t.server.registry.on('watchdog', (event) => {
        if (event.vin === VIN_A) events.push(event);
      });
      const car = await CarClient.connect(t.carOptions(VIN_A));
      expect((await car.sendRecord('V', speedPayload(VIN_A, 10))).kind).to.equal('ack');
      await eventually(() => events.length === 1, 6000, 'stale event');
      expect(events[0]!.event).to.equal('stale');
      expect((await car.sendRecord('V', speedPayload(VIN_A, 11))).kind).to.equal('ack');
      await eventually(() => events.length === 2, 3000, 'fresh event');
      expect(events[1]!.event).to.equal('fresh');
      expect(events[1]!.lastSeenAt).to.be.greaterThan(events[0]!.lastSeenAt);
      expect(await counterValue(t.server.metrics.actors.watchdogEvents, { event: 'stale' })).to.be.at.least(1);
      await car.close();
    });
  });

  describe('auto-configure against a fake Fleet API', () => {
    let t: TestServer;
    let api: FakeFleetApi;
    const staleA: WatchdogEvent[] = [];

    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tesla-auto-'));
      const privatePem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      writeFileSync(join(dir, 'private-key.pem'), privatePem, { mode: 0o600 });
      api = await new FakeFleetApi(TOKEN, 'unused-partner-token', appKeyFromPem(privatePem).publicKey).start();
      api.vehicle(VIN_A, {
        synced: true,
        config: { hostname: 'old.example.com', port: 443, ca: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n', fields: { Soc: { interval_seconds: 60 } } },
        errors: [{ name: 'client', error: 'x509: certificate signed by unknown authority', vin: VIN_A, created_at: '2026-01-01T00:00:00Z' }],
      });
      api.vehicle(VIN_B, { keyPaired: false });
      t = await startTestServer({
        env: {
          TESLA_AUTO_CONFIGURE: 'true',
          TESLA_VIN: `${VIN_A},${VIN_B}`,
          TESLA_ACCESS_TOKEN: TOKEN,
          TESLA_API_BASE_URL: api.url,
          TESLA_PRIVATE_KEY_FILE: join(dir, 'private-key.pem'),
          TESLA_CONFIG_PRESET: 'minimal',
          TESLA_ERRORS_POLL_INTERVAL_SECONDS: '1',
          WATCHDOG_STALE_AFTER_SECONDS: '2',
          WATCHDOG_SWEEP_INTERVAL_SECONDS: '1',
        },
        overrides: { teslaClientHooks: { baseDelayMs: 10 } },
      });
      t.server.registry.on('watchdog', (event) => {
        if (event.vin === VIN_A) staleA.push(event);
      });
    });
    after(async () => {
      await t.stop();
      await api.stop();
    });

    const pushesTo = (vin: string): number =>
      api.callsTo('fleet_telemetry_config_jws').filter((r) => (r.body as { vins: string[] }).vins.includes(vin)).length;

    it('pushes our config to a car whose config differs and explains the car that was skipped', async () => {
      await t.server.tesla!.ready;
      expect(api.violations).to.deep.equal([]);
      const pushed = api.vehicles.get(VIN_A)!.config!;
      expect(pushed).to.deep.include({ hostname: 'localhost', port: t.server.vehiclePort, prefer_typed: true, delivery_policy: 'latest' });
      expect(pushed.fields).to.deep.equal(PRESETS.minimal);
      expect(pushed.ca).to.equal(readFileSync(t.pki.caChain, 'utf8'));
      expect(await counterValue(t.server.metrics.tesla.configPushes, { result: 'updated' })).to.equal(1);
      expect(await counterValue(t.server.metrics.tesla.configPushes, { result: 'skipped' })).to.equal(1);
      expect(await counterValue(t.server.metrics.tesla.teslaApiCalls, { endpoint: 'fleet_telemetry_config_jws', status_class: '2xx' })).to.equal(1);
    });

    it('counts each error Tesla reports once, however often it is polled', async () => {
      await t.server.tesla!.ready;
      const polled = api.callsTo('fleet_telemetry_errors').length;
      await eventually(() => api.callsTo('fleet_telemetry_errors').length >= polled + 2, 5000, 'another errors poll');
      expect(await counterValue(t.server.metrics.tesla.teslaReportedErrors)).to.equal(1);
    });

    it('on stale re-pushes to a configured car that has not synced, at most once per interval', async () => {
      // VIN_A has been silent since start: the watchdog marks it stale within a few seconds.
      await eventually(() => staleA.some((e) => e.event === 'stale'), 6000, 'stale event for the configured car');
      await t.server.tesla!.lastWatchdogAction();
      expect(pushesTo(VIN_A)).to.equal(2);

      const car = await CarClient.connect(t.carOptions(VIN_A));
      await car.sendRecord('V', speedPayload(VIN_A, 1));
      await eventually(() => staleA.filter((e) => e.event === 'stale').length === 2, 6000, 'second stale event');
      await t.server.tesla!.lastWatchdogAction();
      expect(pushesTo(VIN_A), 'rate-limited').to.equal(2);
      await car.close();
    });
  });
});
