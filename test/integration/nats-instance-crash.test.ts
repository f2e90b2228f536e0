import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsRecordBus } from '../../src/bus/nats/nats-record-bus.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient, type CarClientOptions } from '../../src/sim/car-client.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, testEnv, type TestServer } from '../helpers/test-server.js';

const MAIN = fileURLToPath(new URL('../../main.js', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `node dist/main.js` as its own process; resolves with its vehicle port from the server_started log line. */
function spawnInstance(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env, LOG_LEVEL: 'info' },
    cwd: mkdtempSync(join(tmpdir(), 'fleet-telemetry-crash-cwd-')),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`instance did not start:\n${out}`)), 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /"vehiclePort":(\d+).*"server_started"|"server_started".*"vehiclePort":(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1] ?? match[2]) });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code}:\n${out}`));
    });
  });
}

describe('kill -9 of an instance under load (real nats-server, node dist/main.js)', function () {
  this.timeout(90_000);
  let nats: NatsServer;
  let survivor: TestServer;
  let child: ChildProcess | null = null;

  before(async () => {
    nats = await NatsServer.start();
    survivor = await startTestServer({ env: { NATS_URL: nats.url, NATS_INSTANCE_ID: 'survivor' } });
  });
  after(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    await survivor?.stop();
    await nats?.dispose();
  });

  it('every frame the killed instance acked is in the stream; the cars move over and lose nothing acked', async () => {
    const started = await spawnInstance({ ...(await testEnv()), NATS_URL: nats.url, NATS_INSTANCE_ID: 'doomed' });
    child = started.child;
    const vins = TEST_VINS.slice(0, 3);
    const optionsFor = (vin: string, port: number): CarClientOptions => ({ ...survivor.carOptions(vin), url: `wss://127.0.0.1:${port}/` });

    const frames = new Map<string, { vin: string; txid: string; payload: Uint8Array }>();
    const acked = new Set<string>();
    let stopLoad = false;
    const cars = await Promise.all(vins.map((vin) => CarClient.connect(optionsFor(vin, started.port))));
    // Each car streams without waiting for acks (many frames in flight), as real cars do.
    const load = cars.map(async (car) => {
      let i = 0;
      while (!stopLoad) {
        const txid = car.nextTxid();
        const payload = encodeVehicleData({ vin: car.vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: i++ } }] });
        frames.set(`${car.vin}/${txid}`, { vin: car.vin, txid, payload });
        try {
          void car.sendRecord('V', payload, txid).then((reply) => {
            if (reply.kind === 'ack') acked.add(`${car.vin}/${txid}`);
          });
        } catch {
          return;
        }
        await sleep(5);
      }
    });
    while (acked.size < 60) await sleep(20);
    process.kill(started.child.pid as number, 'SIGKILL');
    await Promise.all(cars.map((car) => car.closed));
    stopLoad = true;
    await Promise.all(load);
    const ackedByDoomed = new Set(acked);
    expect(ackedByDoomed.size).to.be.greaterThan(59);

    // Every acked frame is durable despite the crash.
    const bus = survivor.server.bus as NatsRecordBus;
    const storedKeys = async (): Promise<Set<string>> => {
      const keys = new Set<string>();
      for (const vin of vins) await bus.replay(vin, 0, (record) => {
        if (record.topic === 'V') keys.add(`${vin}/${record.txid}`);
      });
      return keys;
    };
    const afterCrash = await storedKeys();
    for (const key of ackedByDoomed) expect(afterCrash.has(key), key).to.equal(true);

    // The cars reconnect to the survivor and resend everything the dead instance never acked.
    const moved = await Promise.all(vins.map((vin) => CarClient.connect(survivor.carOptions(vin))));
    const unacked = [...frames.entries()].filter(([key]) => !acked.has(key));
    const replies = await Promise.all(
      unacked.map(([, frame]) => (moved.find((car) => car.vin === frame.vin) as CarClient).sendRecord('V', frame.payload, frame.txid)),
    );
    expect(replies.every((reply) => reply.kind === 'ack')).to.equal(true);

    const final = await storedKeys();
    expect(final.size).to.equal(frames.size);
    for (const key of frames.keys()) expect(final.has(key), key).to.equal(true);
    await Promise.all(moved.map((car) => car.close()));
  });
});
