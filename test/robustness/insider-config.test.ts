// Secrets and files at start-up (issue #12): credentials inside URL settings must not reach the error
// lines, production refuses keys every user can read, a dev CA or a CA with its key beside it, and the
// app public key is served as exactly one PEM block.
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeJwt } from 'jose';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { TokenVerifier } from '../../src/dashboard/token-verifier.js';
import { startTestServer, testEnv, testPki } from '../helpers/test-server.js';

function problemsOf(env: Record<string, string>, cwd: string): string[] {
  try {
    loadConfig({ env, cwd, onWarning: () => {} });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
}

describe('robustness: secrets and files at start-up', function () {
  this.timeout(30_000);

  it('never prints the credentials inside a URL setting', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-telemetry-urls-'));
    const secrets = ['hunter2-user', 'hunter2-pass', 'q-secret-123456', 'frag-secret-98765'];
    const bad = (scheme: string) => `${scheme}://hunter2-user:hunter2-pass@idp.example.com/keys?access_token=q-secret-123456#frag-secret-98765`;
    const env = await testEnv({
      JWT_JWKS_URL: bad('http'),
      JWT_ISSUER: 'https://idp.example.com',
      JWT_AUDIENCE: 'fleet',
      TESLA_AUTH_JWKS_URL: bad('ftp'),
      TESLA_API_BASE_URL: bad('http'),
      TESLA_PROXY_URL: 'not a url hunter2-user:hunter2-pass@x?access_token=q-secret-123456',
      NATS_URL: 'http://hunter2-user:hunter2-pass@nats.example.com:4222/?q=q-secret-123456',
    });
    const text = problemsOf(env, cwd).join('\n');
    for (const env of ['JWT_JWKS_URL', 'TESLA_AUTH_JWKS_URL', 'TESLA_API_BASE_URL', 'TESLA_PROXY_URL', 'NATS_URL']) expect(text).to.include(env);
    for (const secret of secrets) expect(text, `a URL credential was printed:\n${text}`).to.not.include(secret);
    expect(text).to.include('idp.example.com');
  });

  it('refuses in production a private key or .env every user can read, the dev CA, and a CA with its key beside it', async () => {
    const pki = await testPki();
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-telemetry-modes-'));
    const key = join(cwd, 'server.key');
    copyFileSync(pki.serverKey, key);
    chmodSync(key, 0o644);
    writeFileSync(join(cwd, '.env'), 'LOG_LEVEL=info\n', { mode: 0o644 });
    chmodSync(join(cwd, '.env'), 0o644);
    const env = await testEnv({ NODE_ENV: 'production', TLS_KEY_FILE: key });
    const problems = problemsOf(env, cwd);
    expect(problems.some((p) => p.includes('TLS_KEY_FILE') && p.includes('readable by every user'))).to.equal(true);
    expect(problems.some((p) => p.includes('.env') && p.includes('readable by every user'))).to.equal(true);
    // The test PKI's vehicle CA is the dev CA, and its key (vehicle-ca.key) lies beside it.
    expect(problems.some((p) => p.includes('VEHICLE_CA_FILE') && p.includes('development CA'))).to.equal(true);
    expect(problems.some((p) => p.includes('VEHICLE_CA_FILE') && p.includes('private key'))).to.equal(true);
    // Outside production the same files load (the dev PKI is for development).
    expect(problemsOf({ ...env, NODE_ENV: 'development' }, cwd)).to.deep.equal([]);
  });

  it('serves TESLA_PUBLIC_KEY_FILE as exactly its PEM block, without the text around it', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-telemetry-pubkey-'));
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const file = join(cwd, 'public-key.pem');
    writeFileSync(file, `internal note: rotate me, ops password hunter2\n${pem}trailing text that must not be served\n`);
    const t = await startTestServer({ env: { TESLA_PUBLIC_KEY_FILE: file } });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${t.server.vehiclePort}/.well-known/appspecific/com.tesla.3p.public-key.pem`, { rejectUnauthorized: false }, (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      expect(body).to.equal(pem);
    } finally {
      await t.stop();
    }
  });

  it('the token command reads JWT_ISSUER / JWT_AUDIENCE from .env even with JWT_SECRET in the environment, and its token is accepted', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-telemetry-token-cli-'));
    const secret = 'a-secret-from-the-environment-0123456789';
    writeFileSync(join(cwd, '.env'), 'JWT_ISSUER=https://ops.example.com\nJWT_AUDIENCE=fleet-dashboard\n', { mode: 0o600 });
    const cli = new URL('../../src/cli/main.js', import.meta.url).pathname;
    const run = (args: string[]) =>
      spawnSync(process.execPath, [cli, 'token', ...args], { cwd, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', JWT_SECRET: secret }, encoding: 'utf8' });
    const result = run(['--vin', '5YJ3E7EB0LF000001', '--ttl', '1h']);
    expect(result.status, result.stderr).to.equal(0);
    const token = result.stdout.trim();
    expect(decodeJwt(token)).to.include({ iss: 'https://ops.example.com', aud: 'fleet-dashboard' });
    const verifier = new TokenVerifier({ secret, issuer: 'https://ops.example.com', audience: 'fleet-dashboard' });
    expect((await verifier.verify(token)).vins.has('5YJ3E7EB0LF000001')).to.equal(true);
    // A lifetime the server would refuse is not minted.
    const tooLong = run(['--vin', '5YJ3E7EB0LF000001', '--ttl', '60d']);
    expect(tooLong.status).to.equal(2);
    expect(tooLong.stderr).to.include('DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS');
  });
});
