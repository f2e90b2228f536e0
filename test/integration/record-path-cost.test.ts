// What a record costs when nobody needs its extras: a lone frame is decoded on the main thread while
// no decode task runs (no thread round trip), and a record whose VIN no dashboard watches carries no
// dashboard message. In both bus modes; in NATS mode a dashboard on another instance still gets the
// records of a car whose own instance has no dashboard for it.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { dashboardRecordMessage } from '../../src/dashboard/dashboard-protocol.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN_A, VIN_B] = TEST_VINS;

function speedPayload(vin: string, speed: number, isResend = false): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), isResend, data: [{ key: 'VehicleSpeed', value: { doubleValue: speed } }] });
}

async function counter(t: TestServer, name: string, labels: Record<string, string>): Promise<number> {
  const text = await t.server.metrics.registry.metrics();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && wanted.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Records of `vin` as this instance's bus listeners see them. */
function tap(t: TestServer, vin: string): { records: BusRecord[]; stop: () => void } {
  const records: BusRecord[] = [];
  // A copy: the hub may fill dashboardMessage in later (dashboardMessageOf); what the decoder made is what
  // counts. The fields read from the decode batch are getters: copied by name.
  const stop = t.server.bus.subscribe((record) => {
    if (record.vin === vin) records.push({ ...record, recordJson: record.recordJson, dashboardMessage: record.dashboardMessage });
  });
  return { records, stop };
}

async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const mode of ['in_process', 'nats'] as const) describe(`record path cost, ${mode} bus (real TLS, uWS, workers${mode === 'nats' ? ', nats-server' : ''})`, function () {
  this.timeout(60_000);
  let nats: NatsServer | null = null;
  let a: TestServer;
  /** NATS mode: a second instance, where the dashboards are. */
  let b: TestServer | null = null;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    const env: Record<string, string> = {};
    if (mode === 'nats') {
      nats = await NatsServer.start();
      Object.assign(env, { NATS_URL: nats.url, NATS_STATE_FLUSH_MS: '100' });
    }
    a = await startTestServer({ env: { ...env, ...(mode === 'nats' ? { NATS_INSTANCE_ID: 'cost-a' } : {}) } });
    if (mode === 'nats') b = await startTestServer({ env: { ...env, NATS_INSTANCE_ID: 'cost-b' } });
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await nats?.dispose();
  });

  async function car(t: TestServer, vin: string): Promise<CarClient> {
    const c = await CarClient.connect(t.carOptions(vin));
    closers.push(() => c.close());
    return c;
  }

  async function dashboard(t: TestServer, vins: string[]): Promise<DashboardTestClient> {
    const client = await DashboardTestClient.open({ url: t.dashboardUrl, caPem: readFileSync(t.pki.caChain), token: await t.mintToken(vins) });
    closers.push(() => client.close());
    client.send({ type: 'subscribe', vins });
    await client.waitFor((m) => m.some((x) => x.type === 'snapshot' && x.vin === vins[0]), 10_000, 'the snapshot');
    return client;
  }

  it('decodes lone frames on the main thread while no task runs, acks them in order, and keeps their records whole', async () => {
    const inlineBefore = await counter(a, 'fleet_telemetry_decode_batches_total', { path: 'inline' });
    const carA = await car(a, VIN_A);
    const seen = tap(a, VIN_A);
    closers.push(async () => seen.stop());
    for (let speed = 1; speed <= 20; speed++) {
      const reply = await carA.sendRecord('V', speedPayload(VIN_A, speed), `lone-${speed}`);
      expect(reply.kind).to.equal('ack');
      expect(reply.txid).to.equal(`lone-${speed}`);
    }
    const inlineAfter = await counter(a, 'fleet_telemetry_decode_batches_total', { path: 'inline' });
    // One frame at a time with the pool idle: every one of them (the connectivity record is not decoded).
    expect(inlineAfter - inlineBefore).to.be.at.least(20);
    await waitUntil(() => seen.records.filter((r) => r.topic === 'V').length >= 20, 'the records on the bus');
    const speeds = seen.records.filter((r) => r.topic === 'V').map((r) => JSON.parse(r.recordJson!).data[0].value.doubleValue);
    expect(speeds).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const record of seen.records.filter((r) => r.topic === 'V')) expect(JSON.parse(record.recordJson!).vin).to.equal(VIN_A);
  });

  it('builds no dashboard message for a VIN nobody watches, and the usual message once a dashboard watches it', async () => {
    const carA = await car(a, VIN_A);
    const seen = tap(a, VIN_A);
    closers.push(async () => seen.stop());
    for (let speed = 1; speed <= 3; speed++) expect((await carA.sendRecord('V', speedPayload(VIN_A, speed, speed === 3))).kind).to.equal('ack');
    await waitUntil(() => seen.records.filter((r) => r.topic === 'V').length >= 3, 'the unwatched records on the bus');
    for (const record of seen.records.filter((r) => r.topic === 'V')) {
      expect(record.dashboardMessage, 'no dashboard bytes for an unwatched VIN').to.equal('');
      expect(record.recordJson).to.be.a('string');
    }

    // In NATS mode the dashboard is on the other instance: the car's own instance still has no watcher.
    const where = b ?? a;
    const dash = await dashboard(where, [VIN_A]);
    seen.records.length = 0;
    for (let speed = 10; speed <= 12; speed++) expect((await carA.sendRecord('V', speedPayload(VIN_A, speed, speed === 12))).kind).to.equal('ack');
    await dash.waitFor((m) => m.filter((x) => x.type === 'record' && x.topic === 'V').length >= 3, 10_000, 'three records');
    const received = dash.ofType('record').filter((m) => m.topic === 'V');
    expect(received.map((m) => m.record.data[0].value.doubleValue)).to.deep.equal([10, 11, 12]);
    expect(received.map((m) => m.resend === true)).to.deep.equal([false, false, true]);
    await waitUntil(() => seen.records.filter((r) => r.topic === 'V').length >= 3, 'the watched records on the bus');
    for (const record of seen.records.filter((r) => r.topic === 'V')) {
      if (b === null) {
        // Watched here: the decoder wrote the message, the same text as building it from the record.
        const isResend = JSON.parse(record.recordJson!).isResend === true;
        expect(record.dashboardMessage).to.equal(dashboardRecordMessage(record.vin, 'V', record.receivedAt, record.recordJson, isResend));
      } else {
        // Watched only on the other instance, which builds its message from the stream.
        expect(record.dashboardMessage).to.equal('');
      }
    }
    // Another VIN, unwatched anywhere, still costs no dashboard bytes.
    const carB = await car(a, VIN_B);
    const seenB = tap(a, VIN_B);
    closers.push(async () => seenB.stop());
    expect((await carB.sendRecord('V', speedPayload(VIN_B, 1))).kind).to.equal('ack');
    await waitUntil(() => seenB.records.some((r) => r.topic === 'V'), 'the record of the other VIN');
    expect(seenB.records.find((r) => r.topic === 'V')!.dashboardMessage).to.equal('');
  });
});
