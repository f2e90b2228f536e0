import { expect } from 'chai';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { encodeVehicleAlerts, encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient, type CarReply } from '../../src/sim/car-client.js';
import { DashboardTestClient, KEYLESS_REFUSALS, type DashboardMessage, type RefusedUpgrade } from '../helpers/dashboard-client.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_JWT_SECRET, TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { TestClock } from '../helpers/test-clock.js';
import { mintDashboardToken } from '../../src/dashboard/dashboard-token.js';

const [VIN_A, VIN_B, VIN_C, VIN_D] = TEST_VINS;

function speedPayload(vin: string, speed: number, extra: Array<{ key: string; value: Record<string, unknown> }> = []): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: speed } }, ...extra] });
}

/** The VehicleSpeed of a dashboard `record` message for a V record. */
function speedOf(message: DashboardMessage): number | undefined {
  const datum = (message.record?.data as Array<{ key: string; value: { doubleValue?: number } }> | undefined)?.find((d) => d.key === 'VehicleSpeed');
  return datum?.value.doubleValue;
}

function getJson(t: TestServer, path: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: t.server.dashboardPort,
        path,
        servername: 'localhost',
        ca: readFileSync(t.pki.caChain),
        headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.startsWith('{') ? JSON.parse(body) : { text: body } }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function metricValue(t: TestServer, name: string, labels: Record<string, string>): Promise<number> {
  const text = await t.server.metrics.registry.metrics();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/**
 * The protocol tests run once per bus: the in-process default, and NATS JetStream (a real nats-server,
 * snapshots from KV + stream, records through JetStream) — a dashboard must not be able to tell.
 */
for (const mode of ['in_process', 'nats'] as const) describe(`dashboard end to end, ${mode} bus (real TLS, uWS, workers, jose${mode === 'nats' ? ', nats-server' : ''})`, function () {
  this.timeout(30_000);
  let t: TestServer;
  let nats: NatsServer | null = null;
  let caPem: Buffer;
  const open: DashboardTestClient[] = [];
  const cars: CarClient[] = [];

  async function dashboard(vins: string[], ttlSeconds?: number): Promise<DashboardTestClient> {
    const client = await DashboardTestClient.open({ url: t.dashboardUrl, caPem, token: await t.mintToken(vins, ttlSeconds) });
    open.push(client);
    await client.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
    return client;
  }

  async function car(vin: string): Promise<CarClient> {
    const c = await CarClient.connect(t.carOptions(vin));
    cars.push(c);
    return c;
  }

  before(async () => {
    const env: Record<string, string> = { DASHBOARD_MAX_BACKPRESSURE_BYTES: '65536' };
    if (mode === 'nats') {
      nats = await NatsServer.start();
      Object.assign(env, { NATS_URL: nats.url, NATS_STATE_FLUSH_MS: '200' });
    }
    t = await startTestServer({ env });
    expect(t.server.bus.name).to.equal(mode);
    caPem = readFileSync(t.pki.caChain);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    await Promise.all(cars.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await t?.stop();
    await nats?.dispose();
  });

  it('greets with the token grant, then sends the snapshot and every later record in the car order, without gap or duplicate', async () => {
    const carA = await car(VIN_A);
    for (let speed = 1; speed <= 5; speed++) expect((await carA.sendRecord('V', speedPayload(VIN_A, speed))).kind).to.equal('ack');

    const dash = await dashboard([VIN_A]);
    const hello = dash.ofType('hello')[0]!;
    expect(hello.vins).to.deep.equal([VIN_A]);
    expect(Date.parse(hello.expiresAt)).to.be.greaterThan(Date.now());
    expect(hello.vehicles[0]).to.include({ vin: VIN_A, connected: true });

    // The car keeps streaming while the dashboard subscribes: the snapshot and the live records must join up.
    const replies: Array<Promise<CarReply>> = [];
    for (let speed = 6; speed <= 40; speed++) {
      replies.push(carA.sendRecord('V', speedPayload(VIN_A, speed)));
      if (speed === 12) dash.send({ type: 'subscribe', vins: [VIN_A] });
    }
    expect((await Promise.all(replies)).every((r) => r.kind === 'ack')).to.equal(true);
    // Sent once the snapshot is out, so it is certainly after it (a slow snapshot may cover every V record).
    await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'the snapshot');
    await carA.sendRecord('alerts', encodeVehicleAlerts({ vin: VIN_A, createdAt: new Date(), alerts: [{ name: 'UI_a004_TPMS_Hard_Warning', audiences: ['Customer'], startedAt: new Date() }] }));
    await dash.waitFor((m) => m.some((x) => x.type === 'record' && x.topic === 'alerts'), 5000, 'the alert');

    const mine = dash.messages.filter((m) => m.vin === VIN_A && m.type !== 'hello');
    expect(mine[0]!.type).to.equal('snapshot');
    const snapshot = mine[0]!;
    expect(snapshot.connected).to.equal(true);
    const snapshotSpeed = snapshot.state.VehicleSpeed.value.doubleValue as number;
    expect(snapshotSpeed).to.be.within(5, 40);
    expect(Date.parse(snapshot.state.VehicleSpeed.at)).to.be.a('number').and.not.NaN;
    const speeds = mine.slice(1).filter((m) => m.type === 'record' && m.topic === 'V').map(speedOf);
    const expected = [];
    for (let s = snapshotSpeed + 1; s <= 40; s++) expected.push(s);
    expect(speeds).to.deep.equal(expected);
    const last = mine[mine.length - 1]!;
    expect(last).to.include({ type: 'record', topic: 'alerts', vin: VIN_A });
    expect(Date.parse(last.receivedAt)).to.be.closeTo(Date.now(), 10_000);
    expect(last.record.alerts[0].name).to.equal('UI_a004_TPMS_Hard_Warning');

    // Connectivity reaches the dashboard as a record too.
    await carA.close();
    cars.splice(cars.indexOf(carA), 1);
    await dash.waitFor((m) => m.some((x) => x.type === 'record' && x.topic === 'connectivity' && x.record.status === 'DISCONNECTED'), 5000, 'DISCONNECTED');
  });

  it('a token for VIN A gets nothing of VIN B, even when it subscribes to B', async () => {
    const carA = await car(VIN_A);
    const carB = await car(VIN_B);
    const dash = await dashboard([VIN_A]);
    dash.send({ type: 'subscribe', vins: [VIN_B, VIN_A] });
    await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'snapshot of A');
    expect(dash.ofType('error')[0]).to.include({ code: 'forbidden_vin', vin: VIN_B });
    for (let i = 0; i < 5; i++) {
      await carB.sendRecord('V', speedPayload(VIN_B, 100 + i));
      await carA.sendRecord('V', speedPayload(VIN_A, i));
    }
    await dash.waitFor((m) => m.filter((x) => x.type === 'record' && x.topic === 'V').length >= 5, 5000, 'records of A');
    dash.send({ type: 'vehicles' });
    await dash.waitFor((m) => m.some((x) => x.type === 'vehicles'), 5000, 'vehicles');
    expect(dash.ofType('vehicles')[0]!.vehicles.map((v: { vin: string }) => v.vin)).to.deep.equal([VIN_A]);
    // Nothing names VIN B except the refusal itself.
    expect(dash.messages.filter((m) => JSON.stringify(m).includes(VIN_B)).map((m) => m.type)).to.deep.equal(['error']);
    expect(await metricValue(t, 'fleet_telemetry_dashboard_requests_total', { result: 'forbidden_vin' })).to.be.at.least(1);
  });

  it('unsubscribe stops the records of that VIN, and a new subscribe starts again with a snapshot', async () => {
    const carC = await car(VIN_C);
    const dash = await dashboard([VIN_C]);
    dash.send({ type: 'subscribe', vins: [VIN_C] });
    await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'snapshot');
    for (let speed = 1; speed <= 3; speed++) await carC.sendRecord('V', speedPayload(VIN_C, speed));
    await dash.waitFor((m) => m.filter((x) => x.type === 'record' && x.topic === 'V').length === 3, 5000, 'three records');
    expect(await metricValue(t, 'fleet_telemetry_dashboard_watched_vehicles', {})).to.equal(1);

    dash.send({ type: 'unsubscribe', vins: [VIN_C] });
    dash.send({ type: 'vehicles' });
    await dash.waitFor((m) => m.some((x) => x.type === 'vehicles'), 5000, 'vehicles');
    expect(await metricValue(t, 'fleet_telemetry_dashboard_watched_vehicles', {})).to.equal(0);
    // Acked means handed to the hub: were they still routed here, they would come before the answer below.
    for (let speed = 4; speed <= 6; speed++) expect((await carC.sendRecord('V', speedPayload(VIN_C, speed))).kind).to.equal('ack');
    dash.send({ type: 'vehicles' });
    await dash.waitFor((m) => m.filter((x) => x.type === 'vehicles').length === 2, 5000, 'second vehicles');
    expect(dash.messages.filter((m) => m.type === 'record').map(speedOf)).to.deep.equal([1, 2, 3]);

    dash.send({ type: 'subscribe', vins: [VIN_C] });
    await dash.waitFor((m) => m.filter((x) => x.type === 'snapshot').length === 2, 5000, 'second snapshot');
    expect(dash.ofType('snapshot')[1]!.state.VehicleSpeed.value).to.deep.equal({ doubleValue: 6 });
    await carC.sendRecord('V', speedPayload(VIN_C, 7));
    await dash.waitFor((m) => m.filter((x) => x.type === 'record' && x.topic === 'V').length === 4, 5000, 'the record after the second snapshot');
    expect(dash.messages.filter((m) => m.type === 'record' && m.topic === 'V').map(speedOf)).to.deep.equal([1, 2, 3, 7]);
  });

  // The rest concerns tokens, the page and socket limits, which do not depend on the bus.
  if (mode !== 'in_process') return;

  it('a "*" token sees any car and lists the known ones', async () => {
    const carC = await car(VIN_C);
    await carC.sendRecord('V', speedPayload(VIN_C, 33));
    const dash = await dashboard(['*']);
    const hello = dash.ofType('hello')[0]!;
    expect(hello.vins).to.equal('*');
    expect(hello.vehicles.map((v: { vin: string }) => v.vin)).to.include(VIN_C);
    dash.send({ type: 'subscribe', vins: [VIN_C] });
    await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'snapshot');
    expect(dash.ofType('snapshot')[0]!.state.VehicleSpeed.value).to.deep.equal({ doubleValue: 33 });
  });

  it('refuses bad tokens, at the upgrade (401) when no key is needed, else right after it (4401), with a reason code, and counts them', async () => {
    const secret = new TextEncoder().encode(TEST_JWT_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ vins: [VIN_A] }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now - 100).setExpirationTime(now - 60).sign(secret);
    const noVins = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now + 60).sign(secret);
    const noExp = await new SignJWT({ vins: [VIN_A] }).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    const wrongKey = await new SignJWT({ vins: [VIN_A] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now + 60).sign(new TextEncoder().encode('another-secret-that-is-long-enough-000000'));
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const claims = Buffer.from(JSON.stringify({ vins: ['*'], exp: now + 60 })).toString('base64url');
    const unsigned = `${header}.${claims}.`;
    const before = await metricValue(t, 'fleet_telemetry_dashboard_auth_failures_total', { reason: 'expired' });
    const cases: Array<[string | undefined, string, boolean?]> = [
      [undefined, 'missing_token'],
      ['not-a-jwt', 'malformed_token'],
      [expired, 'expired'],
      [noVins, 'missing_vins'],
      [noExp, 'missing_exp'],
      [wrongKey, 'bad_signature'],
      [unsigned, 'algorithm_not_allowed'],
      [expired, 'expired', true],
    ];
    for (const [token, reason, inQuery] of cases) {
      const result = await DashboardTestClient.attempt({ url: t.dashboardUrl, caPem, token, tokenInQuery: inQuery });
      expect(result, reason).not.to.be.instanceOf(DashboardTestClient);
      const refused = result as RefusedUpgrade;
      expect(refused.reason, reason).to.equal(reason);
      if (KEYLESS_REFUSALS.has(reason)) {
        // Nothing to check a key against: refused at the upgrade itself.
        expect(refused.status, reason).to.equal(401);
        expect(refused.body).not.to.include(token ?? 'no-token-here');
      } else {
        // Checked right after the upgrade: closed before any message, the reason code as close reason.
        expect(refused.code, reason).to.equal(4401);
      }
    }
    expect(await metricValue(t, 'fleet_telemetry_dashboard_auth_failures_total', { reason: 'expired' })).to.equal(before + 2);

    const session = await getJson(t, '/api/session', expired);
    expect(session.status).to.equal(401);
    expect(session.body.reason).to.equal('expired');
    const good = await getJson(t, '/api/session', await t.mintToken([VIN_A, VIN_B]));
    expect(good.status).to.equal(200);
    expect(good.body.vins).to.deep.equal([VIN_A, VIN_B]);
  });

  it('refuses a browser Origin other than its own, and takes its own', async () => {
    const token = await t.mintToken([VIN_A]);
    const foreign = await DashboardTestClient.attempt({ url: t.dashboardUrl, caPem, token, headers: { Origin: 'https://evil.example.com' } });
    expect((foreign as { status: number }).status).to.equal(403);
    const own = await DashboardTestClient.attempt({ url: t.dashboardUrl, caPem, token, headers: { Origin: `https://127.0.0.1:${t.server.dashboardPort}` } });
    expect(own).to.be.instanceOf(DashboardTestClient);
    open.push(own as DashboardTestClient);
  });

  it('serves the web page and answers unknown paths with 404', async () => {
    const page = await getJson(t, '/');
    expect(page.status).to.equal(200);
    expect(String(page.body.text)).to.include('<title>');
    expect((await getJson(t, '/app.js')).status).to.equal(200);
    expect((await getJson(t, '/nope.js')).status).to.equal(404);
  });

  it('drops a dashboard that stops reading; the car keeps its acks and another dashboard keeps up', async () => {
    const carD = await car(VIN_D);
    const slow = await dashboard([VIN_D]);
    const fast = await dashboard([VIN_D]);
    slow.send({ type: 'subscribe', vins: [VIN_D] });
    fast.send({ type: 'subscribe', vins: [VIN_D] });
    await slow.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'slow snapshot');
    await fast.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'fast snapshot');
    // The slow dashboard stops reading: its TCP window fills, then the server's 64 KiB allowance.
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();

    const bulk = Array.from({ length: 400 }, (_, i) => ({ key: 'VehicleName', value: { stringValue: `padding-${i}-${'x'.repeat(40)}` } }));
    const sentAt = new Map<number, number>();
    const replies: CarReply[] = [];
    const droppedBefore = await metricValue(t, 'fleet_telemetry_dashboards_dropped_total', { reason: 'slow_consumer' });
    for (let batch = 0; batch < 40; batch++) {
      const pending: Array<Promise<CarReply>> = [];
      for (let i = 0; i < 25; i++) {
        const speed = batch * 25 + i;
        sentAt.set(speed, performance.now());
        pending.push(carD.sendRecord('V', speedPayload(VIN_D, speed, bulk)));
      }
      replies.push(...(await Promise.all(pending)));
      if ((await metricValue(t, 'fleet_telemetry_dashboards_dropped_total', { reason: 'slow_consumer' })) > droppedBefore) break;
    }
    const sent = replies.length;
    expect(replies.every((r) => r.kind === 'ack'), 'every frame acked').to.equal(true);
    expect(await metricValue(t, 'fleet_telemetry_dashboards_dropped_total', { reason: 'slow_consumer' })).to.equal(droppedBefore + 1);

    await fast.waitFor((m) => m.filter((x) => x.type === 'record').length >= sent, 15_000, 'all records at the fast dashboard');
    const records = fast.messages.map((m, i) => ({ m, at: fast.arrivals[i]! })).filter((x) => x.m.type === 'record');
    expect(records.map((x) => speedOf(x.m))).to.deep.equal(Array.from({ length: sent }, (_, i) => i));
    // Generous bound: the point is that nothing waits for the stuck dashboard.
    const latencies = records.map((x) => x.at - (sentAt.get(speedOf(x.m) as number) as number)).sort((a, b) => a - b);
    expect(latencies[Math.floor(latencies.length * 0.95)]).to.be.below(3000);

    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await Promise.race([slow.closed, new Promise((resolve) => setTimeout(() => resolve('still open'), 10_000))]);
    expect(closed).to.not.equal('still open');
    expect(fast.socket.readyState).to.equal(fast.socket.OPEN);
  });
});

/** The socket's token expiry, on a clock the test moves: the expiry is reached without waiting for it. */
describe('dashboard token expiry (real TLS, uWS; the dashboard on a test clock)', function () {
  this.timeout(30_000);
  const clock = new TestClock();
  let t: TestServer;
  const open: DashboardTestClient[] = [];

  before(async () => {
    t = await startTestServer({ overrides: { clock } });
  });
  after(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    await t?.stop();
  });

  it('accepts the token from ?access_token= and closes the socket when the token expires', async () => {
    const ttlSeconds = 600;
    const token = await mintDashboardToken({
      secret: t.config.dashboard.jwtSecret, vins: [VIN_A], ttlSeconds, now: clock.now(),
      issuer: t.config.dashboard.jwtIssuer, audience: t.config.dashboard.jwtAudience,
    });
    const dash = await DashboardTestClient.open({ url: t.dashboardUrl, caPem: readFileSync(t.pki.caChain), token, tokenInQuery: true });
    open.push(dash);
    await dash.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
    const dropped = await metricValue(t, 'fleet_telemetry_dashboards_dropped_total', { reason: 'token_expired' });

    // A second before expiry the timer, if it runs, finds the token still good and arms again.
    clock.advance((ttlSeconds - 1) * 1000);
    expect(dash.socket.readyState, 'open a second before expiry').to.equal(WebSocket.OPEN);
    expect(clock.pending, 'the expiry timer is armed').to.equal(1);

    clock.advance(1000);
    const closed = await Promise.race([dash.closed, new Promise((resolve) => setTimeout(() => resolve('still open'), 5000))]);
    expect(closed).to.deep.equal({ code: 4001, reason: 'token expired' });
    expect(await metricValue(t, 'fleet_telemetry_dashboards_dropped_total', { reason: 'token_expired' })).to.equal(dropped + 1);
    expect(clock.pending, 'no timer left behind').to.equal(0);
  });
});
