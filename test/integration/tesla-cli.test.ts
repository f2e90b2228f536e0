import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDevPki, type DevPkiFiles } from '../../src/pki/dev-certs.js';
import { appKeyFromPem } from '../../src/tesla/ss256.js';
import { FakeCommandProxy, FakeFleetApi } from './tesla-fake-fleet-api.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'cli-access-token-SENTINEL-0123';
const VIN_A = '5YJ3E7EB0LF000001';
const VIN_B = '5YJ3E7EB0LF000002';
const DOMAIN = 'telemetry.example.com';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('setup CLI run as a person would, against a fake Fleet API', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: DevPkiFiles;
  let api: FakeFleetApi;
  let proxy: FakeCommandProxy;
  let env: Record<string, string>;

  function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
    return cliIn(dir, args, { ...env, ...extraEnv });
  }

  function cliIn(cwd: string, args: string[], childEnv: Record<string, string>): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tesla-cli-test-'));
    pki = await ensureDevPki({ dir: join(dir, 'certs'), domain: DOMAIN, vins: [] });
    const keys = await cli(['keys', 'generate', '--dir', 'keys', '--domain', DOMAIN], {});
    expect(keys.code, keys.stderr).to.equal(0);
    const key = appKeyFromPem(readFileSync(join(dir, 'keys/private-key.pem'), 'utf8'));
    api = await new FakeFleetApi(TOKEN, 'partner-token-0123', key.publicKey).start();
    proxy = await new FakeCommandProxy(api, key).start();
    env = {
      PATH: process.env.PATH ?? '',
      DOMAIN,
      PORT: '443',
      TLS_CA_CHAIN_FILE: pki.caChain,
      TESLA_ACCESS_TOKEN: TOKEN,
      TESLA_API_BASE_URL: api.url,
    };
  });

  beforeEach(() => {
    api.vehicles.clear();
    api.vehicle(VIN_A);
    api.vehicle(VIN_B, { keyPaired: false });
  });

  after(async () => {
    await proxy?.stop();
    await api?.stop();
  });

  it('lists the commands with --help', async () => {
    const run = await cli(['--help']);
    expect(run.code).to.equal(0);
    for (const name of ['keys generate', 'config build', 'config push', 'config status', 'config delete', 'errors', 'check-cert', 'certs dev']) {
      expect(run.stdout).to.contain(name);
    }
  });

  it('`keys generate` wrote a 0600 private key it never printed, and refuses to overwrite', async () => {
    const privatePem = readFileSync(join(dir, 'keys/private-key.pem'), 'utf8');
    expect(statSync(join(dir, 'keys/private-key.pem')).mode & 0o777).to.equal(0o600);
    expect(readFileSync(join(dir, 'keys/public-key.pem'), 'utf8')).to.contain('BEGIN PUBLIC KEY');
    const again = await cli(['keys', 'generate', '--dir', 'keys']);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.contain('already exists');
    expect(again.stdout + again.stderr).to.not.contain(privatePem.split('\n')[1]);
  });

  it('`keys generate` and `certs dev` take DOMAIN from .env like the server, and refuse a bad one before writing', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tesla-cli-dotenv-'));
    writeFileSync(join(work, '.env'), 'DOMAIN=from-dotenv.example.com\n');
    const run = (args: string[]): Promise<Run> => cliIn(work, args, { PATH: process.env.PATH ?? '' });
    const keys = await run(['keys', 'generate', '--dir', 'keys']);
    expect(keys.code, keys.stderr).to.equal(0);
    expect(keys.stdout).to.contain('https://from-dotenv.example.com/.well-known/appspecific/com.tesla.3p.public-key.pem');
    const certs = await run(['certs', 'dev', '--dir', 'certs', '--vin', VIN_A]);
    expect(certs.code, certs.stderr).to.equal(0);
    expect(certs.stdout).to.contain('dev PKI in').and.to.contain('for from-dotenv.example.com');

    writeFileSync(join(work, '.env'), 'DOMAIN=not a domain\n');
    const refused = await run(['keys', 'generate', '--dir', 'other-keys']);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.match(/^fleet-telemetry keys generate: DOMAIN/m);
    expect(existsSync(join(work, 'other-keys'))).to.equal(false);
  });

  it('`config build` prints the config with an integer port and the PEM chain, and its cost on stderr', async () => {
    const run = await cli(['config', 'build', '--preset', 'charging', '--exp-days', '30']);
    expect(run.code, run.stderr).to.equal(0);
    const config = JSON.parse(run.stdout);
    expect(config).to.deep.include({ hostname: DOMAIN, port: 443, prefer_typed: true, delivery_policy: 'latest', alert_types: ['service'] });
    expect(config.ca).to.equal(readFileSync(pki.caChain, 'utf8'));
    expect(config.exp).to.be.within(Date.now() / 1000 + 29 * 86400, Date.now() / 1000 + 31 * 86400);
    expect(run.stderr).to.match(/at most [\d,]+ signals per hour/).and.to.match(/US\$\d+\.\d{2} per 30 days/).and.to.contain('150,000 signals per US$1');
  });

  it('`config build` refuses unknown fields and non-integer intervals, naming each', async () => {
    writeFileSync(join(dir, 'fields.json'), JSON.stringify({ Soc: { interval_seconds: 0 }, Sped: { interval_seconds: 10 }, vehiclespeed: { interval_seconds: 5 } }));
    const run = await cli(['config', 'build', '--fields', 'fields.json']);
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.contain('field "Soc": interval_seconds must be a positive integer, got 0');
    expect(run.stderr).to.contain('field "Sped" is not in the vehicle_data schema');
    expect(run.stderr).to.contain('field "vehiclespeed" is not in the vehicle_data schema (did you mean "VehicleSpeed"?)');
  });

  it('`config push --sign` signs here, exits 3 and explains the skipped car', async () => {
    const run = await cli(['config', 'push', '--sign', '--key', 'keys/private-key.pem', '--vin', VIN_A, '--vin', VIN_B, '--preset', 'minimal']);
    expect(run.code, run.stderr).to.equal(3);
    expect(run.stdout).to.contain('signed here (Tesla.SS256)');
    expect(run.stdout).to.contain('1 vehicle updated');
    expect(run.stdout).to.contain(`${VIN_B} skipped (missing_key): the app's virtual key is not paired with the car: open https://tesla.com/_ak/${DOMAIN}`);
    expect(api.violations).to.deep.equal([]);
    expect(api.vehicles.get(VIN_A)!.config).to.deep.include({ port: 443, hostname: DOMAIN });
  });

  it('`config push --proxy` goes through the vehicle-command proxy and exits 0 when every car is updated', async () => {
    const run = await cli(['config', 'push', '--proxy', proxy.url, '--vin', VIN_A]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('through the vehicle-command proxy');
    expect(proxy.requests.at(-1)!.path).to.equal('/api/1/vehicles/fleet_telemetry_config');
    expect(proxy.violations).to.deep.equal([]);
  });

  it('`config status` explains sync and pairing, and compares with this server\'s config', async () => {
    await cli(['config', 'push', '--sign', '--key', 'keys/private-key.pem', '--vin', VIN_A]);
    const pending = await cli(['config', 'status', '--vin', VIN_A]);
    expect(pending.code).to.equal(1);
    expect(pending.stdout).to.contain('virtual key: paired');
    expect(pending.stdout).to.contain('sync: NOT yet applied by the car');
    expect(pending.stdout).to.contain(`streams to: ${DOMAIN}:443`);
    expect(pending.stdout).to.contain("matches this server's config");
    api.vehicles.get(VIN_A)!.synced = true;
    const synced = await cli(['config', 'status', '--vin', VIN_A]);
    expect(synced.code).to.equal(0);
    expect(synced.stdout).to.contain('sync: the car has applied the config');
    const unpaired = await cli(['config', 'status', '--vin', VIN_B]);
    expect(unpaired.code).to.equal(1);
    expect(unpaired.stdout).to.contain(`NOT paired`).and.to.contain(`https://tesla.com/_ak/${DOMAIN}`);
  });

  it('`config delete` removes the config', async () => {
    await cli(['config', 'push', '--sign', '--key', 'keys/private-key.pem', '--vin', VIN_A]);
    const run = await cli(['config', 'delete', '--vin', VIN_A]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('config removed');
    expect(api.vehicles.get(VIN_A)!.config).to.equal(null);
  });

  it('`errors` groups what Tesla reports and says what to do', async () => {
    const tls = 'x509: certificate signed by unknown authority';
    api.vehicle(VIN_A, { errors: [{ name: 'app', error: tls, vin: VIN_A }, { name: 'app', error: tls, vin: VIN_A, created_at: '2026-01-02T00:00:00Z' }] });
    api.vehicle(VIN_B, { errors: [{ name: 'app', error: 'dial tcp: lookup telemetry.example.com: no such host', vin: VIN_B }] });
    const run = await cli(['errors', '--vin', `${VIN_A},${VIN_B}`]);
    expect(run.code, run.stderr).to.equal(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).to.equal(`[certificate] 2x "${tls}" (last 2026-01-02T00:00:00Z)`);
    expect(run.stdout).to.contain('[dns] 1x').and.to.contain('add an A/AAAA record for DOMAIN');
  });

  it('shows Tesla\'s message for a bad token and never prints the token', async () => {
    const run = await cli(['config', 'status', '--vin', VIN_A], { TESLA_ACCESS_TOKEN: 'bad-token-SENTINEL-xyz' });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain('HTTP 401').and.to.contain('invalid bearer token');
    expect(run.stdout + run.stderr).to.not.contain('SENTINEL');
    const missing = await cli(['config', 'status', '--vin', VIN_A], { TESLA_ACCESS_TOKEN: '' });
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.contain('no Tesla token: run `fleet-telemetry auth login`');
  });
});
