import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { mintDashboardToken } from '../../src/dashboard/dashboard-token.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { TEST_JWT_SECRET, TEST_VINS, testEnv, testPki } from '../helpers/test-server.js';
import { eventually, holdsAfter } from '../helpers/eventually.js';

const CORK_WARNING = /corked callback/;

function checkSession(port: number, token: string, caPem: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/session', servername: 'localhost', ca: caPem, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard upgrades as the page makes them: no uWS cork warning', function () {
  this.timeout(40_000);
  let server: ServerProcess;
  let port: number;
  let caPem: Buffer;

  before(async () => {
    server = spawnServer(await testEnv({ LOG_LEVEL: 'info' }));
    const started = await server.waitForEvent('server_started');
    port = started.dashboardPort as number;
    caPem = readFileSync((await testPki()).caChain);
  });
  after(async () => {
    server.kill('SIGKILL');
    await server.exited;
  });

  it('checks the token at /api/session, then opens, uses and reopens the socket: stderr stays clean', async () => {
    for (let i = 0; i < 20; i++) {
      const token = await mintDashboardToken({ secret: TEST_JWT_SECRET, vins: [TEST_VINS[0]], ttlSeconds: 600 });
      expect(await checkSession(port, token, caPem)).to.equal(200);
      // The page sends its token in the query string; a reconnect reuses it.
      for (let attempt = 0; attempt < 2; attempt++) {
        const dash = await DashboardTestClient.open({ url: `wss://127.0.0.1:${port}/dashboard`, caPem, token, tokenInQuery: true });
        await dash.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
        dash.send({ type: 'subscribe', vins: [TEST_VINS[0]] });
        await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'the snapshot');
        await dash.close();
      }
    }
    expect(server.stderr.filter((line) => CORK_WARNING.test(line))).to.deep.equal([]);
  });

  it('a client that skips the check still gets in (verified on the spot; uWS.js warns on that path, which this test can see)', async () => {
    const before = server.stderr.filter((line) => CORK_WARNING.test(line)).length;
    // A token this server has not seen (tokens minted in the same second for the same VINs are equal).
    const token = await mintDashboardToken({ secret: TEST_JWT_SECRET, vins: [TEST_VINS[1], TEST_VINS[2]], ttlSeconds: 900 });
    const dash = await DashboardTestClient.open({ url: `wss://127.0.0.1:${port}/dashboard`, caPem, token });
    await dash.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
    await dash.close();
    const warnings = () => server.stderr.filter((line) => CORK_WARNING.test(line)).length;
    await holdsAfter(eventually(() => warnings() > before, 5000, 'the warning'), () => {
      expect(warnings()).to.equal(before + 1);
    });
  });
});
