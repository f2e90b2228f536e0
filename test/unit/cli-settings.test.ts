import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/index.js';
import { cliSettings, runSetupCommand } from '../../src/cli/setup-support.js';

// The setup commands read their settings through the server's loader (partial mode): what the CLI
// sees is what the server would see, and a bad value is an error, never a silent default.
describe('CLI settings: the server loader in partial mode', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cli-settings-'));
    mkdirSync(join(dir, 'config'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads config/<NODE_ENV>.json under .env and the environment', () => {
    writeFileSync(join(dir, 'config', 'production.json'), JSON.stringify({ domain: 'file.example.com', vehicle: { port: 8443 } }));
    writeFileSync(join(dir, '.env'), 'PORT=9443\n');
    const settings = cliSettings(['DOMAIN', 'PORT'], { cwd: dir, env: { NODE_ENV: 'production' } });
    expect(settings.domain).to.equal('file.example.com');
    expect(settings.vehicle.port).to.equal(9443);
    const fromEnv = cliSettings(['DOMAIN'], { cwd: dir, env: { NODE_ENV: 'production', DOMAIN: 'env.example.com' } });
    expect(fromEnv.domain).to.equal('env.example.com');
  });

  it('refuses a bad named setting with one line naming it and its source', () => {
    writeFileSync(join(dir, 'config', 'development.json'), JSON.stringify({ vehicle: { port: 70000 } }));
    let caught: unknown;
    try {
      cliSettings(['DOMAIN', 'PORT'], { cwd: dir, env: { NODE_ENV: 'development', DOMAIN: 'not a domain' } });
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(ConfigError);
    const problems = (caught as ConfigError).problems;
    expect(problems).to.have.length(2);
    expect(problems[0]).to.match(/^config: DOMAIN: /);
    expect(problems[1]).to.match(/^config: PORT: .*\(from config\/development\.json "vehicle\.port"\)$/);
  });

  it('checks only the named settings, and names an unknown one as a bug', () => {
    const settings = cliSettings(['DOMAIN'], { cwd: dir, env: { DOMAIN: 'ok.example.com', JWT_SECRET: 'short' } });
    expect(settings.domain).to.equal('ok.example.com');
    expect(() => cliSettings(['NO_SUCH_SETTING'], { cwd: dir, env: {} })).to.throw(/unknown setting NO_SUCH_SETTING/);
  });

  it('resolves file settings against the working directory and normalises VINs', () => {
    const settings = cliSettings(['TLS_CA_CHAIN_FILE', 'TESLA_VIN'], {
      cwd: dir,
      env: { TLS_CA_CHAIN_FILE: 'certs/ca.pem', TESLA_VIN: '5yj3e1ea7kf317000,5YJ3E1EA7KF317000' },
    });
    expect(settings.tls.caChainFile).to.equal(join(dir, 'certs', 'ca.pem'));
    expect(settings.tesla.vins).to.deep.equal(['5YJ3E1EA7KF317000']);
  });

  it('prints each problem on its own line under the command name, exit status 2', async () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    let status: number;
    try {
      status = await runSetupCommand('config build', () => Promise.resolve(cliSettings(['PORT', 'TESLA_API_TIMEOUT_MS'], { cwd: dir, env: { PORT: 'x', TESLA_API_TIMEOUT_MS: '-1' } }).vehicle.port));
    } finally {
      process.stderr.write = write;
    }
    expect(status).to.equal(2);
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^fleet-telemetry config build: PORT: .*\n$/);
    expect(lines[1]).to.match(/^fleet-telemetry config build: TESLA_API_TIMEOUT_MS: .*\n$/);
  });
});
