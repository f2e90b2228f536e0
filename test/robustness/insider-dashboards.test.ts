// What the holder of one valid dashboard token could do to the server (issue #12): open sockets without
// end, ask for history replays in a loop (a NATS-mode socket once got 77,498 records in 6 s), get past
// the replay size limit with multi-byte text; and what the dashboard answers a plain GET and sends as
// headers. Real server on loopback, real nats-server for the replay cases.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { CarClient } from '../../src/sim/car-client.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { mintDashboardToken } from '../../src/dashboard/dashboard-token.js';
import { DashboardTestClient, type DashboardMessage, type RefusedUpgrade } from '../helpers/dashboard-client.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { recordFigures, type FigureRow } from './helpers/figures.js';
import { eventually } from '../helpers/eventually.js';

const [VIN_A, VIN_B] = TEST_VINS;
const MAX_PER_SUBJECT = 4;
const MAX_REPLAYS_PER_MINUTE = 5;
const REPLAY_REQUESTS = 300;
const STORED_RECORDS = 40;
const BACKPRESSURE_BYTES = 1024 * 1024;
const rows: FigureRow[] = [];

function httpGet(url: string, caPem: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: caPem, servername: 'localhost', headers }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

describe('robustness: what one dashboard token can do (real server)', function () {
  this.timeout(120_000);

  after(() => recordFigures('insider-dashboards', rows));

  describe('one process', () => {
    let t: TestServer;
    let caPem: Buffer;
    before(async () => {
      t = await startTestServer({ env: { DASHBOARD_MAX_SOCKETS_PER_SUBJECT: String(MAX_PER_SUBJECT) } });
      caPem = readFileSync(t.pki.caChain);
    });
    after(async () => t?.stop());

    const token = (subject: string) =>
      mintDashboardToken({ secret: t.config.dashboard.jwtSecret, vins: [VIN_A], ttlSeconds: 600, subject });

    it(`holds one token subject to ${MAX_PER_SUBJECT} sockets (429 too_many_sockets), others unaffected`, async () => {
      const mine = await token('mallory');
      const attempts = await Promise.all(
        Array.from({ length: MAX_PER_SUBJECT + 6 }, () => DashboardTestClient.attempt({ url: t.dashboardUrl, caPem, token: mine }).catch((e: Error) => e)),
      );
      const opened = attempts.filter((a): a is DashboardTestClient => a instanceof DashboardTestClient);
      const refused = attempts.filter((a) => !(a instanceof DashboardTestClient) && !(a instanceof Error)) as RefusedUpgrade[];
      expect(opened).to.have.length(MAX_PER_SUBJECT);
      expect(refused).to.have.length(6);
      for (const r of refused) {
        // Sockets that came while the token was being checked are closed 4429 at the check; those that
        // came after it are answered 429 at the upgrade.
        expect(r.reason).to.equal('too_many_sockets');
        expect(r.status === 429 || r.code === 4429, JSON.stringify(r)).to.equal(true);
      }
      const other = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await token('alice') });
      await other.waitFor((m) => m.some((x) => x.type === 'hello'), 5_000, 'hello');
      // A closed socket frees its place.
      opened[0]!.socket.close();
      await opened[0]!.closed;
      let again: DashboardTestClient | null = null;
      for (let i = 0; i < 20 && again === null; i++) {
        const result = await DashboardTestClient.attempt({ url: t.dashboardUrl, caPem, token: mine });
        if (result instanceof DashboardTestClient) again = result;
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(again, 'a place freed by a close is taken again').to.not.equal(null);
      for (const c of [...opened.slice(1), other, again as DashboardTestClient]) c.socket.close();
      rows.push({ scenario: `${MAX_PER_SUBJECT + 6} sockets with one token subject`, count: MAX_PER_SUBJECT + 6, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: `${MAX_PER_SUBJECT} open (DASHBOARD_MAX_SOCKETS_PER_SUBJECT), 6 refused too_many_sockets (429, or 4429 at the check)` });
    });

    it('answers GET /dashboard without an upgrade with 426', async () => {
      const res = await httpGet(`${t.dashboardBaseUrl}/dashboard`, caPem);
      expect(res.status).to.equal(426);
      expect(res.headers['upgrade']).to.equal('websocket');
    });

    it('sends HSTS, nosniff, frame denial and a content security policy on every answer', async () => {
      for (const path of ['/', '/app.js', '/nope', '/api/session', '/dashboard']) {
        const res = await httpGet(`${t.dashboardBaseUrl}${path}`, caPem);
        expect(res.headers['strict-transport-security'], path).to.match(/^max-age=\d{7,}/);
        expect(res.headers['x-content-type-options'], path).to.equal('nosniff');
        expect(res.headers['x-frame-options'], path).to.equal('DENY');
        expect(res.headers['content-security-policy'], path).to.include("frame-ancestors 'none'").and.include("default-src 'none'").and.include("script-src 'self'");
      }
    });
  });

  describe('NATS mode (history replays)', () => {
    let nats: NatsServer;
    let t: TestServer;
    let caPem: Buffer;
    before(async () => {
      nats = await NatsServer.start();
      t = await startTestServer({
        env: {
          NATS_URL: nats.url,
          NATS_INSTANCE_ID: 'insider',
          NATS_STATE_FLUSH_MS: '100',
          DASHBOARD_MAX_REPLAYS_PER_MINUTE: String(MAX_REPLAYS_PER_MINUTE),
          DASHBOARD_MAX_BACKPRESSURE_BYTES: String(BACKPRESSURE_BYTES),
        },
      });
      caPem = readFileSync(t.pki.caChain);
    });
    after(async () => {
      await t?.stop();
      await nats?.dispose();
    });

    it(`holds a socket asking for ${REPLAY_REQUESTS} replays to ${MAX_REPLAYS_PER_MINUTE} a minute; live records still flow`, async () => {
      const since = new Date(Date.now() - 1000).toISOString();
      const car = await CarClient.connect(t.carOptions(VIN_A));
      for (let i = 0; i < STORED_RECORDS; i++) {
        expect((await car.sendRecord('V', encodeVehicleData({ vin: VIN_A, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: i } }] }))).kind).to.equal('ack');
      }
      const client = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await t.mintToken([VIN_A]) });
      await client.waitFor((m) => m.some((x) => x.type === 'hello'), 5_000, 'hello');
      const startedAt = Date.now();
      for (let i = 0; i < REPLAY_REQUESTS; i++) {
        client.send({ type: 'subscribe', vins: [VIN_A], since });
        client.send({ type: 'unsubscribe', vins: [VIN_A] });
      }
      client.send({ type: 'subscribe', vins: [VIN_A] });
      const count = (pred: (m: DashboardMessage) => boolean) => client.messages.filter(pred).length;
      await eventually(() => count((m) => m.type === 'snapshot') >= REPLAY_REQUESTS + 1, 60_000);
      const seconds = (Date.now() - startedAt) / 1000;
      const replayed = count((m) => m.type === 'record');
      const refused = count((m) => m.type === 'error' && m.code === 'too_many_replays');
      const histories = count((m) => m.type === 'history');
      // Live still flows after all that.
      expect((await car.sendRecord('V', encodeVehicleData({ vin: VIN_A, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: 999 } }] }))).kind).to.equal('ack');
      await client.waitFor((m) => m.some((x) => x.type === 'record' && JSON.stringify(x).includes('999')), 5_000, 'live record');
      rows.push({ scenario: `${REPLAY_REQUESTS} replay requests from one NATS-mode socket (${STORED_RECORDS} stored records)`, count: REPLAY_REQUESTS, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: `${histories} replays served, ${refused} refused too_many_replays, ${replayed} records sent in ${seconds.toFixed(1)} s (DASHBOARD_MAX_REPLAYS_PER_MINUTE ${MAX_REPLAYS_PER_MINUTE})` });
      const allowed = MAX_REPLAYS_PER_MINUTE + Math.ceil((seconds / 60) * MAX_REPLAYS_PER_MINUTE);
      expect(histories, 'replays served').to.be.at.most(allowed);
      expect(refused).to.be.at.least(REPLAY_REQUESTS - allowed);
      expect(replayed).to.be.at.most(allowed * STORED_RECORDS);
      client.socket.close();
      await car.close();
    });

    it('counts the replay limit in bytes: multi-byte records cannot pass it', async () => {
      const since = new Date(Date.now() - 1000).toISOString();
      const car = await CarClient.connect(t.carOptions(VIN_B));
      // 1,000 characters of a 3-byte letter: ~3 KB on the wire per record, ~1 K characters.
      const text = '\u20ac'.repeat(1_000);
      const stored = 300;
      for (let i = 0; i < stored; i++) {
        expect((await car.sendRecord('V', encodeVehicleData({ vin: VIN_B, createdAt: new Date(), data: [{ key: 'Version', value: { stringValue: `${i} ${text}` } }] }))).kind).to.equal('ack');
      }
      const client = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await t.mintToken([VIN_B]) });
      await client.waitFor((m) => m.some((x) => x.type === 'hello'), 5_000, 'hello');
      const bytes: number[] = [];
      client.socket.on('message', (data: Buffer) => bytes.push(data.byteLength));
      client.send({ type: 'subscribe', vins: [VIN_B], since });
      await client.waitFor((m) => m.some((x) => x.type === 'history'), 30_000, 'history');
      const history = client.messages.find((m) => m.type === 'history') as DashboardMessage;
      const replayedBytes = client.messages
        .filter((m) => m.type === 'record')
        .reduce((sum, m) => sum + Buffer.byteLength(JSON.stringify(m)), 0);
      const limit = Math.floor(BACKPRESSURE_BYTES / 2);
      rows.push({ scenario: `replay of ${stored} records of 3-byte characters`, count: stored, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: `${history.records} replayed, ${replayedBytes} bytes against a ${limit}-byte limit, truncated ${history.truncated}` });
      expect(history.truncated).to.equal(true);
      // JSON.stringify of the parsed message is within a few bytes of what was sent (same field order).
      expect(replayedBytes).to.be.at.most(limit);
      client.socket.close();
      await car.close();
    });
  });
});
