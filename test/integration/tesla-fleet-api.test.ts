import { assert, expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki, type DevPkiFiles } from '../../src/pki/dev-certs.js';
import { FleetApiClient, FleetApiError, retryAfterMs } from '../../src/tesla/fleet-api.js';
import { appKeyFromPem, signTelemetryConfigJws, type AppKeyPair } from '../../src/tesla/ss256.js';
import { buildTelemetryConfig, PRESETS, type TelemetryConfig } from '../../src/tesla/telemetry-config.js';
import { createTeslaClients } from '../../src/tesla/tesla-clients.js';
import { FakeCommandProxy, FakeFleetApi } from './tesla-fake-fleet-api.js';

const TOKEN = 'user-access-token-0123456789';
const PARTNER = 'partner-token-0123456789';
const VIN_PAIRED = '5YJ3E7EB0LF000001';
const VIN_UNPAIRED = '5YJ3E7EB0LF000002';
const VIN_OLD_FIRMWARE = '5YJ3E7EB0LF000003';

describe('Tesla Fleet API client against a local fake Fleet API and proxy', function () {
  this.timeout(20000);
  let api: FakeFleetApi;
  let proxy: FakeCommandProxy;
  let key: AppKeyPair;
  let keyFile: string;
  let pki: DevPkiFiles;
  let config: TelemetryConfig;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tesla-api-test-'));
    pki = await ensureDevPki({ dir: join(dir, 'pki'), domain: 'telemetry.example.com', vins: [] });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    keyFile = join(dir, 'private-key.pem');
    (await import('node:fs')).writeFileSync(keyFile, pem, { mode: 0o600 });
    key = appKeyFromPem(pem);
    config = buildTelemetryConfig({
      hostname: 'telemetry.example.com',
      port: 4443,
      caPem: readFileSync(pki.caChain, 'utf8'),
      fields: PRESETS.minimal,
      alertTypes: ['service'],
    });
  });

  beforeEach(async () => {
    api = await new FakeFleetApi(TOKEN, PARTNER, key.publicKey).start();
    proxy = await new FakeCommandProxy(api, key).start();
    api.vehicle(VIN_PAIRED);
    api.vehicle(VIN_UNPAIRED, { keyPaired: false });
    api.vehicle(VIN_OLD_FIRMWARE, { firmwareOk: false });
  });

  afterEach(async () => {
    await proxy.stop();
    await api.stop();
  });

  const settings = (extra: Record<string, unknown> = {}) => ({
    accessToken: TOKEN,
    vins: [],
    apiBaseUrl: api.url,
    publicKeyFile: '',
    autoConfigure: false,
    partnerToken: '',
    proxyUrl: '',
    proxyCaFile: '',
    privateKeyFile: '',
    configPreset: 'minimal',
    configFieldsFile: '',
    alertTypes: 'service',
    configExpiryDays: 0,
    requestTimeoutMs: 5000,
    errorsPollIntervalSeconds: 0,
    repushMinIntervalSeconds: 3600,
    ...extra,
  });

  it('pushes through the vehicle-command proxy, which signs and forwards; skipped vehicles come back by reason', async () => {
    const clients = createTeslaClients(settings({ proxyUrl: proxy.url }));
    expect(clients.pusher.mode).to.equal('proxy');
    const result = await clients.pusher.push([VIN_PAIRED, VIN_UNPAIRED, VIN_OLD_FIRMWARE], config);
    expect(result.updated_vehicles).to.equal(1);
    expect(result.skipped_vehicles.missing_key).to.deep.equal([VIN_UNPAIRED]);
    expect(result.skipped_vehicles.unsupported_firmware).to.deep.equal([VIN_OLD_FIRMWARE]);
    expect(proxy.violations).to.deep.equal([]);
    expect(api.violations).to.deep.equal([]);
    const [sent] = proxy.requests;
    assert.exists(sent);
    expect(sent.path).to.equal('/api/1/vehicles/fleet_telemetry_config');
    expect(sent.authorization).to.equal(`Bearer ${TOKEN}`);
    expect((sent.body as { config: { port: unknown } }).config.port).to.equal(4443);
    expect(api.vehicles.get(VIN_PAIRED)?.config).to.deep.include({ hostname: 'telemetry.example.com', port: 4443, prefer_typed: true, delivery_policy: 'latest' });
  });

  it('pushes a config it signed itself (Tesla.SS256) to fleet_telemetry_config_jws', async () => {
    const clients = createTeslaClients(settings({ privateKeyFile: keyFile }));
    expect(clients.pusher.mode).to.equal('signed');
    const result = await clients.pusher.push([VIN_PAIRED], config);
    expect(result.updated_vehicles).to.equal(1);
    expect(api.violations).to.deep.equal([]);
    const [sent] = api.callsTo('fleet_telemetry_config_jws');
    assert.exists(sent);
    expect(Object.keys(sent.body as object).sort()).to.deep.equal(['token', 'vins']);
    const stored = api.vehicles.get(VIN_PAIRED)?.config as Record<string, unknown>;
    expect(stored.ca).to.equal(readFileSync(pki.caChain, 'utf8'));
    expect(stored.fields).to.deep.equal(PRESETS.minimal);
  });

  it('the fake refuses a JWS signed by a key that is not the app key', async () => {
    const client = new FleetApiClient({ baseUrl: api.url, accessToken: TOKEN, timeoutMs: 5000 });
    const other = appKeyFromPem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const error = await client.pushConfigJws([VIN_PAIRED], signTelemetryConfigJws({ ...config }, other)).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(FleetApiError);
    expect((error as FleetApiError).status).to.equal(400);
    expect((error as FleetApiError).message).to.match(/different key/);
  });

  it('retries a 429 after the Retry-After Tesla gives, then succeeds', async () => {
    api.rateLimit = { remaining: 1, retryAfter: '1' };
    const attempts: string[] = [];
    const client = new FleetApiClient({ baseUrl: api.url, accessToken: TOKEN, timeoutMs: 5000, baseDelayMs: 10, onAttempt: (e, s) => attempts.push(`${e} ${s}`) });
    const started = Date.now();
    const status = await client.configStatus(VIN_PAIRED);
    expect(Date.now() - started).to.be.at.least(950);
    expect(status).to.deep.equal({ synced: false, config: null, limit_reached: false, key_paired: true });
    expect(attempts).to.deep.equal(['fleet_telemetry_config_get 4xx', 'fleet_telemetry_config_get 2xx']);
  });

  it('retries 5xx with backoff and gives up with Tesla\'s message after the last attempt', async () => {
    api.failures = 2;
    const client = new FleetApiClient({ baseUrl: api.url, accessToken: TOKEN, timeoutMs: 5000, baseDelayMs: 10, maxAttempts: 3 });
    expect((await client.configStatus(VIN_PAIRED)).key_paired).to.equal(true);
    api.failures = 5;
    const error = (await client.configStatus(VIN_PAIRED).catch((e: unknown) => e)) as FleetApiError;
    expect(error).to.be.instanceOf(FleetApiError);
    expect(error.status).to.equal(503);
    expect(error.message).to.contain('after 3 attempts').and.to.contain('upstream_unavailable: try again');
  });

  it('does not wait for a Retry-After beyond its limit, and says how long Tesla asked for', async () => {
    api.rateLimit = { remaining: 1, retryAfter: '120' };
    const client = new FleetApiClient({ baseUrl: api.url, accessToken: TOKEN, timeoutMs: 5000, maxDelayMs: 5000 });
    const error = (await client.configStatus(VIN_PAIRED).catch((e: unknown) => e)) as FleetApiError;
    expect(error.message).to.contain('retry after 120 s');
  });

  it('shows Tesla\'s message for a refused token and never the token itself', async () => {
    const secret = 'wrong-token-SENTINEL-abcdef';
    const client = new FleetApiClient({ baseUrl: api.url, accessToken: secret, timeoutMs: 5000 });
    const error = (await client.configStatus(VIN_PAIRED).catch((e: unknown) => e)) as FleetApiError;
    expect(error.status).to.equal(401);
    expect(error.message).to.contain('invalid bearer token').and.to.contain('TESLA_ACCESS_TOKEN');
    expect(JSON.stringify({ message: error.message, stack: error.stack, tesla: error.teslaMessage })).to.not.contain('SENTINEL');
  });

  it('runs config writes one at a time (Tesla allows one fleet_telemetry_config call in flight)', async () => {
    api.configDelayMs = 150;
    const clients = createTeslaClients(settings({ privateKeyFile: keyFile }));
    const results = await Promise.all([
      clients.pusher.push([VIN_PAIRED], config),
      clients.api.deleteConfig(VIN_PAIRED),
      clients.pusher.push([VIN_PAIRED], config),
    ]);
    expect(api.maxConcurrentConfigCalls).to.equal(1);
    expect(api.violations).to.deep.equal([]);
    expect(results[1]).to.deep.equal({ updated_vehicles: 1 });
    expect(api.vehicles.get(VIN_PAIRED)?.config).to.not.equal(null);
  });

  it('reads config status, deletes, and lists errors per vehicle and for the partner', async () => {
    api.vehicle(VIN_PAIRED, { synced: true, config: { ...config }, errors: [{ name: 'client-id', error: 'x509: certificate signed by unknown authority', vin: VIN_PAIRED }] });
    api.partnerErrors = [{ name: 'client-id', error: 'dial tcp: lookup telemetry.example.com: no such host', vin: VIN_UNPAIRED, created_at: '2026-01-01T00:00:00Z' }];
    const clients = createTeslaClients(settings({ partnerToken: PARTNER }));
    const status = await clients.api.configStatus(VIN_PAIRED);
    expect(status.synced).to.equal(true);
    expect(status.config).to.deep.include({ port: 4443 });
    expect(await clients.api.vehicleErrors(VIN_PAIRED)).to.deep.equal([{ name: 'client-id', error: 'x509: certificate signed by unknown authority', vin: VIN_PAIRED }]);
    const partnerErrors = await clients.telemetryErrors([]);
    expect(partnerErrors[0]).to.deep.include({ vin: VIN_UNPAIRED, created_at: '2026-01-01T00:00:00Z' });
    expect(api.callsTo('partner_accounts')[0]!.authorization).to.equal(`Bearer ${PARTNER}`);
    expect(await clients.api.deleteConfig(VIN_PAIRED)).to.deep.equal({ updated_vehicles: 1 });
    const missing = (await clients.api.configStatus('5YJ3E7EB0LF000009').catch((e: unknown) => e)) as FleetApiError;
    expect(missing.status).to.equal(404);
    expect(missing.message).to.contain('vehicle not found');
    expect(api.violations).to.deep.equal([]);
  });

  it('reads Retry-After in seconds and as an HTTP date', () => {
    expect(retryAfterMs('3')).to.equal(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).to.equal(6000);
    expect(retryAfterMs(undefined)).to.equal(null);
    expect(retryAfterMs('soon')).to.equal(null);
  });
});
