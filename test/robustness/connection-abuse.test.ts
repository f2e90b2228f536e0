// Connection abuse against the real server on loopback (real TLS, uWS, decode workers): clients without
// certificates, with a certificate from another CA, half-open TLS handshakes, slow upgrade requests, text
// frames, oversize frames and a frame flood from one car, while a well-behaved car keeps sending. Every
// scenario records what was lost (must be 0), peak memory and the well-behaved car's worst ack latency.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import { createCertificateAuthority, issueCertificate } from '../../src/pki/dev-certs.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { TEST_JWT_SECRET, TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { CountingCar } from './helpers/counting-car.js';
import { recordFigures, type FigureRow } from './helpers/figures.js';
import { capturedLogger, leakedSecrets, secretNeedles } from './helpers/log-capture.js';
import { PeakMemory, retainedMemory } from './helpers/memory.js';
import { SteadyCar } from './helpers/steady-car.js';
import { SteppedWallClock } from '../helpers/test-clock.js';

const [, STEADY_VIN, ABUSER_VIN, FLOOD_VIN] = TEST_VINS;
const RATE_LIMIT = 100;
/** Bounds stated in RELIABILITY.md: generous for a shared 2-core machine, tight enough to catch a stall. */
const MAX_STEADY_ACK_MS = 1_500;
const MAX_RETAINED_GROWTH_MB = 48;
/**
 * How long the half-open and slow sockets are held. In the normal suite 3 s (enough to show real cars are
 * unaffected); `npm run robustness` holds them 40 s, past the ~31 s after which uWS was measured to close
 * them, and then requires that the server closed every one.
 */
const HOLD_MS = Number(process.env.ROBUSTNESS_HOLD_MS ?? 3_000);
const SERVER_CLOSES_STALLED_WITHIN_MS = 40_000;

async function inParallel<T>(count: number, concurrency: number, attempt: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await attempt(i);
    }
  });
  await Promise.all(lanes);
  return results;
}

async function counterValue(counter: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((sum, v) => sum + v.value, 0);
}

function vRecord(vin: string, n: number): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: n } }] });
}

describe('robustness: connection abuse (real server, loopback)', function () {
  this.timeout(120_000 + HOLD_MS);
  let t: TestServer;
  let steady: SteadyCar;
  let peak: PeakMemory;
  let logs: ReturnType<typeof capturedLogger>;
  let memoryBefore: ReturnType<typeof retainedMemory>;
  const rows: FigureRow[] = [];
  const caPem = () => readFileSync(t.pki.caChain);

  /** Closes a phase: the steady car's worst latency meanwhile, and its books still balanced. */
  function endPhase(row: Omit<FigureRow, 'worstAckMs' | 'peakMemoryMb'>): void {
    peak.sample();
    const worst = steady.phase();
    rows.push({ ...row, worstAckMs: worst, peakMemoryMb: peak.peakRssMb });
    expect(worst, `steady car worst ack during "${row.scenario}"`).to.be.below(MAX_STEADY_ACK_MS);
    expect(steady.car.isOpen, 'the steady car keeps its connection').to.equal(true);
  }

  const frameClock = new SteppedWallClock();

  before(async () => {
    logs = capturedLogger('debug');
    t = await startTestServer({
      env: { VEHICLE_MAX_FRAMES_PER_SECOND: String(RATE_LIMIT), DECODE_WORKERS: '1' },
      // Frames are stamped and budgeted on this clock, so the refill check moves it instead of waiting.
      overrides: { logger: logs.logger, frameClock: frameClock.now },
    });
    memoryBefore = retainedMemory();
    peak = new PeakMemory();
    steady = await SteadyCar.start(t.carOptions(STEADY_VIN));
    await new Promise((resolve) => setTimeout(resolve, 200));
    steady.phase();
  });

  after(async () => {
    if (steady) await steady.stop().catch(() => {});
    peak?.stop();
    await t?.stop();
    recordFigures('connection-abuse', rows);
  });

  it('refuses 200 clients without a certificate with 401, counted by reason', async () => {
    const before = await counterValue(t.server.metrics.vehicle.connectionRefusals, { reason: 'no_certificate' });
    const statuses = await inParallel(200, 40, () =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(`wss://127.0.0.1:${t.server.vehiclePort}/`, { ca: caPem(), servername: 'localhost' } as WebSocket.ClientOptions);
        socket.once('unexpected-response', (_req, res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          socket.terminate();
        });
        socket.once('open', () => {
          resolve(101);
          socket.terminate();
        });
        socket.once('error', () => resolve(-1));
      }),
    );
    expect(statuses.filter((s) => s === 401)).to.have.length(200);
    expect((await counterValue(t.server.metrics.vehicle.connectionRefusals, { reason: 'no_certificate' })) - before).to.equal(200);
    endPhase({ scenario: 'clients without a certificate (WebSocket upgrade)', count: 200, lost: 0, notes: 'all 401; counted in vehicle_connection_refusals_total{reason="no_certificate"}' });
  });

  it('refuses 100 clients whose certificate comes from another CA in the TLS handshake', async () => {
    const rogueCa = await createCertificateAuthority({ commonName: 'Rogue CA' });
    const rogue = await issueCertificate({ issuer: rogueCa, commonName: STEADY_VIN, clientAuth: true });
    const outcomes = await inParallel(100, 25, () =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(`wss://127.0.0.1:${t.server.vehiclePort}/`, {
          ca: caPem(), servername: 'localhost', cert: rogue.certPem, key: rogue.keyPem,
        } as WebSocket.ClientOptions);
        socket.once('open', () => {
          resolve('open');
          socket.terminate();
        });
        socket.once('unexpected-response', (_req, res) => {
          res.resume();
          resolve(`http_${res.statusCode}`);
        });
        socket.once('error', (error) => resolve(/unknown ca|alert|hang up|ECONNRESET/i.test(error.message) ? 'tls_refused' : error.message));
      }),
    );
    expect(outcomes.filter((o) => o === 'tls_refused'), JSON.stringify(outcomes.slice(0, 3))).to.have.length(100);
    endPhase({ scenario: 'clients with a certificate from another CA', count: 100, lost: 0, notes: 'all refused in the TLS handshake (unknown_ca); uWS gives no hook, so no metric counts these' });
  });

  it('holds 100 half-open TLS handshakes and 100 slow upgrade requests without hurting real cars', async () => {
    const port = t.server.vehiclePort;
    const sockets: net.Socket[] = [];
    const closedByServer = { halfOpen: 0, slow: 0 };
    for (let i = 0; i < 100; i++) {
      // A TLS record header promising a 512-byte ClientHello, then a few bytes of it, then silence.
      const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])));
      s.on('error', () => {});
      s.on('close', () => closedByServer.halfOpen++);
      sockets.push(s);
    }
    const trickles: NodeJS.Timeout[] = [];
    await inParallel(100, 25, () =>
      new Promise<void>((resolve) => {
        const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: caPem() }, () => {
          s.write('GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n');
          trickles.push(setInterval(() => s.write(`X-Slow-${Date.now()}: 1\r\n`), 500));
          resolve();
        });
        s.on('error', () => resolve());
        s.on('close', () => closedByServer.slow++);
        sockets.push(s);
      }),
    );
    // While they hang on, a real car can still connect and be acked.
    await new Promise((resolve) => setTimeout(resolve, Math.min(HOLD_MS, 3_000)));
    const late = await CountingCar.connect(t.carOptions(ABUSER_VIN));
    late.sendRecord('V', vRecord(ABUSER_VIN, 1));
    expect(await late.waitForAll(5_000)).to.equal(true);
    expect(late.acked).to.equal(1);
    await late.close();
    if (HOLD_MS > 3_000) await new Promise((resolve) => setTimeout(resolve, HOLD_MS - 3_000));
    if (HOLD_MS >= SERVER_CLOSES_STALLED_WITHIN_MS) {
      expect(closedByServer, 'the server closed every stalled socket by itself').to.deep.equal({ halfOpen: 100, slow: 100 });
    }
    const stillOpen = { halfOpen: 100 - closedByServer.halfOpen, slow: 100 - closedByServer.slow };
    for (const timer of trickles) clearInterval(timer);
    for (const s of sockets) s.destroy();
    endPhase({
      scenario: `half-open TLS handshakes + slow (slowloris) upgrade requests, held ${HOLD_MS / 1000} s`,
      count: 200,
      lost: 0,
      notes: `a new car still connected and was acked; after ${HOLD_MS / 1000} s the server had closed ${closedByServer.halfOpen}/100 half-open and ${closedByServer.slow}/100 slow sockets by itself`,
      details: { halfOpenStillOpen: stillOpen.halfOpen, slowStillOpen: stillOpen.slow },
    });
  });

  it('closes 50 connections that send a text frame with 1003, counted', async () => {
    const before = await counterValue(t.server.metrics.decode.decodeErrors, { kind: 'text_frame' });
    // Three at a time: one VIN may hold VEHICLE_MAX_SOCKETS_PER_VIN (3) sockets, a fourth closes the oldest (1008).
    const codes = await inParallel(50, 3, async () => {
      const car = await CountingCar.connect(t.carOptions(ABUSER_VIN));
      car.sendText('{"hello":"world"}');
      return (await car.closed).code;
    });
    expect(codes.every((c) => c === 1003), codes.join(',')).to.equal(true);
    expect((await counterValue(t.server.metrics.decode.decodeErrors, { kind: 'text_frame' })) - before).to.equal(50);
    endPhase({ scenario: 'connections sending a text frame', count: 50, lost: 0, notes: 'each closed with 1003; decode_errors_total{kind="text_frame"}' });
  });

  it('answers 20 oversize frames with the error reply and keeps the car; a frame far past the limit only costs its own connection', async () => {
    const car = await CountingCar.connect(t.carOptions(ABUSER_VIN));
    const before = await counterValue(t.server.metrics.vehicle.framesOversize);
    const big = writeStreamEnvelope({ txid: 'too-big', topic: 'V', payload: new Uint8Array(1_200_000) });
    for (let i = 0; i < 20; i++) car.sendFrame(big, '');
    expect(await car.waitForReplies(20, 15_000)).to.equal(true);
    expect(car.unreadableReplies).to.equal(0);
    expect(car.strayReplies, 'error replies carry the empty txid').to.equal(20);
    car.sendRecord('V', vRecord(ABUSER_VIN, 2));
    expect(await car.waitForAll(5_000)).to.equal(true);
    expect(car.acked).to.equal(1);
    expect((await counterValue(t.server.metrics.vehicle.framesOversize)) - before).to.equal(20);
    await car.close();

    const huge = await CountingCar.connect(t.carOptions(ABUSER_VIN));
    huge.sendFrame(new Uint8Array(17 * 1024 * 1024), '');
    const closed = await huge.closed;
    expect(closed.code).to.be.oneOf([1006, 1009]);
    endPhase({ scenario: 'oversize frames (1.2 MB) and one 17 MiB frame', count: 21, lost: 0, notes: '1.2 MB: error reply, empty txid, car kept (frames_oversize_total); 17 MiB: uWS drops that one connection' });
  });

  it(`holds a flooding car to ${RATE_LIMIT} frames/s: excess dropped unacked and counted, nothing acked twice, others unaffected`, async () => {
    const flood = await CountingCar.connect(t.carOptions(FLOOD_VIN));
    const before = await counterValue(t.server.metrics.vehicle.framesRateLimited);
    const frames = 20_000;
    const started = Date.now();
    for (let i = 0; i < frames; i++) {
      flood.sendRecord('V', vRecord(FLOOD_VIN, i));
      if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
    }
    // Wait until the server has seen every frame: answered ones plus dropped ones add up to all sent.
    const until = Date.now() + 30_000;
    let dropped = 0;
    while (Date.now() < until) {
      dropped = (await counterValue(t.server.metrics.vehicle.framesRateLimited)) - before;
      if (flood.acked + flood.errored + dropped >= frames) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await flood.waitForReplies(flood.acked + flood.errored, 2_000);
    const floodSeconds = (Date.now() - started) / 1000;
    expect(flood.acked + flood.errored + flood.unanswered).to.equal(frames);
    expect(flood.unanswered, 'every unanswered frame is a counted rate-limit drop').to.equal(dropped);
    expect(flood.duplicates).to.equal(0);
    expect(flood.acked).to.be.at.most(Math.ceil(RATE_LIMIT * (floodSeconds + 1)) + 1);
    expect(dropped).to.be.greaterThan(frames / 2);

    // The budget refills: a second later (on the listener's clock) the same connection is served again,
    // a full second's worth of frames.
    frameClock.advance(1_000);
    const ackedBefore = flood.acked;
    const repliesBefore = flood.rawReplies.length;
    for (let i = 0; i < RATE_LIMIT; i++) flood.sendRecord('V', vRecord(FLOOD_VIN, -1 - i));
    await flood.waitForReplies(repliesBefore + RATE_LIMIT, 5_000);
    expect(flood.acked).to.equal(ackedBefore + RATE_LIMIT);
    await flood.close();
    endPhase({
      scenario: `frame flood from one car (limit ${RATE_LIMIT}/s)`,
      count: frames,
      lost: 0,
      notes: `${flood.acked} acked, ${dropped} dropped unacked (car keeps them) in ${floodSeconds.toFixed(1)} s; vehicle_frames_rate_limited_total = ${dropped}`,
    });
  });

  it('lost nothing of the steady car, kept memory bounded, and logged no secret on any refusal path', async () => {
    await steady.stop();
    const car = steady.car;
    expect(car.unanswered).to.equal(0);
    expect(car.duplicates + car.strayReplies + car.unreadableReplies + car.errored).to.equal(0);
    expect(car.acked).to.equal(car.sentCount);
    peak.stop();
    const after = retainedMemory();
    const growth = after.heapUsedMb + after.arrayBuffersMb - (memoryBefore.heapUsedMb + memoryBefore.arrayBuffersMb);
    expect(growth, 'retained heap + ArrayBuffer growth, MB').to.be.below(MAX_RETAINED_GROWTH_MB);

    const text = logs.text();
    expect(text).to.include('vehicle_refused');
    expect(text).to.include('vehicle_rate_limited');
    const needles = secretNeedles({
      literals: [TEST_JWT_SECRET],
      privateKeyPems: [readFileSync(t.pki.serverKey, 'utf8'), ...TEST_VINS.map((vin) => readFileSync(t.pki.vehicleKey(vin), 'utf8'))],
    });
    expect(leakedSecrets(text, needles)).to.deep.equal([]);
    rows.push({
      scenario: 'well-behaved car throughout all of the above',
      count: car.sentCount,
      lost: car.sentCount - car.acked,
      peakMemoryMb: peak.peakRssMb,
      worstAckMs: Math.round(car.worstLatencyMs * 10) / 10,
      notes: `every record acked once; retained heap+ArrayBuffer growth ${growth.toFixed(1)} MB (server and all clients share the process); ${logs.lines()} log lines scanned, no secret`,
    });
  });
});
