// Faults injected into a running server while cars stream: decode workers that die or hang, the event
// loop blocked, the log destination full, SIGTERM. For each: every frame a car sent is acked, answered
// with an error, or still held unacked by the car (it resends) - and nothing is acked twice.
// NATS faults (unavailable at start or mid-run, kill -9) are covered by the NATS bus suite.
import { expect } from 'chai';
import { Writable } from 'node:stream';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { createLogger, logHealth } from '../../src/log/logger.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CRASH_TOPIC, HANG_TOPIC } from '../helpers/crashing-decode-worker.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { CountingCar } from './helpers/counting-car.js';
import { recordFigures, type FigureRow } from './helpers/figures.js';
import { PeakMemory } from './helpers/memory.js';
import { spawnServer } from './helpers/spawned-server.js';

const rows: FigureRow[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function vRecord(vin: string, n: number): Uint8Array {
  return encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: n } }, { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } }] });
}

/** Cars that each keep up to `window` records in flight until told to stop. */
async function streamFrom(cars: CountingCar[], vins: string[], window: number, keepGoing: () => boolean): Promise<void> {
  await Promise.all(cars.map(async (car, c) => {
    let n = 0;
    while (keepGoing() && car.isOpen) {
      while (car.unanswered < window && keepGoing() && car.isOpen) car.sendRecord('V', vRecord(vins[c]!, n++));
      await car.waitForReplies(car.rawReplies.length + 1, 200);
    }
  }));
}

function books(cars: CountingCar[]) {
  const sum = (f: (c: CountingCar) => number) => cars.reduce((s, c) => s + f(c), 0);
  return {
    sent: sum((c) => c.sentCount), acked: sum((c) => c.acked), errored: sum((c) => c.errored), unanswered: sum((c) => c.unanswered),
    duplicates: sum((c) => c.duplicates), stray: sum((c) => c.strayReplies + c.unreadableReplies),
    worstMs: Math.round(Math.max(...cars.map((c) => c.worstLatencyMs)) * 10) / 10,
  };
}

describe('robustness: faults under load', function () {
  this.timeout(90_000);
  after(() => recordFigures('faults', rows));

  describe('in-process server', () => {
    let t: TestServer | null = null;
    let published: BusRecord[];
    afterEach(async () => {
      await t?.stop();
      t = null;
    });

    for (const hangs of [0, 2]) it(hangs === 0
      ? 'decode workers killed 15x under load: every good frame acked once and published once'
      : 'decode workers killed 15x and hung 2x under load: every frame replied once, every acked record published once', async () => {
      const server = (t = await startTestServer({
        env: { DECODE_WORKERS: '2', DECODE_TASK_TIMEOUT_MS: '1000' },
        overrides: { workerFile: new URL('../helpers/crashing-decode-worker.js', import.meta.url) },
      }));
      published = [];
      server.server.bus.subscribe((r) => { if (r.topic === 'V') published.push(r); });
      const vins = TEST_VINS.slice(0, 3);
      const cars = await Promise.all(vins.map((vin) => CountingCar.connect(server.carOptions(vin))));
      const chaos = await CountingCar.connect(server.carOptions(TEST_VINS[3]));
      const peak = new PeakMemory();
      let running = true;
      const load = streamFrom(cars, vins, 16, () => running);
      const crashes = 15;
      for (let i = 0; i < crashes; i++) {
        chaos.sendRecord(CRASH_TOPIC, new Uint8Array([i]));
        if (hangs > 0 && (i === 5 || i === 10)) chaos.sendRecord(HANG_TOPIC, new Uint8Array([i]));
        await sleep(150);
      }
      await chaos.waitForAll(15_000);
      running = false;
      await load;
      for (const car of cars) await car.waitForAll(15_000);
      peak.stop();

      const b = books(cars);
      expect(b.unanswered + b.duplicates + b.stray, `every frame replied once: ${JSON.stringify(b)}`).to.equal(0);
      // Retries wait for a free worker before their timeout starts, so a hang costs no good frame its ack.
      expect(b.errored, `no good frame answered with an error: ${JSON.stringify(b)}`).to.equal(0);
      expect(chaos.errored, 'each poisonous frame answered with the error reply').to.equal(crashes + hangs);
      const txids = published.map((r) => `${r.vin}/${r.txid}`);
      expect(new Set(txids).size, 'nothing published twice').to.equal(txids.length);
      expect(txids.length, 'every acked record published').to.equal(b.acked);
      const failures = (await server.server.metrics.decode.decodeWorkerFailures.get()).values;
      const byKind = Object.fromEntries(failures.map((v) => [v.labels.kind, v.value]));
      expect(byKind.timeout ?? 0).to.be.at.least(hangs);
      const wronglyErrored = b.errored;
      expect((byKind.worker_error ?? 0) + (byKind.timeout ?? 0)).to.be.at.least(crashes + hangs);
      rows.push({
        scenario: `decode worker killed ${crashes}x${hangs ? ` and hung ${hangs}x (1 s timeout)` : ''} while 3 cars stream`,
        count: crashes + hangs, lost: wronglyErrored, peakMemoryMb: peak.peakRssMb, worstAckMs: b.worstMs,
        notes: `${b.sent} records sent, ${b.acked} acked and published once each${wronglyErrored ? `, ${wronglyErrored} good ones got the error reply` : ''}; poisonous frames got the error reply; decode_worker_failures_total ${JSON.stringify(byKind)}`,
      });
      for (const car of [...cars, chaos]) await car.close();
    });

    it('the event loop blocked for 500 ms while cars stream: all frames still replied, none lost', async () => {
      const server = (t = await startTestServer({ env: { DECODE_WORKERS: '1' } }));
      const vins = TEST_VINS.slice(0, 4);
      const cars = await Promise.all(vins.map((vin) => CountingCar.connect(server.carOptions(vin))));
      const peak = new PeakMemory();
      let running = true;
      const load = streamFrom(cars, vins, 8, () => running);
      await sleep(300);
      const blockedAt = performance.now();
      while (performance.now() - blockedAt < 500) { /* the main thread is busy: nothing else runs */ }
      await sleep(500);
      running = false;
      await load;
      for (const car of cars) await car.waitForAll(10_000);
      peak.stop();
      const b = books(cars);
      expect(b.acked).to.equal(b.sent);
      expect(b.unanswered + b.errored + b.duplicates + b.stray).to.equal(0);
      expect(b.worstMs).to.be.below(2_500);
      rows.push({
        scenario: 'main thread blocked 500 ms while 4 cars stream', count: 1, lost: b.sent - b.acked,
        peakMemoryMb: peak.peakRssMb, worstAckMs: b.worstMs, notes: `${b.sent} records, all acked once; the worst ack is the block itself`,
      });
      for (const car of cars) await car.close();
    });

    it('a log destination that throws or errors costs log lines, never a frame', async () => {
      const failing = new Writable({
        write(_chunk, _encoding, done) {
          done(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
        },
      });
      const throwing = { on: () => throwing, write: () => { throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }); } } as unknown as NodeJS.WritableStream;
      const before = { ...logHealth };
      for (const destination of [failing, throwing]) {
        const server = (t = await startTestServer({ env: { DECODE_WORKERS: '1' }, overrides: { logger: createLogger('debug', destination) } }));
        const car = await CountingCar.connect(server.carOptions(TEST_VINS[0]));
        for (let i = 0; i < 50; i++) car.sendRecord('V', vRecord(TEST_VINS[0], i));
        expect(await car.waitForAll(10_000)).to.equal(true);
        expect(car.acked).to.equal(50);
        car.sendText('provoke a disconnect log line');
        await car.closed;
        await server.stop();
        t = null;
      }
      expect(logHealth.writeErrors).to.be.greaterThan(before.writeErrors);
      expect(logHealth.droppedLines).to.be.greaterThan(before.droppedLines);
    });
  });

  describe('node dist/main.js as a process', () => {
    it('keeps serving with stdout on a full disk (/dev/full), and still stops on SIGTERM', async () => {
      const server = await spawnServer({ stdoutToDevFull: true, env: { LOG_LEVEL: 'debug', SHUTDOWN_GRACE_MS: '2000' } });
      try {
        const car = await CountingCar.connect(server.carOptions(TEST_VINS[1]));
        for (let i = 0; i < 200; i++) car.sendRecord('V', vRecord(TEST_VINS[1], i));
        expect(await car.waitForAll(10_000)).to.equal(true);
        expect(car.acked).to.equal(200);
        expect(server.child.exitCode).to.equal(null);
        const signalledAt = Date.now();
        server.child.kill('SIGTERM');
        const exit = await server.exited;
        expect(exit.code, server.stderr()).to.equal(0);
        expect(exit.at - signalledAt).to.be.below(2_000 + 3_000);
        expect(server.stderr()).to.include('log destination failing (ENOSPC)');
        rows.push({
          scenario: 'stdout (logs) on a full disk: /dev/full', count: 1, lost: 200 - car.acked, peakMemoryMb: null, worstAckMs: Math.round(car.worstLatencyMs),
          notes: `200 records acked; one notice on stderr; SIGTERM exit 0 in ${exit.at - signalledAt} ms (was a hang before logger.ts skipped the exit flush)`,
        });
      } finally {
        if (server.child.exitCode === null) server.kill();
      }
    });

    it('SIGTERM under load: exit 0 within the grace, every frame acked once or still held by its car', async () => {
      const grace = 3_000;
      const server = await spawnServer({ env: { SHUTDOWN_GRACE_MS: String(grace), DECODE_WORKERS: '2' } });
      const vins = TEST_VINS.slice(0, 4);
      const cars: CountingCar[] = [];
      try {
        for (const vin of vins) cars.push(await CountingCar.connect(server.carOptions(vin)));
        let running = true;
        const load = streamFrom(cars, vins, 32, () => running);
        await sleep(1_000);
        const signalledAt = Date.now();
        server.child.kill('SIGTERM');
        const closes = Promise.all(cars.map((c) => c.closed));
        const exit = await server.exited;
        running = false;
        await load;
        await closes;
        const b = books(cars);
        expect(exit.code, server.stderr()).to.equal(0);
        expect(exit.at - signalledAt).to.be.below(grace + 2_000);
        expect(b.acked + b.errored + b.unanswered).to.equal(b.sent);
        expect(b.errored + b.duplicates + b.stray).to.equal(0);
        expect(b.acked).to.be.greaterThan(0);
        rows.push({
          scenario: 'SIGTERM while 4 cars stream (32 in flight each)', count: 1, lost: 0, peakMemoryMb: null, worstAckMs: b.worstMs,
          notes: `exit 0 after ${exit.at - signalledAt} ms; ${b.sent} sent = ${b.acked} acked once + ${b.unanswered} unacked and kept by the cars (they resend)`,
        });
      } finally {
        if (server.child.exitCode === null) server.kill();
      }
    });
  });
});
