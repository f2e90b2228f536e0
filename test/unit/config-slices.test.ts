import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import {
  certificateReloadConfig,
  dashboardStageConfig,
  historyStageConfig,
  mqttStageConfig,
  teslaStageConfig,
} from '../../src/config/slices.js';
import type { AppConfig } from '../../src/config/types.js';

// server.ts hands each stage its slice: the values the stage reads, and no secret it does not use.
describe('config slices per stage', () => {
  const SECRETS = {
    TLS_KEY_PASSPHRASE: 'secret-tls-passphrase',
    JWT_SECRET: 'secret-jwt-0123456789abcdef0123456789abcdef',
    TESLA_ACCESS_TOKEN: 'secret-tesla-access-token',
    TESLA_PARTNER_TOKEN: 'secret-tesla-partner-token',
    TESLA_CLIENT_SECRET: 'secret-tesla-client-secret',
    DASHBOARD_SESSION_SECRET: 'secret-session-0123456789abcdef0123456789abcdef',
    NATS_PASSWORD: 'secret-nats-password',
    NATS_TOKEN: 'secret-nats-token',
    MQTT_PASSWORD: 'secret-mqtt-password',
    DATABASE_URL: 'postgres://telemetry:secret-database-password@127.0.0.1:5432/telemetry',
  };
  let config: AppConfig;
  before(() => {
    // Partial mode with nothing checked: the sources merged as the server merges them.
    config = loadConfig({
      cwd: mkdtempSync(join(tmpdir(), 'config-slices-')),
      env: { NODE_ENV: 'test', ...SECRETS, TESLA_VIN: '5YJ3E1EA7KF000001', MQTT_URL: 'mqtt://127.0.0.1:1883', DOMAIN: 'cars.example.com' },
      only: [],
    });
  });

  /** Every leaf of `slice` equals the same path in the whole config. */
  function expectSubsetOfConfig(slice: object, path = ''): void {
    for (const [key, value] of Object.entries(slice)) {
      const here = path === '' ? key : `${path}.${key}`;
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) expectSubsetOfConfig(value as object, here);
      else expect(value, here).to.deep.equal(here.split('.').reduce<unknown>((node, k) => (node as Record<string, unknown>)[k], config));
    }
  }

  const secretsIn = (slice: object): string[] => Object.entries(SECRETS).filter(([, value]) => JSON.stringify(slice).includes(value.replace(/^postgres:\/\/telemetry:/, '').replace(/@.*/, ''))).map(([name]) => name);

  it('copies the values each stage reads from the whole config', () => {
    expect(secretsIn(config)).to.deep.equal(Object.keys(SECRETS));
    for (const slice of [teslaStageConfig(config), dashboardStageConfig(config), historyStageConfig(config), mqttStageConfig(config), certificateReloadConfig(config)]) {
      expectSubsetOfConfig(slice);
    }
    expect(teslaStageConfig(config).tesla.vins).to.deep.equal(['5YJ3E1EA7KF000001']);
    expect(teslaStageConfig(config).domain).to.equal('cars.example.com');
    expect(mqttStageConfig(config).mqtt.url).to.equal('mqtt://127.0.0.1:1883');
  });

  it('gives each stage only the secrets it uses', () => {
    expect(secretsIn(teslaStageConfig(config))).to.deep.equal(['TESLA_ACCESS_TOKEN', 'TESLA_PARTNER_TOKEN', 'TESLA_CLIENT_SECRET']);
    expect(secretsIn(dashboardStageConfig(config))).to.deep.equal(['TLS_KEY_PASSPHRASE', 'JWT_SECRET', 'TESLA_CLIENT_SECRET', 'DASHBOARD_SESSION_SECRET']);
    expect(secretsIn(historyStageConfig(config))).to.deep.equal(['DATABASE_URL']);
    expect(secretsIn(mqttStageConfig(config))).to.deep.equal(['MQTT_PASSWORD']);
    expect(secretsIn(certificateReloadConfig(config))).to.deep.equal(['TLS_KEY_PASSPHRASE']);
  });

  it('does not share mutable lists with the whole config', () => {
    const tesla = teslaStageConfig(config);
    tesla.tesla.vins.push('5YJ3E1EA7KF000002');
    expect(config.tesla.vins).to.have.length(1);
  });
});
