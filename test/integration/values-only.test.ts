// A record whose VIN no dashboard watches, with no sink that reads record text, is decoded values only
// (TEXT_LEVEL.VALUES_ONLY): its datums' Values and created_at, no record JSON. Nothing of the server's
// own path asks for its JSON; a bus listener that does gets the whole record, certificate VIN included;
// a dashboard that starts watching the car gets its state in the snapshot, then its records live.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { transcoderStats } from '../../src/decode/decode-batch.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { DashboardTestClient } from '../helpers/dashboard-client.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const [VIN_A, VIN_B] = TEST_VINS;

function payload(speed: number, at: Date): Uint8Array {
  return encodeVehicleData({
    vin: 'SPOOFED0000000000',
    createdAt: at,
    data: [
      { key: 'VehicleSpeed', value: { doubleValue: speed } },
      { key: 'Soc', value: { doubleValue: 50 + speed } },
      { key: 'Location', value: { stringValue: '(37.5 N, 122.25 W)' } },
    ],
  });
}

async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('values only: an unwatched car\'s records without their text (real TLS, uWS, workers, in-process bus)', function () {
  this.timeout(60_000);
  let t: TestServer;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    t = await startTestServer();
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  after(async () => {
    await t?.stop();
  });

  async function car(vin: string): Promise<CarClient> {
    const c = await CarClient.connect(t.carOptions(vin));
    closers.push(() => c.close());
    return c;
  }

  it('keeps the state and history without making a record JSON, and a dashboard that starts watching gets the snapshot, then the records live', async () => {
    const carA = await car(VIN_A);
    const base = Date.parse('2026-11-30T10:00:00Z');
    const before = transcoderStats.recordJsonOnDemand;
    for (let speed = 1; speed <= 5; speed++) expect((await carA.sendRecord('V', payload(speed, new Date(base + speed * 1000)))).kind).to.equal('ack');
    // The state is kept (the snapshot below) and the history folds the samples: nobody asked for the text.
    t.server.history?.drain();
    expect(transcoderStats.recordJsonOnDemand - before, 'record JSONs made on demand with nobody reading them').to.equal(0);

    const client = await DashboardTestClient.open({ url: t.dashboardUrl, caPem: readFileSync(t.pki.caChain), token: await t.mintToken([VIN_A]) });
    closers.push(() => client.close());
    client.send({ type: 'subscribe', vins: [VIN_A] });
    await client.waitFor((m) => m.some((x) => x.type === 'snapshot' && x.vin === VIN_A), 10_000, 'the snapshot');
    const snapshot = client.ofType('snapshot')[0]!;
    expect(snapshot.state.VehicleSpeed.value).to.deep.equal({ doubleValue: 5 });
    expect(snapshot.state.Soc.value).to.deep.equal({ doubleValue: 55 });
    expect(snapshot.state.Location.value).to.deep.equal({ locationValue: { latitude: 37.5, longitude: -122.25 } });
    expect(Date.parse(snapshot.state.VehicleSpeed.at)).to.equal(base + 5000);

    for (let speed = 6; speed <= 7; speed++) expect((await carA.sendRecord('V', payload(speed, new Date(base + speed * 1000)))).kind).to.equal('ack');
    await client.waitFor((m) => m.filter((x) => x.type === 'record' && x.topic === 'V').length >= 2, 10_000, 'two live records');
    const live = client.ofType('record').filter((m) => m.topic === 'V');
    expect(live.map((m) => m.record.data[0].value.doubleValue)).to.deep.equal([6, 7]);
    expect(live.every((m) => m.record.vin === VIN_A && m.vin === VIN_A)).to.equal(true);
  });

  it('gives a bus listener that asks for the record JSON the whole record, certificate VIN and Location rewritten', async () => {
    const carB = await car(VIN_B);
    const seen: Array<{ json: string | null; dashboardMessage: string }> = [];
    const stop = t.server.bus.subscribe((record: BusRecord) => {
      if (record.vin === VIN_B && record.topic === 'V') seen.push({ json: record.recordJson, dashboardMessage: record.dashboardMessage });
    });
    closers.push(async () => stop());
    const before = transcoderStats.recordJsonOnDemand;
    const at = new Date('2026-11-30T11:00:00.500Z');
    expect((await carB.sendRecord('V', payload(42, at))).kind).to.equal('ack');
    await waitUntil(() => seen.length >= 1, 'the record on the bus');
    expect(seen[0]!.dashboardMessage).to.equal('');
    expect(transcoderStats.recordJsonOnDemand - before).to.equal(1);
    expect(JSON.parse(seen[0]!.json!)).to.deep.equal({
      data: [
        { key: 'VehicleSpeed', value: { doubleValue: 42 } },
        { key: 'Soc', value: { doubleValue: 92 } },
        { key: 'Location', value: { locationValue: { latitude: 37.5, longitude: -122.25 } } },
      ],
      createdAt: at.toISOString(),
      vin: VIN_B,
      isResend: false,
    });
  });
});
