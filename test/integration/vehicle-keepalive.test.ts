import { expect } from 'chai';
import WebSocket from 'ws';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

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
    let pings = 0;
    parked.on('ping', () => pings++);
    const closedAt = { parked: 0, dead: 0 };
    const opened = Date.now();
    parked.once('close', () => (closedAt.parked = Date.now()));
    dead.once('close', () => (closedAt.dead = Date.now()));

    // Three idle periods, not one frame sent.
    await new Promise((resolve) => setTimeout(resolve, 3 * IDLE_SECONDS * 1000 + 2000));
    expect(closedAt.parked, 'the parked car was not churned').to.equal(0);
    expect(parked.readyState).to.equal(WebSocket.OPEN);
    expect(pings, 'the server pinged the silent car').to.be.at.least(2);
    expect(closedAt.dead, 'the car that never answers was dropped').to.be.greaterThan(0);
    expect(closedAt.dead - opened).to.be.at.most(2 * IDLE_SECONDS * 1000 + 1000);
    parked.close();
  });
});
