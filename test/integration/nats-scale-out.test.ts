import { expect } from 'chai';
import type { NatsRecordBus } from '../../src/bus/nats/nats-record-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient, type CarReply } from '../../src/sim/car-client.js';
import { readFileSync } from 'node:fs';
import { DashboardTestClient, type DashboardMessage } from '../helpers/dashboard-client.js';
import { NatsCluster, NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { eventually, holdsAfter } from '../helpers/eventually.js';
import { scrapeSum } from '../helpers/metrics-tools.js';
import { dashboardMessageOf } from '../../src/dashboard/dashboard-protocol.js';

const [VIN_A, VIN_B, VIN_C, VIN_D] = TEST_VINS;

function speed(vin: string, value: number): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: value } }] });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The VehicleSpeed values of a dashboard's V records, in arrival order. */
function speedsOf(messages: DashboardMessage[]): number[] {
  return messages
    .filter((m) => m.type === 'record' && m.topic === 'V')
    .map((m) => (m.record.data as Array<{ key: string; value: { doubleValue: number } }>).find((d) => d.key === 'VehicleSpeed')?.value.doubleValue as number);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

function natsBus(t: TestServer): NatsRecordBus {
  expect(t.server.bus.name).to.equal('nats');
  return t.server.bus as NatsRecordBus;
}

async function stored(t: TestServer, vin: string, topic: string, sinceMs = 0): Promise<BusRecord[]> {
  const records: BusRecord[] = [];
  await natsBus(t).replay(vin, sinceMs, (record) => {
    if (record.topic === topic) records.push(record);
  });
  return records;
}

function natsEnv(nats: { url: string }, instance: string, extra: Record<string, string> = {}): Record<string, string> {
  return { NATS_URL: nats.url, NATS_INSTANCE_ID: instance, NATS_STATE_FLUSH_MS: '100', ...extra };
}

/** The same tests against one nats-server and against a 3-node JetStream cluster with 3 replicas. */
const TOPOLOGIES: Array<{ name: string; start: () => Promise<{ url: string; dispose(): Promise<void> }>; env: Record<string, string> }> = [
  { name: 'real nats-server, two instances', start: (): Promise<{ url: string; dispose(): Promise<void> }> => NatsServer.start(), env: {} },
  { name: '3-node JetStream cluster, 3 replicas, two instances', start: () => NatsCluster.start(3), env: { NATS_STREAM_REPLICAS: '3' } },
];

for (const topology of TOPOLOGIES)
describe(`scale-out over NATS JetStream (${topology.name})`, function () {
  this.timeout(60_000);
  let nats: { url: string; dispose(): Promise<void> };
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    nats = await topology.start();
    a = await startTestServer({ env: natsEnv(nats, 'inst-a', topology.env) });
    b = await startTestServer({ env: natsEnv(nats, 'inst-b', topology.env) });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await nats?.dispose();
  });

  it('a car on A: a watcher on B gets a complete snapshot, then live records in order', async () => {
    const car = await CarClient.connect(a.carOptions(VIN_A));
    const first = await car.sendRecord('V', encodeVehicleData({
      vin: VIN_A, createdAt: new Date(), data: [{ key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } }, { key: 'VehicleSpeed', value: { doubleValue: 1 } }],
    }));
    expect(first.kind).to.equal('ack');

    const seen: BusRecord[] = [];
    b.server.bus.subscribe((record) => {
      if (record.vin === VIN_A) seen.push(record);
    });
    b.server.bus.watch(VIN_A);
    // The state writer coalesces; the snapshot on B must still be complete once it has flushed.
    await eventually(async () => (await b.server.snapshots.snapshot(VIN_A)).state.has('Gear'));
    const snapshot = await b.server.snapshots.snapshot(VIN_A);
    expect(snapshot.connected).to.equal(true);
    expect(snapshot.state.get('Gear')?.value).to.equal('{"shiftStateValue":"ShiftStateD"}');
    expect(snapshot.lastSeenAt).to.be.a('number');

    const txids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const txid = car.nextTxid();
      txids.push(txid);
      void car.sendRecord('V', speed(VIN_A, i), txid);
    }
    await eventually(() => seen.filter((r) => r.topic === 'V').length >= 20);
    const live = seen.filter((r) => r.topic === 'V');
    expect(live.map((r) => r.txid)).to.deep.equal(txids);
    expect(dashboardMessageOf(live[5]!)).to.contain('"doubleValue":5');
    b.server.bus.unwatch(VIN_A);
    await car.close();
  });

  it('dashboards on B (real sockets) for a car on A: snapshot then live, and since: history then live, in order, once', async () => {
    const car = await CarClient.connect(a.carOptions(VIN_D));
    const dashboards: DashboardTestClient[] = [];
    try {
      for (let i = 0; i < 3; i++) expect((await car.sendRecord('V', speed(VIN_D, i))).kind).to.equal('ack');
      await sleep(50);
      const since = new Date();
      await sleep(50);
      for (let i = 3; i < 8; i++) expect((await car.sendRecord('V', speed(VIN_D, i))).kind).to.equal('ack');

      const caPem = readFileSync(b.pki.caChain);
      const token = await b.mintToken([VIN_D]);
      const live = await DashboardTestClient.open({ url: b.dashboardUrl, caPem, token });
      const history = await DashboardTestClient.open({ url: b.dashboardUrl, caPem, token });
      dashboards.push(live, history);
      await live.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
      await history.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');

      // The car keeps streaming while both subscribe on the other instance.
      const replies: Array<Promise<CarReply>> = [];
      for (let i = 8; i <= 30; i++) {
        replies.push(car.sendRecord('V', speed(VIN_D, i)));
        if (i === 10) {
          live.send({ type: 'subscribe', vins: [VIN_D] });
          history.send({ type: 'subscribe', vins: [VIN_D], since: since.toISOString() });
        }
      }
      expect((await Promise.all(replies)).every((r) => r.kind === 'ack')).to.equal(true);
      await live.waitFor((m) => m.some((x) => x.type === 'snapshot'), 10_000, 'snapshot');
      await history.waitFor((m) => m.some((x) => x.type === 'history'), 10_000, 'history marker');
      expect((await car.sendRecord('V', speed(VIN_D, 31))).kind).to.equal('ack');
      await live.waitFor((m) => speedsOf(m).includes(31), 10_000, 'the last record on the live dashboard');
      await history.waitFor((m) => speedsOf(m).includes(31), 10_000, 'the last record on the history dashboard');

      // Snapshot complete on B (everything acked before the subscribe), then every later record once.
      const snapshot = live.ofType('snapshot')[0]!;
      const snapshotSpeed = snapshot.state.VehicleSpeed.value.doubleValue as number;
      expect(snapshotSpeed).to.be.within(7, 31);
      expect(snapshot.connected).to.equal(true);
      expect(speedsOf(live.messages)).to.deep.equal(range(snapshotSpeed + 1, 31));

      // History from `since` (3..), then the marker, then live, with nothing repeated or missing.
      const types = history.messages.map((m) => m.type);
      expect(types.slice(0, 2)).to.deep.equal(['hello', 'snapshot']);
      const marker = types.indexOf('history');
      expect(speedsOf(history.messages)).to.deep.equal(range(3, 31));
      const replayed = speedsOf(history.messages.slice(0, marker));
      expect(replayed.slice(0, 5)).to.deep.equal([3, 4, 5, 6, 7]);
      expect(history.messages[marker]).to.include({ vin: VIN_D, since: since.toISOString(), records: replayed.length, truncated: false });
      expect(history.messages.filter((m) => m.type === 'error')).to.deep.equal([]);
    } finally {
      await Promise.all(dashboards.map((d) => d.close()));
      await car.close();
    }
  });

  it('one CONNECTED and one DISCONNECTED for a car with sockets on both instances', async () => {
    const since = Date.now() - 1000;
    const wifi = await CarClient.connect(a.carOptions(VIN_B, { networkInterface: 'wifi', connectionTxid: 'c0ffee00-0000-4000-8000-00000000000a' }));
    await eventually(async () => (await stored(a, VIN_B, 'connectivity', since)).length === 1);
    const cellular = await CarClient.connect(b.carOptions(VIN_B, { networkInterface: 'cellular', connectionTxid: 'c0ffee00-0000-4000-8000-00000000000b' }));
    await sleep(300);
    const aMetrics = `http://127.0.0.1:${a.server.metricsPort}/metrics`;
    const disconnects = await scrapeSum(aMetrics, 'fleet_telemetry_vehicle_disconnects_total');
    await wifi.close();
    // A counting the close is the event; then a settle in which no DISCONNECTED is stored.
    let records: BusRecord[] = [];
    await holdsAfter(eventually(async () => (await scrapeSum(aMetrics, 'fleet_telemetry_vehicle_disconnects_total')) > disconnects, 5000, 'the close counted on A'), async () => {
      records = await stored(a, VIN_B, 'connectivity', since);
      expect(records.map((r) => JSON.parse(r.recordJson ?? 'null').status)).to.deep.equal(['CONNECTED']);
    }, 300);
    expect((await a.server.snapshots.snapshot(VIN_B)).connected).to.equal(true);
    await cellular.close();
    await eventually(async () => (records = await stored(a, VIN_B, 'connectivity', since)).length === 2);
    expect(records.map((r) => JSON.parse(r.recordJson ?? 'null').status)).to.deep.equal(['CONNECTED', 'DISCONNECTED']);
    expect((await b.server.snapshots.snapshot(VIN_B)).connected).to.equal(false);
  });

  it('replays records since a time, in order, and only those', async () => {
    const car = await CarClient.connect(b.carOptions(VIN_C));
    const before: string[] = [];
    for (let i = 0; i < 3; i++) before.push((await car.sendRecord('V', speed(VIN_C, i))).txid);
    await sleep(250);
    const since = Date.now();
    await sleep(50);
    const after: string[] = [];
    for (let i = 3; i < 8; i++) {
      const reply = await car.sendRecord('V', speed(VIN_C, i));
      expect(reply.kind).to.equal('ack');
      after.push(reply.txid);
    }
    const replayed = await stored(a, VIN_C, 'V', since);
    expect(replayed.map((r) => r.txid)).to.deep.equal(after);
    expect(dashboardMessageOf(replayed[0]!)).to.contain('"doubleValue":3');
    const all = await stored(a, VIN_C, 'V', 0);
    expect(all.map((r) => r.txid)).to.deep.equal([...before, ...after]);
    const replays = (await a.server.metrics.nats.replayRequests.get()).values.find((v) => v.labels.result === 'ok');
    expect(replays?.value).to.be.greaterThan(0);
    await car.close();
  });
});

describe('NATS outage: no ack without storage, resends stored once', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let t: TestServer;

  before(async () => {
    nats = await NatsServer.start();
    t = await startTestServer({ env: natsEnv(nats, 'inst-outage', { NATS_PUBLISH_TIMEOUT_MS: '800', NATS_MAX_PENDING_PUBLISHES: '100' }) });
  });
  after(async () => {
    await t?.stop();
    await nats?.dispose();
  });

  it('acks only what JetStream stored and stores every frame exactly once after resends', async () => {
    const vin = TEST_VINS[3];
    const car = await CarClient.connect(t.carOptions(vin));
    const frames = new Map<string, Uint8Array>();
    const acked = new Set<string>();
    const send = async (txid: string): Promise<CarReply | 'none'> => {
      const reply = await Promise.race([car.sendRecord('V', frames.get(txid) as Uint8Array, txid), sleep(2500).then(() => 'none' as const)]);
      if (reply !== 'none' && reply.kind === 'ack') acked.add(txid);
      return reply;
    };
    for (let i = 0; i < 5; i++) {
      const txid = car.nextTxid();
      frames.set(txid, speed(vin, i));
      expect((await send(txid)) as CarReply).to.include({ kind: 'ack' });
    }

    await nats.stop();
    const during: string[] = [];
    for (let i = 5; i < 10; i++) {
      const txid = car.nextTxid();
      frames.set(txid, speed(vin, i));
      during.push(txid);
    }
    const outcomes = await Promise.all(during.map((txid) => send(txid)));
    expect(outcomes.every((o) => o === 'none'), 'no ack while NATS is down').to.equal(true);
    await eventually(async () => (await t.server.metrics.nats.natsPublishFailures.get()).values.reduce((sum, v) => sum + v.value, 0) >= during.length);

    await nats.launch();
    // The car resends what was not acked, as a car with delivery_policy latest does.
    await eventually(async () => {
      for (const txid of frames.keys()) if (!acked.has(txid)) await send(txid);
      return acked.size === frames.size;
    }, 30_000);

    const records = await stored(t, vin, 'V');
    expect(records.map((r) => r.txid)).to.have.members([...frames.keys()]);
    expect(records).to.have.length(frames.size);
    await car.close();
  });
});
