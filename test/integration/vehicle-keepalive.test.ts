import { expect } from 'chai';
import WebSocket from 'ws';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { holdsAfter } from '../helpers/eventually.js';

const [VIN_A, VIN_B] = TEST_VINS;
const IDLE_SECONDS = 8;

/** A car's socket as `ws` opens it, with or without answering pings (RFC 6455 says it must). */
function openCar(t: TestServer, vin: string, answerPings: boolean): Promise<WebSocket> {
  const options = t.carOptions(vin);
  const socket = new WebSocket(options.url, {
    cert: options.certPem,
    key: options.keyPem,
    ca: options.caPem,
    servername: options.servername,
    perMessageDeflate: false,
    autoPong: answerPings,
  } as WebSocket.ClientOptions & { servername?: string });
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', () => reject(new Error('upgrade refused')));
  });
}

describe('idle cars: pinged, kept while they answer, dropped when dead', function () {
  this.timeout(60_000);
  let t: TestServer;

  before(async () => {
    t = await startTestServer({ env: { VEHICLE_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS) } });
  });
  after(async () => {
    await t.stop();
  });

  it('a parked car that sends nothing but answers pings stays connected; one that does not answer is closed', async () => {
    const parked = await openCar(t, VIN_A, true);
    const dead = await openCar(t, VIN_B, false);
    const opened = Date.now();
    let parkedClosedAt = 0;
    parked.once('close', () => (parkedClosedAt = Date.now()));
    const deadClosed = new Promise<number>((resolve) => dead.once('close', () => resolve(Date.now())));
    let pings = 0;
    let onPing: () => void = () => {};
    parked.on('ping', () => {
      pings++;
      onPing();
    });
    const nextPing = () => new Promise<void>((resolve) => (onPing = resolve));

    // uWS owns these timers (4-second ticks; VEHICLE_IDLE_TIMEOUT_SECONDS is at its floor of 8), so its
    // own events pace the test: the dead car's close, then two more pings to the parked car (two more
    // ping cycles it answered, each of which would have dropped it had answering not counted). Not one
    // frame is sent by either.
    const deadAt = await bounded(deadClosed, 2 * IDLE_SECONDS * 1000 + 5000, 'the car that never answers was dropped');
    expect(deadAt - opened).to.be.at.most(2 * IDLE_SECONDS * 1000 + 1000);
    await bounded(nextPing(), 2 * IDLE_SECONDS * 1000 + 5000, 'a ping to the parked car after the dead one was closed');
    expect(parkedClosedAt, 'the parked car was not churned').to.equal(0);
    await holdsAfter(bounded(nextPing(), 2 * IDLE_SECONDS * 1000 + 5000, 'a second ping to the parked car'), () => {
      expect(parkedClosedAt, 'the parked car was not churned').to.equal(0);
      expect(parked.readyState).to.equal(WebSocket.OPEN);
    }, 500);
    expect(pings, 'the server pinged the silent car').to.be.at.least(3);
    parked.close();
  });
});

/** `promise`, or a failure naming `what` once `ms` have passed. */
async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}
