import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/log/logger.js';
import { appKeyFromPem } from '../../src/tesla/ss256.js';
import { writeTokenFile } from '../../src/tesla/token-file.js';
import { FakeTeslaOAuth } from '../helpers/fake-tesla-oauth.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { FakeFleetApi } from './tesla-fake-fleet-api.js';

const [VIN_A] = TEST_VINS;

describe('the server keeps its Tesla token fresh from TESLA_TOKEN_FILE (auto-configure)', function () {
  this.timeout(30_000);
  let dir: string;
  let tesla: FakeTeslaOAuth;
  let api: FakeFleetApi;
  let privateKeyFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tesla-token-server-'));
    tesla = await new FakeTeslaOAuth().start();
    const privatePem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    privateKeyFile = join(dir, 'private-key.pem');
    writeFileSync(privateKeyFile, privatePem, { mode: 0o600 });
    api = await new FakeFleetApi('no-fixed-token', 'no-partner-token', appKeyFromPem(privatePem).publicKey).start();
    api.acceptToken = (token) => tesla.liveAccessToken(token);
  });
  after(async () => {
    await api?.stop();
    await tesla?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Auto-configure from the token file; without `apiBaseUrl` TESLA_API_BASE_URL is left at its default. */
  async function serverWith(tokenFile: string, options: { logs?: PassThrough; apiBaseUrl?: string } = {}): Promise<TestServer> {
    api.vehicle(VIN_A, { synced: false, config: null });
    return startTestServer({
      env: {
        TESLA_AUTO_CONFIGURE: 'true',
        TESLA_VIN: VIN_A,
        TESLA_TOKEN_FILE: tokenFile,
        TESLA_CLIENT_ID: tesla.clientId,
        TESLA_TOKEN_URL: tesla.tokenUrl,
        ...(options.apiBaseUrl === undefined ? {} : { TESLA_API_BASE_URL: options.apiBaseUrl }),
        TESLA_PRIVATE_KEY_FILE: privateKeyFile,
        TESLA_ERRORS_POLL_INTERVAL_SECONDS: '0',
      },
      overrides: { teslaClientHooks: { baseDelayMs: 10 }, ...(options.logs === undefined ? {} : { logger: createLogger('info', options.logs) }) },
    });
  }

  it('refreshes the expired access token, writes the rotated refresh token, and pushes the config', async () => {
    const tokenFile = join(dir, 'tesla-token.json');
    const refreshToken = await tesla.issueRefreshToken({ sub: 'operator-1', vins: [VIN_A] });
    await writeTokenFile(tokenFile, { refreshToken, accessToken: 'expired-access-token', expiresAt: Date.now() - 1000, scopes: ['vehicle_device_data'], subject: 'operator-1', apiBaseUrl: '' });
    const logs = new PassThrough();
    let logText = '';
    logs.on('data', (c: Buffer) => (logText += c.toString('utf8')));
    const t = await serverWith(tokenFile, { logs, apiBaseUrl: api.url });
    try {
      await t.server.tesla!.ready;
      expect(api.violations).to.deep.equal([]);
      expect(api.vehicles.get(VIN_A)!.config).not.to.equal(null);
      expect(tesla.counts.refreshes).to.equal(1);
      const stored = JSON.parse(readFileSync(tokenFile, 'utf8')) as { refresh_token: string };
      expect(stored.refresh_token).not.to.equal(refreshToken);
      expect(statSync(tokenFile).mode & 0o777).to.equal(0o600);
      expect(await t.server.metrics.registry.getSingleMetricAsString('fleet_telemetry_tesla_token_refreshes_total')).to.include('owner="server",result="ok"} 1');
      for (const secret of tesla.issuedSecrets) expect(logText).not.to.include(secret);
    } finally {
      await t.stop();
    }
  });

  it("follows the account's region from the token file when TESLA_API_BASE_URL is left at its default", async () => {
    const tokenFile = join(dir, 'region-token.json');
    const refreshToken = await tesla.issueRefreshToken({ sub: 'operator-3', vins: [VIN_A] });
    await writeTokenFile(tokenFile, { refreshToken, accessToken: '', expiresAt: 0, scopes: ['vehicle_device_data'], subject: null, apiBaseUrl: api.url });
    const t = await serverWith(tokenFile);
    try {
      await t.server.tesla!.ready;
      expect(api.vehicles.get(VIN_A)!.config).not.to.equal(null);
      expect(api.violations).to.deep.equal([]);
    } finally {
      await t.stop();
    }
  });

  it('logs and counts a refresh Tesla refuses, with the fix in words, and keeps running', async () => {
    const tokenFile = join(dir, 'revoked-token.json');
    const refreshToken = await tesla.issueRefreshToken({ sub: 'operator-2', vins: [VIN_A] });
    tesla.revoke('operator-2');
    await writeTokenFile(tokenFile, { refreshToken, accessToken: '', expiresAt: 0, scopes: [], subject: null, apiBaseUrl: '' });
    const logs = new PassThrough();
    let logText = '';
    logs.on('data', (c: Buffer) => (logText += c.toString('utf8')));
    const t = await serverWith(tokenFile, { logs, apiBaseUrl: api.url });
    try {
      await t.server.tesla!.ready;
      expect(logText).to.include('tesla_token_refresh_failed');
      expect(logText).to.include('run `fleet-telemetry auth login` again');
      expect(await t.server.metrics.registry.getSingleMetricAsString('fleet_telemetry_tesla_token_refreshes_total')).to.include('owner="server",result="revoked"} 1');
      expect(logText).not.to.include(refreshToken);
    } finally {
      await t.stop();
    }
  });
});
