import { expect } from 'chai';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient, type CarReply } from '../../src/sim/car-client.js';
import { startTestServer, TEST_VINS, type TestServer } from '../helpers/test-server.js';

const SPREAD_MS = 1500;
/** Three sockets for each test VIN: the per-VIN cap. */
const CARS = TEST_VINS.length * 3;

interface Sent {
  at: number;
  reply: Promise<CarReply>;
}

describe('drain: going-away closes spread over SHUTDOWN_SPREAD_MS, every frame taken is answered', function () {
  this.timeout(30_000);
  let t: TestServer | null = null;

  after(async () => {
    await t?.stop().catch(() => {});
  });

  it('serves each car until its turn, closes it with 1001 once its frames are answered, and spreads the turns over the window', async () => {
    t = await startTestServer({ env: { SHUTDOWN_SPREAD_MS: String(SPREAD_MS), SHUTDOWN_GRACE_MS: '8000' } });
    const server = t;
    const cars = await Promise.all(Array.from({ length: CARS }, (_, i) => CarClient.connect(server.carOptions(TEST_VINS[i % TEST_VINS.length]!))));
    const closedAt = new Array<number>(CARS).fill(0);
    const closes = cars.map((car, i) => car.closed.then((close) => {
      closedAt[i] = Date.now();
      return close;
    }));
    const sent: Sent[][] = cars.map(() => []);
    let sending = true;
    let speed = 0;
    const pumps = cars.map(async (car, i) => {
      while (sending && closedAt[i] === 0) {
        const payload = encodeVehicleData({ vin: car.vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: ++speed } }] });
        sent[i]!.push({ at: Date.now(), reply: car.sendRecord('V', payload).catch(() => ({ kind: 'closed' }) as CarReply) });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 300));

    const stopAt = Date.now();
    const stopped = server.stop();
    const codes = (await Promise.all(closes)).map((c) => c.code);
    sending = false;
    await Promise.all(pumps);
    await stopped;
    t = null;

    expect(codes).to.deep.equal(new Array(CARS).fill(1001));
    // Spread: the first car goes at once, the last near the end of the window, the middle one in between.
    const offsets = closedAt.map((at) => at - stopAt).sort((a, b) => a - b);
    expect(offsets[0]).to.be.below(SPREAD_MS / 4);
    expect(offsets[CARS - 1]).to.be.at.least(SPREAD_MS * 0.8);
    expect(offsets[Math.floor(CARS / 2)]).to.be.within(SPREAD_MS * 0.25, SPREAD_MS * 0.75);

    for (let i = 0; i < CARS; i++) {
      const replies = await Promise.all(sent[i]!.map((s) => s.reply));
      const kinds = replies.map((r) => r.kind);
      expect(kinds.filter((k) => k !== 'ack' && k !== 'closed'), `car ${i}: no error replies`).to.deep.equal([]);
      // Every frame sent before the stop was received before it: each has its ack.
      const before = sent[i]!.filter((s) => s.at < stopAt).length;
      expect(kinds.slice(0, before).every((k) => k === 'ack'), `car ${i}: frames sent before the stop all acked`).to.equal(true);
      // Once a car's turn came its frames are left to it (resent after reconnecting); none is answered late.
      const firstUnanswered = kinds.indexOf('closed');
      if (firstUnanswered >= 0) expect(kinds.slice(firstUnanswered).every((k) => k === 'closed'), `car ${i}: nothing acked after its turn`).to.equal(true);
    }
    // Cars whose turn came late were still served after the stop began.
    const lastCar = closedAt.indexOf(Math.max(...closedAt));
    const ackedAfterStop = (await Promise.all(sent[lastCar]!.filter((s) => s.at > stopAt + SPREAD_MS / 2).map((s) => s.reply))).filter((r) => r.kind === 'ack');
    expect(ackedAfterStop.length).to.be.greaterThan(0);
  });
});
