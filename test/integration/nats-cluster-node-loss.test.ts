import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { storedVersusAcked, streamSubjectCounts } from '../../bench/probes/stream-count.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient, type CarReply } from '../../src/sim/car-client.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { NatsCluster } from '../helpers/nats-server.js';
import type { ClusterNode } from '../../tools/nats-cluster.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { eventually } from '../helpers/eventually.js';

const [VIN_A, VIN_B] = TEST_VINS;
// Only the simulated car's own timing sleeps (its resend timeout and its pace between records); the
// test's phases wait on events: acks counted, a leader elected, replicas caught up.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * How long each node stays down at least: the length of the outage is the scenario, not a guess at
 * when something is done. The client's recovery from a node it was following on is heartbeat-driven
 * (5 s heartbeats, two missed: docs/RELIABILITY.md), so only an outage this long exercises it.
 */
const FOLLOWER_DOWN_MS = 5_000;
const LEADER_DOWN_MS = 10_000;

function speed(vin: string, value: number): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: value } }] });
}

/** A car that keeps every record until acked and resends it (same txid) when no ack comes in time. */
class PersistentCar {
  readonly acked: Array<{ value: number; at: number; latencyMs: number }> = [];
  resends = 0;
  private running = true;
  private done: Promise<void>;

  constructor(private readonly car: CarClient, readonly vin: string) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let value = 0;
    while (this.running) {
      value++;
      const txid = this.car.nextTxid();
      const payload = speed(this.vin, value);
      const sentAt = performance.now();
      for (;;) {
        const reply = await Promise.race([this.car.sendRecord('V', payload, txid), sleep(3000).then(() => null)]);
        if (reply !== null && (reply as CarReply).kind === 'ack') break;
        this.resends++;
      }
      this.acked.push({ value, at: Date.now(), latencyMs: performance.now() - sentAt });
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

describe('NATS cluster: a node killed under load (a follower, then the stream leader) and brought back', function () {
  this.timeout(120_000);
  let cluster: NatsCluster;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    cluster = await NatsCluster.start(3);
    const env = (instance: string) => ({ NATS_URL: cluster.url, NATS_INSTANCE_ID: instance, NATS_STREAM_REPLICAS: '3', NATS_STATE_FLUSH_MS: '100', NATS_PUBLISH_TIMEOUT_MS: '2000' });
    a = await startTestServer({ env: env('inst-a') });
    b = await startTestServer({ env: env('inst-b') });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await cluster?.dispose();
  });

  it('loses no acked record, keeps acking cars, and dashboards keep their snapshots', async () => {
    const nc = await connect({ servers: cluster.nodes.map((n) => n.url) });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('TELEMETRY');
    expect(info.config.num_replicas).to.equal(3);
    const state = await jsm.streams.info('KV_TELEMETRY_state');
    expect(state.config.num_replicas).to.equal(3);

    const caPem = readFileSync(b.pki.caChain);
    const dash = await DashboardTestClient.open({ url: b.dashboardUrl, caPem, token: await b.mintToken([VIN_A]) });
    await dash.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
    dash.send({ type: 'subscribe', vins: [VIN_A] });
    await dash.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'the snapshot');
    let dashClosed = false;
    void dash.closed.then(() => (dashClosed = true));

    const cars = [new PersistentCar(await CarClient.connect(a.carOptions(VIN_A)), VIN_A), new PersistentCar(await CarClient.connect(a.carOptions(VIN_B)), VIN_B)];
    const leaderName = async (): Promise<string | undefined> => (await jsm.streams.info('TELEMETRY')).cluster?.leader;
    const acksBetween = (car: PersistentCar, from: number, to: number): number => car.acked.filter((r) => r.at > from && r.at <= to).length;
    const acksSince = (from: number, atLeast: number) => () => cars.every((car) => acksBetween(car, from, Infinity) >= atLeast);
    // Every replica of the stream and the KV bucket current again: the cluster has caught up with a node's return.
    const caughtUp = async (): Promise<boolean> => {
      for (const stream of ['TELEMETRY', 'KV_TELEMETRY_state']) {
        // Our own connection may be moving off the node that was down: an unanswered query is "not yet".
        const cluster = await jsm.streams.info(stream).then((info) => info.cluster, () => undefined);
        if (cluster?.leader === undefined || (cluster.replicas ?? []).length !== 2 || !(cluster.replicas ?? []).every((r) => r.current && !r.offline)) return false;
      }
      return true;
    };
    await eventually(acksSince(0, 20), 10_000, 'both cars acked under a healthy cluster');
    const leader0 = await leaderName();

    // 1. A follower dies: the stream keeps its leader and quorum, cars notice nothing but perhaps latency.
    const follower = cluster.nodes.find((node) => node.name !== leader0) as ClusterNode;
    let killedAt = Date.now();
    await follower.kill();
    // The event is the cluster seeing the follower gone; from then on the cars must keep being acked.
    let noticedAt = 0;
    await eventually(async () => {
      const replicas = await jsm.streams.info('TELEMETRY').then((info) => info.cluster?.replicas ?? [], () => []);
      if (!replicas.some((r) => r.name === follower.name && (r.offline === true || !r.current))) return false;
      noticedAt = Date.now();
      return true;
    }, 20_000, 'the cluster seeing the follower gone');
    await eventually(
      () => acksSince(noticedAt, 21)() && Date.now() - killedAt >= FOLLOWER_DOWN_MS,
      FOLLOWER_DOWN_MS + 15_000,
      'more than 20 acks per car after the cluster saw the follower gone',
    );
    const followerDownMs = Date.now() - killedAt;
    const followerOutage = cars.map((car) => acksBetween(car, killedAt, Date.now()));
    await follower.launch();
    await cluster.waitForJetStream();
    await eventually(caughtUp, 20_000, 'the follower caught up');

    // 2. The stream leader dies: JetStream answers nothing until a new leader is elected; cars are not
    // acked meanwhile, resend, and are acked again once it is (before the old leader comes back).
    const leader = await leaderName();
    const victim = cluster.nodes.find((node) => node.name === leader) ?? cluster.nodes[0]!;
    killedAt = Date.now();
    await victim.kill();
    let electedAt = 0;
    await eventually(async () => {
      const now = await leaderName().catch(() => undefined);
      if (now === undefined || now === leader) return false;
      electedAt = Date.now();
      return true;
    }, 20_000, 'a new stream leader');
    await eventually(
      () => acksSince(electedAt, 11)() && Date.now() - killedAt >= LEADER_DOWN_MS,
      LEADER_DOWN_MS + 20_000,
      'more than 10 acks per car under the new leader, the old one still down',
    );
    const leaderDownMs = Date.now() - killedAt;
    const leaderOutage = cars.map((car) => acksBetween(car, killedAt, Date.now()));
    const resumedAfterMs = Math.min(...cars.map((car) => (car.acked.find((r) => r.at > killedAt)?.at ?? Infinity) - killedAt));
    await victim.launch();
    await cluster.waitForJetStream();
    await eventually(caughtUp, 20_000, 'the old leader caught up');
    for (const car of cars) await car.stop();
    await nc.close();

    for (const count of followerOutage) expect(count, 'acks while a follower was down').to.be.greaterThan(20);
    expect(resumedAfterMs).to.be.lessThan(10_000);

    // Every acked record is in the stream, once (resends carried the same txid).
    const ackedByVin = new Map(cars.map((car) => [car.vin, car.acked.length]));
    const counted = storedVersusAcked(await streamSubjectCounts(cluster.url, 'TELEMETRY', 'telemetry'), 'telemetry', ackedByVin);
    expect(counted.missing, 'acked records missing from the stream').to.equal(0);
    expect(counted.extra, 'records stored twice').to.equal(0);

    // The dashboard watching through the killed node's outage is still open and has the last record.
    // Before followers restarted on a reconnect this took up to a minute when instance B's own
    // connection was on the killed node (docs/RELIABILITY.md); since then it is at once.
    const last = cars[0]!.acked[cars[0]!.acked.length - 1]!.value;
    const waitStarted = Date.now();
    await dash.waitFor((m) => m.some((x) => x.type === 'record' && x.topic === 'V' && x.record.data[0].value.doubleValue === last), 30_000, 'the last record');
    console.log('      dashboard caught up after', Date.now() - waitStarted, 'ms');
    expect(dashClosed).to.equal(false);
    // A dashboard opened afterwards gets a complete snapshot from the replicated KV bucket.
    const late = await DashboardTestClient.open({ url: b.dashboardUrl, caPem, token: await b.mintToken([VIN_A]) });
    await late.waitFor((m) => m.some((x) => x.type === 'hello'), 5000, 'hello');
    late.send({ type: 'subscribe', vins: [VIN_A] });
    await late.waitFor((m) => m.some((x) => x.type === 'snapshot'), 5000, 'the snapshot');
    const snapshot = late.ofType('snapshot')[0]!;
    expect(snapshot.state.VehicleSpeed.value.doubleValue).to.equal(last);

    const total = cars.reduce((sum, car) => sum + car.acked.length, 0);
    const resends = cars.reduce((sum, car) => sum + car.resends, 0);
    // Figures for docs/RELIABILITY.md.
    const worstMs = Math.max(...cars.flatMap((car) => car.acked.map((r) => r.latencyMs)));
    console.log(
      `      node-loss figures: ${total} records acked; follower down ${(followerDownMs / 1000).toFixed(1)} s: ${followerOutage.join('+')} acks; ` +
        `leader down ${(leaderDownMs / 1000).toFixed(1)} s: ${leaderOutage.join('+')} acks, ` +
        `first ack ${resumedAfterMs} ms after the kill; ${resends} resends; worst ack ${Math.round(worstMs)} ms; stream missing ${counted.missing}, extra ${counted.extra}`,
    );
    await late.close();
    await dash.close();
  });
});
