import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';
import { DashboardTestClient, type DashboardMessage } from '../helpers/dashboard-client.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const VIN = TEST_VINS[1];

async function counter(t: TestServer, name: string): Promise<number> {
  const metric = await t.server.metrics.registry.getSingleMetric(name)!.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

describe('recent history in NATS mode: read back from the stream, the same on every instance', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let a: TestServer;
  let b: TestServer;
  let car: CarClient;
  const story = new VehicleStory({ seed: 3 });
  const start = Date.now() - 300_000;
  let sent = 0;

  async function drive(records: number): Promise<void> {
    for (let i = 0; i < records; i++, sent++) {
      const frame = encodeVehicleData({ vin: VIN, createdAt: new Date(start + sent * 1000), data: story.next() as never });
      expect((await car.sendRecord('V', frame)).kind).to.equal('ack');
    }
  }

  async function history(t: TestServer): Promise<DashboardMessage> {
    const client = await DashboardTestClient.open({ url: t.dashboardUrl, caPem: readFileSync(t.pki.caChain), token: await t.mintToken([VIN], 600) });
    try {
      client.socket.send(JSON.stringify({ type: 'history', vin: VIN, maxPoints: 5000 }));
      await client.waitFor((messages) => messages.some((m) => m.type === 'recent_history' || m.type === 'error'), 20_000, 'the history answer');
      const answer = client.messages.find((m) => m.type === 'recent_history' || m.type === 'error')!;
      expect(answer.type, JSON.stringify(answer)).to.equal('recent_history');
      return answer;
    } finally {
      client.socket.close();
    }
  }

  before(async () => {
    nats = await NatsServer.start();
    const env = (instance: string) => ({ NATS_URL: nats.url, NATS_INSTANCE_ID: instance, NATS_STATE_FLUSH_MS: '100' });
    a = await startTestServer({ env: env('hist-a') });
    b = await startTestServer({ env: env('hist-b') });
    car = await CarClient.connect(a.carOptions(VIN));
  });
  after(async () => {
    await car?.close();
    await a?.stop();
    await b?.stop();
    await nats?.dispose();
  });

  it('an instance that never had the car answers exactly as the one it streams to, and stays current', async () => {
    await drive(200);
    const fromA = await history(a);
    const fromB = await history(b);
    expect(fromB.trips).to.have.length(1);
    expect(fromB.charges).to.have.length(1);
    expect(fromB.t.length).to.be.greaterThan(30);
    expect({ ...fromB, from: null, to: null }).to.deep.equal({ ...fromA, from: null, to: null });

    // Only the instance the car streams to counts its trips and charges.
    expect(await counter(a, 'fleet_telemetry_trips_total')).to.equal(1);
    expect(await counter(b, 'fleet_telemetry_trips_total')).to.equal(0);

    // B watches the VIN now: newer records reach its copy without another read of the stream.
    const before = fromB.t[fromB.t.length - 1] as number;
    await drive(30);
    const deadline = Date.now() + 10_000;
    let newest = before;
    while (newest < before + 20 && Date.now() < deadline) {
      const again = await history(b);
      newest = again.t[again.t.length - 1] as number;
    }
    expect(newest).to.be.at.least(before + 20);
  });
});
