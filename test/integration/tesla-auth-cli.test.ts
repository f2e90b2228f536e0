import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appKeyFromPem } from '../../src/tesla/ss256.js';
import { PUBLIC_KEY_PATH } from '../../src/vehicle/vehicle-listener.js';
import { FakeTeslaOAuth } from '../helpers/fake-tesla-oauth.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { FakeFleetApi } from './tesla-fake-fleet-api.js';
import { freePort } from '../../tools/local-process.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const VIN_A = '5YJ3E7EB0LF000001';
const DOMAIN = 'telemetry.example.com';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('CLI auth login, token refresh, partner register and pair against a fake Tesla', function () {
  this.timeout(60_000);
  let dir: string;
  let tesla: FakeTeslaOAuth;
  let env: Record<string, string>;
  let tokenFile: string;

  function start(args: string[], extraEnv: Record<string, string> = {}): { child: ChildProcessWithoutNullStreams; done: Promise<Run>; output: () => string } {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const done = new Promise<Run>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    return { child, done, output: () => stdout };
  }

  function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
    const run = start(args, extraEnv);
    run.child.stdin.end();
    return run.done;
  }

  /** The authorize URL the command printed, once it is there. */
  async function printedAuthorizeUrl(output: () => string): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const line = output().split('\n').find((l) => l.startsWith(tesla.authorizeUrl));
      if (line !== undefined) return line.trim();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no authorize URL printed: ${output()}`);
  }

  function expectNoSecrets(run: Run): void {
    for (const secret of [...tesla.issuedSecrets, tesla.clientSecret]) {
      expect(run.stdout).not.to.include(secret);
      expect(run.stderr).not.to.include(secret);
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tesla-auth-cli-'));
    tesla = await new FakeTeslaOAuth().start();
    tesla.nextUser = { sub: 'operator-1', vins: [VIN_A] };
    tokenFile = join(dir, 'tesla-token.json');
    env = {
      PATH: process.env.PATH ?? '',
      ...tesla.env(),
      TESLA_TOKEN_FILE: tokenFile,
    };
  });
  after(async () => {
    await tesla?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('auth login with a loopback callback stores a 0600 token file with the region, printing no token', async () => {
    const port = await freePort();
    const redirect = `http://localhost:${port}/callback`;
    tesla.redirectUris.add(redirect);
    const run = start(['auth', 'login', '--redirect-uri', redirect]);
    const url = await printedAuthorizeUrl(run.output);
    const consent = await fetch(url, { redirect: 'manual' });
    const back = consent.headers.get('location') ?? '';
    expect(back.startsWith(redirect)).to.equal(true);
    const landed = await fetch(back.replace('localhost', '127.0.0.1'));
    expect(landed.status).to.equal(200);
    const result = await run.done;
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.include('Signed in as Tesla user operator-1');
    expect(statSync(tokenFile).mode & 0o777).to.equal(0o600);
    const stored = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
    expect(stored.refresh_token).to.be.a('string').and.match(/^rt-/);
    expect(stored.api_base_url).to.equal(tesla.baseUrl);
    expect(stored.scopes).to.include('vehicle_device_data');
    expectNoSecrets(result);
    expect(tesla.violations).to.deep.equal([]);
  });

  it('auth login --paste takes the address the browser landed on, and refuses one from another sign-in', async () => {
    const redirect = 'https://app.example.com/tesla/callback';
    tesla.redirectUris.add(redirect);
    const other = join(dir, 'pasted-token.json');
    const run = start(['auth', 'login', '--paste', '--redirect-uri', redirect, '--token-file', other]);
    const url = await printedAuthorizeUrl(run.output);
    const back = (await fetch(url, { redirect: 'manual' })).headers.get('location') ?? '';
    run.child.stdin.end(`${back}\n`);
    const result = await run.done;
    expect(result.code, result.stderr).to.equal(0);
    expect(statSync(other).mode & 0o777).to.equal(0o600);

    // An address from an earlier sign-in carries another state: refused before any code exchange.
    const second = start(['auth', 'login', '--paste', '--redirect-uri', redirect, '--token-file', other]);
    await printedAuthorizeUrl(second.output);
    second.child.stdin.end(`${back}\n`);
    const refused = await second.done;
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include('not this sign-in');
  });

  it('refreshes before expiry, keeps the rotated refresh token, one refresh at a time across processes', async () => {
    const before = JSON.parse(readFileSync(tokenFile, 'utf8')) as { refresh_token: string };
    const runs = await Promise.all([1, 2, 3].map(() => cli(['auth', 'status', '--refresh'])));
    for (const run of runs) {
      expect(run.code, run.stderr).to.equal(0);
      expectNoSecrets(run);
    }
    const after = JSON.parse(readFileSync(tokenFile, 'utf8')) as { refresh_token: string; access_token: string };
    expect(after.refresh_token).not.to.equal(before.refresh_token);
    expect(tesla.counts.refreshRefused).to.equal(0);
    expect(statSync(tokenFile).mode & 0o777).to.equal(0o600);

    // A Fleet API command with the token file: an expired access token is refreshed first.
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const api = await new FakeFleetApi('unused-fixed-token', 'unused-partner-token', appKeyFromPem(key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()).publicKey).start();
    try {
      api.acceptToken = (token) => tesla.liveAccessToken(token);
      api.vehicle(VIN_A, { synced: true, config: null });
      const stored = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
      writeFileSync(tokenFile, JSON.stringify({ ...stored, expires_at: Date.now() - 1000 }), { mode: 0o600 });
      const refreshes = tesla.counts.refreshes;
      const status = await cli(['config', 'status', '--vin', VIN_A], { TESLA_API_BASE_URL: api.url, DOMAIN, PORT: '443' });
      expect(api.violations, status.stderr).to.deep.equal([]);
      expect(tesla.counts.refreshes).to.equal(refreshes + 1);
      expectNoSecrets(status);
    } finally {
      await api.stop();
    }
  });

  it('says what to do when Tesla revoked the refresh token', async () => {
    tesla.revoke('operator-1');
    const run = await cli(['auth', 'status', '--refresh']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('run `fleet-telemetry auth login` again');
    expectNoSecrets(run);
  });

  it('partner register checks the served key, registers, and compares what Tesla holds; re-running is safe', async () => {
    const keys = await cli(['keys', 'generate', '--dir', 'keys', '--domain', DOMAIN]);
    expect(keys.code, keys.stderr).to.equal(0);
    const publicKeyFile = join(dir, 'keys/public-key.pem');
    const server: TestServer = await startTestServer({ env: { TESLA_PUBLIC_KEY_FILE: publicKeyFile } });
    try {
      const keyUrl = `https://127.0.0.1:${server.server.vehiclePort}${PUBLIC_KEY_PATH}`;
      tesla.keyUrlFor = () => keyUrl;
      tesla.keyUrlCa = readFileSync(server.pki.caChain);
      const args = ['partner', 'register', '--domain', DOMAIN, '--key-url', keyUrl, '--key-url-ca', server.pki.caChain];
      const withKey = { TESLA_PUBLIC_KEY_FILE: publicKeyFile };
      const first = await cli(args, withKey);
      expect(first.code, first.stderr).to.equal(0);
      expect(first.stdout).to.include('Tesla holds our public key for telemetry.example.com');
      expect(tesla.partnerDomains.has(DOMAIN)).to.equal(true);
      const again = await cli(args, withKey);
      expect(again.code, again.stderr).to.equal(0);
      expect(tesla.counts.partnerRegistrations).to.equal(2);
      expectNoSecrets(first);

      // Another key locally than the one served: caught before Tesla is asked.
      const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      writeFileSync(join(dir, 'other.pem'), other);
      const mismatch = await cli([...args, '--public-key', join(dir, 'other.pem')], withKey);
      expect(mismatch.code).to.equal(1);
      expect(mismatch.stderr).to.include('serves another key');

      const wrongSecret = await cli(args, { ...withKey, TESLA_CLIENT_SECRET: 'not-the-secret' });
      expect(wrongSecret.code).to.equal(1);
      expect(wrongSecret.stderr).to.include('client_credentials');
    } finally {
      await server.stop();
    }
  });

  it('pair prints the pairing link and a terminal QR code', async () => {
    const run = await cli(['pair', '--domain', DOMAIN]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(`https://tesla.com/_ak/${DOMAIN}`);
    expect(run.stdout).to.match(/[▀▄█]/);
    const refused = await cli(['pair'], { DOMAIN: 'localhost' });
    expect(refused.code).to.equal(2);
  });
});
