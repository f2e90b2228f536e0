import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import client from 'prom-client';
import type { WatchdogEvent } from '../../src/actors/vehicle-registry.js';
import type { AppConfig, TeslaStageConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/log/logger.js';
import { startTeslaAutomation, type AutomationMetrics, type TeslaAutomation } from '../../src/tesla/auto-configure.js';
import { ConfigCheck, ConfigPushes } from '../../src/tesla/config-sync.js';
import { ReportedErrors } from '../../src/tesla/reported-errors.js';
import { appKeyFromPem } from '../../src/tesla/ss256.js';
import { createTeslaClients, type TeslaClients } from '../../src/tesla/tesla-clients.js';
import { buildTelemetryConfig, PRESETS, type TelemetryConfig } from '../../src/tesla/telemetry-config.js';
import { WatchdogRepush } from '../../src/tesla/watchdog-repush.js';
import { FakeFleetApi } from '../integration/tesla-fake-fleet-api.js';

/**
 * The parts of TESLA_AUTO_CONFIGURE one by one, with the real Fleet API client against the fake Fleet
 * API on loopback and a clock the test moves (the server-level test is in tesla-server.test.ts).
 */

const TOKEN = 'auto-configure-unit-token-0123';
const [VIN_A, VIN_B, VIN_C] = ['5YJ3E1EA7KF000001', '5YJ3E1EA7KF000002', '5YJ3E1EA7KF000003'];
const CA = '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n';
const DAY = 86_400;

interface Harness {
  api: FakeFleetApi;
  settings: AppConfig['tesla'];
  clients: TeslaClients;
  logs: Array<Record<string, unknown>>;
  logger: ReturnType<typeof createLogger>;
  registry: client.Registry;
  pushes: client.Counter<'result'>;
  reported: client.Counter;
  clock: { ms: number };
  desired: () => TelemetryConfig;
}

async function harness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tesla-auto-unit-'));
  const privatePem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir, 'private-key.pem'), privatePem, { mode: 0o600 });
  const api = await new FakeFleetApi(TOKEN, 'unused-partner-token', appKeyFromPem(privatePem).publicKey).start();
  const settings = {
    accessToken: TOKEN,
    apiBaseUrl: api.url,
    proxyUrl: '',
    proxyCaFile: '',
    privateKeyFile: join(dir, 'private-key.pem'),
    partnerToken: '',
    requestTimeoutMs: 5000,
  } as AppConfig['tesla'];
  const clients = createTeslaClients(settings, { baseDelayMs: 5, maxDelayMs: 20 });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const registry = new client.Registry();
  const clock = { ms: Date.UTC(2026, 0, 1) };
  return {
    api,
    settings,
    clients,
    logs,
    logger: createLogger('info', sink),
    registry,
    pushes: new client.Counter({ name: 'pushes_total', help: 'h', labelNames: ['result'], registers: [registry] }),
    reported: new client.Counter({ name: 'reported_total', help: 'h', registers: [registry] }),
    clock,
    desired: () =>
      buildTelemetryConfig({ hostname: 'cars.example.com', port: 4443, caPem: CA, fields: PRESETS.minimal, alertTypes: [], exp: Math.floor(clock.ms / 1000) + 30 * DAY }),
  };
}

async function count(counter: client.Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

const events = (h: Harness, name: string): Array<Record<string, unknown>> => h.logs.filter((line) => line.event === name);

describe('auto-configure parts (fake Fleet API on loopback)', () => {
  let h: Harness;
  let check: ConfigCheck;
  let pushes: ConfigPushes;
  beforeEach(async () => {
    h = await harness();
    check = new ConfigCheck({ api: h.clients.api, desired: h.desired, lifetimeSeconds: 30 * DAY, domain: 'cars.example.com', now: () => h.clock.ms, logger: h.logger });
    pushes = new ConfigPushes({ pusher: h.clients.pusher, desired: h.desired, domain: 'cars.example.com', counter: h.pushes, logger: h.logger });
  });
  afterEach(() => h.api.stop());

  describe('ConfigCheck (the checker)', () => {
    it('says why a car needs our config, or null when it holds it synced', async () => {
      const ours = { ...h.desired() } as unknown as Record<string, unknown>;
      h.api.vehicle(VIN_A, { config: null });
      h.api.vehicle(VIN_B, { config: { ...ours, hostname: 'old.example.com' }, synced: true });
      h.api.vehicle(VIN_C, { config: ours, synced: true });
      expect(await check.reasonToPush(VIN_A)).to.equal('the car has no telemetry config from this app');
      expect(await check.reasonToPush(VIN_B)).to.equal('hostname is "old.example.com", want "cars.example.com"');
      expect(await check.reasonToPush(VIN_C)).to.equal(null);
      h.api.vehicles.get(VIN_C)!.synced = false;
      expect(await check.reasonToPush(VIN_C)).to.equal('config not synced by the car');
    });

    it('counts a config in its last quarter of life as outdated, by the injected clock', async () => {
      h.api.vehicle(VIN_A, { config: { ...h.desired() } as unknown as Record<string, unknown>, synced: true });
      expect(await check.reasonToPush(VIN_A)).to.equal(null);
      h.clock.ms += 23 * DAY * 1000;
      expect(await check.reasonToPush(VIN_A)).to.equal('config expires soon');
    });

    it('warns with pairing advice when the virtual key is not paired, and throws when Tesla cannot be asked', async () => {
      h.api.vehicle(VIN_A, { keyPaired: false });
      await check.reasonToPush(VIN_A);
      const warning = events(h, 'tesla_key_not_paired');
      expect(warning).to.have.length(1);
      expect(warning[0]!.advice).to.contain('https://tesla.com/_ak/cars.example.com');
      const error = await check.reasonToPush(VIN_B).catch((e: unknown) => e as Error);
      expect(error).to.be.instanceOf(Error);
    });
  });

  describe('ConfigPushes (the pusher)', () => {
    it('counts updated and skipped cars and explains each skip', async () => {
      h.api.vehicle(VIN_A);
      h.api.vehicle(VIN_B, { keyPaired: false });
      await pushes.push([VIN_A, VIN_B], 'start-up');
      expect(h.api.violations).to.deep.equal([]);
      expect(h.api.vehicles.get(VIN_A)!.config).to.deep.include({ hostname: 'cars.example.com', port: 4443 });
      expect(await count(h.pushes, { result: 'updated' })).to.equal(1);
      expect(await count(h.pushes, { result: 'skipped' })).to.equal(1);
      const skipped = events(h, 'tesla_config_skipped');
      expect(skipped.map((line) => [line.vin, line.reason])).to.deep.equal([[VIN_B, 'missing_key']]);
      expect(events(h, 'tesla_config_pushed')[0]).to.deep.include({ reason: 'start-up', mode: 'signed', updated: 1 });
    });

    it('counts a failed push per car and does not throw', async () => {
      h.api.vehicle(VIN_A);
      h.api.failures = 100;
      await pushes.push([VIN_A, VIN_B], 'start-up');
      expect(await count(h.pushes, { result: 'failed' })).to.equal(2);
      expect(events(h, 'tesla_config_push_failed')).to.have.length(1);
    });

    it('pushes nothing once stopped', async () => {
      h.api.vehicle(VIN_A);
      pushes.stop();
      await pushes.push([VIN_A], 'start-up');
      expect(h.api.callsTo('fleet_telemetry_config_jws')).to.have.length(0);
    });
  });

  describe('ReportedErrors', () => {
    it('counts each error Tesla reports once across polls, and survives a failed poll', async () => {
      h.api.vehicle(VIN_A, { errors: [{ name: 'client', error: 'x509: certificate signed by unknown authority', vin: VIN_A, created_at: '2026-01-01T00:00:00Z' }] });
      const errors = new ReportedErrors({ fetch: () => h.clients.telemetryErrors([VIN_A]), counter: h.reported, logger: h.logger });
      await errors.poll();
      await errors.poll();
      expect(await count(h.reported)).to.equal(1);
      h.api.vehicles.get(VIN_A)!.errors!.push({ name: 'client', error: 'EOF', vin: VIN_A, created_at: '2026-01-01T00:01:00Z' });
      h.api.failures = 100;
      await errors.poll();
      expect(events(h, 'tesla_errors_poll_failed')).to.have.length(1);
      h.api.failures = 0;
      await errors.poll();
      expect(await count(h.reported)).to.equal(2);
      const kinds = events(h, 'tesla_reported_error').map((line) => line.kind);
      expect(kinds).to.have.length(2);
      expect(kinds[0]).to.not.equal(kinds[1]);
    });
  });

  describe('WatchdogRepush', () => {
    it('re-checks a silent configured car, re-pushes when it lacks our config, at most once per interval', async () => {
      h.api.vehicle(VIN_A, { config: null });
      const repush = new WatchdogRepush({ vins: new Set([VIN_A]), minIntervalMs: 3_600_000, check, pushes, now: () => h.clock.ms, logger: h.logger });
      const jwsPushes = (): number => h.api.callsTo('fleet_telemetry_config_jws').length;

      repush.onWatchdog({ vin: VIN_A, event: 'stale', lastSeenAt: 0 });
      await repush.settled();
      expect(jwsPushes()).to.equal(1);

      // Within the interval: not even asked.
      h.clock.ms += 3_599_000;
      h.api.vehicles.get(VIN_A)!.config = null;
      const statusCalls = h.api.callsTo('fleet_telemetry_config').length;
      repush.onWatchdog({ vin: VIN_A, event: 'stale', lastSeenAt: 0 });
      await repush.settled();
      expect(jwsPushes()).to.equal(1);
      expect(h.api.callsTo('fleet_telemetry_config').length).to.equal(statusCalls);
      expect(events(h, 'watchdog_recheck_rate_limited')[0]).to.deep.include({ vin: VIN_A, nextCheckInSeconds: 1 });

      // Past it: checked and pushed again.
      h.clock.ms += 1_000;
      repush.onWatchdog({ vin: VIN_A, event: 'stale', lastSeenAt: 0 });
      await repush.settled();
      expect(jwsPushes()).to.equal(2);
    });

    it('ignores fresh events, cars it does not configure, and everything after stop()', async () => {
      h.api.vehicle(VIN_A, { config: null });
      h.api.vehicle(VIN_B, { config: null });
      const repush = new WatchdogRepush({ vins: new Set([VIN_A]), minIntervalMs: 0, check, pushes, now: () => h.clock.ms, logger: h.logger });
      repush.onWatchdog({ vin: VIN_A, event: 'fresh', lastSeenAt: 0 });
      repush.onWatchdog({ vin: VIN_B, event: 'stale', lastSeenAt: 0 });
      repush.stop();
      repush.onWatchdog({ vin: VIN_A, event: 'stale', lastSeenAt: 0 });
      await repush.settled();
      expect(h.api.requests).to.have.length(0);
    });

    it('leaves a car that holds our config synced alone', async () => {
      h.api.vehicle(VIN_A, { config: { ...h.desired() } as unknown as Record<string, unknown>, synced: true });
      const repush = new WatchdogRepush({ vins: new Set([VIN_A]), minIntervalMs: 0, check, pushes, now: () => h.clock.ms, logger: h.logger });
      repush.onWatchdog({ vin: VIN_A, event: 'stale', lastSeenAt: 0 });
      await repush.settled();
      expect(h.api.callsTo('fleet_telemetry_config_jws')).to.have.length(0);
      expect(events(h, 'watchdog_config_synced')).to.have.length(1);
    });
  });
});

describe('TeslaAutomation (the schedule over its parts)', () => {
  let h: Harness;
  let dir: string;
  let registry: EventEmitter<{ watchdog: [WatchdogEvent] }>;
  let metrics: AutomationMetrics;
  beforeEach(async () => {
    h = await harness();
    dir = mkdtempSync(join(tmpdir(), 'tesla-automation-'));
    writeFileSync(join(dir, 'ca-chain.pem'), CA);
    registry = new EventEmitter();
    metrics = {
      configPushes: h.pushes,
      teslaReportedErrors: h.reported,
      teslaApiCalls: new client.Counter({ name: 'api_calls_total', help: 'h', labelNames: ['endpoint', 'status_class'], registers: [h.registry] }),
      teslaTokenRefreshes: new client.Counter({ name: 'refreshes_total', help: 'h', labelNames: ['owner', 'result'], registers: [h.registry] }),
    };
  });
  afterEach(() => h.api.stop());

  function settings(tesla: Partial<TeslaStageConfig['tesla']> = {}): TeslaStageConfig {
    return {
      domain: 'cars.example.com',
      vehicle: { port: 0 },
      tls: { caChainFile: join(dir, 'ca-chain.pem') },
      tesla: {
        ...(h.settings as TeslaStageConfig['tesla']),
        autoConfigure: true,
        vins: [VIN_A, VIN_B],
        configPreset: 'minimal',
        configFieldsFile: '',
        alertTypes: '',
        configExpiryDays: 0,
        errorsPollIntervalSeconds: 600,
        repushMinIntervalSeconds: 3600,
        ...tesla,
      },
      signIn: { clientId: '', clientSecret: '', authorizeUrl: '', tokenUrl: '', tokenFile: '' },
    };
  }

  function start(config: TeslaStageConfig): TeslaAutomation | null {
    return startTeslaAutomation({ config, vehiclePort: 4443, registry, metrics, logger: h.logger, clientHooks: { baseDelayMs: 5, maxDelayMs: 20 }, now: () => h.clock.ms });
  }

  it('is off unless TESLA_AUTO_CONFIGURE, and refuses settings it cannot work with', () => {
    expect(start(settings({ autoConfigure: false }))).to.equal(null);
    expect(() => start(settings({ privateKeyFile: '', proxyUrl: '' }))).to.throw(/TESLA_AUTO_CONFIGURE needs TESLA_PROXY_URL .* or TESLA_PRIVATE_KEY_FILE/);
    expect(() => start(settings({ configPreset: 'everything' }))).to.throw(/unknown preset "everything"/);
    expect(registry.listenerCount('watchdog')).to.equal(0);
  });

  it('at start pushes once to the cars that need it, counts the current ones, then polls errors; re-pushes on stale; stop() lets go of the registry', async () => {
    h.api.vehicle(VIN_A, { config: null, errors: [{ name: 'client', error: 'EOF', vin: VIN_A, created_at: '2026-01-01T00:00:00Z' }] });
    // VIN_B holds our config, synced: what the automation would push now (the bound port, no exp).
    const ours = buildTelemetryConfig({ hostname: 'cars.example.com', port: 4443, caPem: CA, fields: PRESETS.minimal, alertTypes: [] });
    h.api.vehicle(VIN_B, { config: { ...ours } as unknown as Record<string, unknown>, synced: true });
    const automation = start(settings())!;
    await automation.ready;
    expect(h.api.violations).to.deep.equal([]);
    const pushes = h.api.callsTo('fleet_telemetry_config_jws');
    expect(pushes.map((r) => (r.body as { vins: string[] }).vins)).to.deep.equal([[VIN_A]]);
    expect(h.api.vehicles.get(VIN_A)!.config).to.deep.include({ hostname: 'cars.example.com', port: 4443 });
    expect(await count(h.pushes, { result: 'updated' })).to.equal(1);
    expect(await count(h.pushes, { result: 'unchanged' })).to.equal(1);
    expect(await count(h.reported)).to.equal(1);

    registry.emit('watchdog', { vin: VIN_A, event: 'stale', lastSeenAt: 0 });
    await automation.lastWatchdogAction();
    expect(h.api.callsTo('fleet_telemetry_config_jws')).to.have.length(2);

    automation.stop();
    expect(registry.listenerCount('watchdog')).to.equal(0);
  });
});
