import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { mintDashboardToken } from '../../src/dashboard/dashboard-token.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { TEST_JWT_SECRET, TEST_VINS, testEnv, testPki } from '../helpers/test-server.js';

const CORK_WARNING = /corked callback/;
/**
 * Upgrades per path. An upgrade made later, from a promise, in a cork of its own, lost 1-3 fresh sockets
 * in 300 (uWS's cork() misreading the upgraded socket, uNetworking/uWebSockets#1928): every upgrade is
 * now made inside uWS's call, and a credential not checked moments ago is checked after it.
 */
const UPGRADES = 300;
const AT_ONCE = 8;

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

/** Runs `count` sessions, `AT_ONCE` at a time; resolves with the failures (empty when all went through). */
async function sessions(count: number, one: (i: number) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await one(i);
      } catch (error) {
        failures.push(`session ${i}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: AT_ONCE }, lane));
  return failures;
}

describe('dashboard upgrades, checked first or not: no uWS cork warning, no socket dropped', function () {
  this.timeout(120_000);
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

  /** Opens the socket, takes hello, asks for a snapshot and gets it (a dropped fresh socket fails here), then closes. */
  async function useSocket(token: string, tokenInQuery: boolean): Promise<void> {
    const dash = await DashboardTestClient.open({ url: `wss://127.0.0.1:${port}/dashboard`, caPem, token, tokenInQuery, early: true });
    try {
      // A client may ask before the hello arrives: the request must wait for it, not be lost.
      dash.send({ type: 'subscribe', vins: [TEST_VINS[0]] });
      await dash.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
      await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'the snapshot');
    } catch (error) {
      // Say whether the server had dropped the socket (and how) or it stayed open and silent.
      const closed = await Promise.race([dash.closed, new Promise<null>((resolve) => setImmediate(() => resolve(null)))]);
      throw new Error(`${(error as Error).message}; socket ${closed === null ? 'still open' : `closed ${closed.code} ${closed.reason}`}`);
    } finally {
      await dash.close();
    }
    const { code } = await dash.closed;
    if (code !== 1000 && code !== 1005) throw new Error(`closed with ${code}`);
  }

  it('checks the token at /api/session, then opens, uses and reopens the socket (as the page does)', async () => {
    const failures = await sessions(UPGRADES / 2, async (i) => {
      // Tokens minted in the same second with the same claims are equal: the lifetime makes each one new.
      const token = await mintDashboardToken({ secret: TEST_JWT_SECRET, vins: [TEST_VINS[0]], ttlSeconds: 600 + i });
      expect(await checkSession(port, token, caPem)).to.equal(200);
      // The page sends its token in the query string; a reconnect reuses it.
      await useSocket(token, true);
      await useSocket(token, true);
    });
    expect(failures).to.deep.equal([]);
    expect(server.stderr.filter((line) => CORK_WARNING.test(line))).to.deep.equal([]);
  });

  it('a client that skips the check is upgraded at once and checked right after: every socket works, its early request waits for the hello, stderr stays clean', async () => {
    const failures = await sessions(UPGRADES, async (i) => {
      // A token this server has not seen: the socket opens at once and is admitted when the check ends.
      const token = await mintDashboardToken({ secret: TEST_JWT_SECRET, vins: [TEST_VINS[0], TEST_VINS[1]], ttlSeconds: 900 + i });
      await useSocket(token, i % 2 === 0);
    });
    expect(failures).to.deep.equal([]);
    expect(server.stderr.filter((line) => CORK_WARNING.test(line))).to.deep.equal([]);
    expect(server.logs.filter((line) => line.event === 'dashboard_disconnected' && line.code === 1006)).to.deep.equal([]);
  });
});
