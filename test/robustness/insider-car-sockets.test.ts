// What the holder of one valid car certificate could do to the server's memory and socket table (issue
// #12): unfinished frames far past the frame limit, hundreds of sockets from one certificate, sockets past
// a total cap, sockets that never complete a frame. Run against `node dist/main.js` so the memory read
// is the server's alone (/proc/<pid>/status), with a well-behaved car acked throughout.
import { expect } from 'chai';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { TEST_VINS, testPki } from '../helpers/test-server.js';
import { CountingCar } from './helpers/counting-car.js';
import { recordFigures, type FigureRow } from './helpers/figures.js';
import { RawCarSocket, rssMbOf } from './helpers/raw-car-socket.js';
import { spawnServer, type SpawnedServer } from './helpers/spawned-server.js';
import { eventually, holdsAfter } from '../helpers/eventually.js';

const [HOSTILE_VIN, STEADY_VIN, OTHER_VIN, FOURTH_VIN] = TEST_VINS;
const PARTIAL_FRAME_BYTES = 15 * 1024 * 1024;
const HOSTILE_SOCKETS = 8;
const SAME_CERT_SOCKETS = Number(process.env.ROBUSTNESS_SAME_CERT_SOCKETS ?? 100);
const MAX_SOCKETS = 10;
const FIRST_FRAME_TIMEOUT_SECONDS = 3;
/** What 8 x 15 MiB unfinished frames may still cost the server: a few frame limits, not 120 MB. */
const MAX_HELD_GROWTH_MB = 24;

function vRecord(vin: string, n: number): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: n } }] });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

describe('robustness: what one car certificate can do (spawned server)', function () {
  this.timeout(120_000);
  let server: SpawnedServer;
  const rows: FigureRow[] = [];
  let pki: Awaited<ReturnType<typeof testPki>>;
  const open: RawCarSocket[] = [];

  const raw = (vin: string) =>
    RawCarSocket.open({ port: server.vehiclePort, certFile: pki.vehicleCert(vin), keyFile: pki.vehicleKey(vin), caFile: pki.caChain });

  async function steadyAck(n: number): Promise<number> {
    const car = await CountingCar.connect(server.carOptions(STEADY_VIN), 5_000);
    car.sendRecord('V', vRecord(STEADY_VIN, n));
    await car.waitForReplies(1, 5_000);
    const acked = car.acked;
    await car.close();
    return acked;
  }

  before(async () => {
    pki = await testPki();
    server = await spawnServer({
      env: { VEHICLE_MAX_SOCKETS: String(MAX_SOCKETS), VEHICLE_FIRST_FRAME_TIMEOUT_SECONDS: String(FIRST_FRAME_TIMEOUT_SECONDS), VEHICLE_MAX_SOCKETS_PER_VIN: '3' },
    });
  });

  afterEach(async () => {
    for (const socket of open.splice(0)) socket.destroy();
    await sleep(200);
  });

  after(() => {
    recordFigures('insider-car-sockets', rows);
    if (server.child.exitCode === null) server.kill();
  });

  it(`${HOSTILE_SOCKETS} sockets holding ${PARTIAL_FRAME_BYTES / 1048576} MiB unfinished frames cost the server at most a few frame limits`, async () => {
    const pid = server.child.pid as number;
    await sleep(300);
    const before = rssMbOf(pid);
    for (let i = 0; i < HOSTILE_SOCKETS; i++) {
      // Alternate VINs so the per-VIN cap alone cannot explain the result: this is the buffer bound.
      const socket = await raw(i % 2 === 0 ? HOSTILE_VIN : FOURTH_VIN);
      open.push(socket);
      await socket.sendUnfinishedFrame(PARTIAL_FRAME_BYTES + 1, PARTIAL_FRAME_BYTES);
    }
    await sleep(500);
    const held = rssMbOf(pid);
    const stillOpen = open.filter((s) => s.isOpen).length;
    expect(server.child.exitCode).to.equal(null);
    expect(await steadyAck(1)).to.equal(1);
    rows.push({
      scenario: `${HOSTILE_SOCKETS} sockets each sending a ${PARTIAL_FRAME_BYTES / 1048576} MiB frame left unfinished`,
      count: HOSTILE_SOCKETS,
      lost: 0,
      peakMemoryMb: held,
      worstAckMs: null,
      notes: `server RSS ${before} MB before, ${held} MB while held (+${Math.round((held - before) * 10) / 10} MB); ${stillOpen} sockets still open`,
    });
    expect(held - before, `server RSS grew from ${before} to ${held} MB`).to.be.below(MAX_HELD_GROWTH_MB);
  });

  it(`keeps at most 3 sockets per VIN of ${SAME_CERT_SOCKETS} opened with one certificate, closing the oldest`, async () => {
    for (let i = 0; i < SAME_CERT_SOCKETS; i++) {
      open.push(await raw(HOSTILE_VIN));
      // One frame each, so the first-frame deadline plays no part here.
      open[open.length - 1]!.socket.write(Buffer.from([0x82, 0x80, 0, 0, 0, 0]));
    }
    const openIndexes = () => open.map((s, i) => (s.isOpen ? i : -1)).filter((i) => i >= 0);
    // The oldest closes are the event; then a settle in which no other socket goes.
    await holdsAfter(eventually(() => openIndexes().length <= 3, 5_000, 'the oldest sockets closed'), () => {
      expect(openIndexes()).to.deep.equal([SAME_CERT_SOCKETS - 3, SAME_CERT_SOCKETS - 2, SAME_CERT_SOCKETS - 1]);
    }, 300);
    const stillOpen = openIndexes();
    rows.push({ scenario: `${SAME_CERT_SOCKETS} sockets from one certificate`, count: SAME_CERT_SOCKETS, lost: 0, peakMemoryMb: rssMbOf(server.child.pid as number), worstAckMs: null, notes: `${stillOpen.length} left open (VEHICLE_MAX_SOCKETS_PER_VIN 3): the newest` });
    expect(stillOpen).to.deep.equal([SAME_CERT_SOCKETS - 3, SAME_CERT_SOCKETS - 2, SAME_CERT_SOCKETS - 1]);
    expect(await steadyAck(2)).to.equal(1);
  });

  it(`refuses an upgrade past VEHICLE_MAX_SOCKETS (${MAX_SOCKETS}) with 503`, async () => {
    const vins = [HOSTILE_VIN, OTHER_VIN, FOURTH_VIN, STEADY_VIN];
    let refused = 0;
    for (let i = 0; i < MAX_SOCKETS + 2; i++) {
      try {
        open.push(await raw(vins[i % vins.length]!));
      } catch (error) {
        expect((error as Error).message).to.match(/^HTTP\/1\.1 503/);
        refused++;
      }
    }
    expect(open.filter((s) => s.isOpen)).to.have.length(MAX_SOCKETS);
    expect(refused).to.equal(2);
    rows.push({ scenario: `${MAX_SOCKETS + 2} sockets against VEHICLE_MAX_SOCKETS ${MAX_SOCKETS}`, count: MAX_SOCKETS + 2, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: '2 refused with 503 Retry-After' });
    for (const socket of open.splice(0)) socket.destroy();
    await sleep(300);
    expect(await steadyAck(3)).to.equal(1);
  });

  it(`closes a socket that has not completed a frame within VEHICLE_FIRST_FRAME_TIMEOUT_SECONDS (${FIRST_FRAME_TIMEOUT_SECONDS} s), and keeps one that did`, async () => {
    const stalled = await raw(OTHER_VIN);
    const healthy = await raw(FOURTH_VIN);
    open.push(stalled, healthy);
    const openedAt = Date.now();
    await stalled.sendUnfinishedFrame(1000, 10);
    healthy.socket.write(Buffer.from([0x82, 0x80, 0, 0, 0, 0]));
    await Promise.race([stalled.closed, sleep(FIRST_FRAME_TIMEOUT_SECONDS * 1000 + 3_000)]);
    expect(stalled.isOpen, 'the stalled socket was closed').to.equal(false);
    const after = ((stalled.closedAt as number) - openedAt) / 1000;
    expect(after).to.be.within(FIRST_FRAME_TIMEOUT_SECONDS - 0.5, FIRST_FRAME_TIMEOUT_SECONDS + 3);
    expect(healthy.isOpen, 'the socket that completed a frame stays').to.equal(true);
    rows.push({ scenario: 'a socket that never completes a frame', count: 1, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: `closed after ${Math.round(after * 10) / 10} s (deadline ${FIRST_FRAME_TIMEOUT_SECONDS} s); a socket that completed one stays` });
  });
});
