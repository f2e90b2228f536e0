#!/usr/bin/env node
// The JavaScript heap an idle car costs the main thread: N cars, each one actor fed a few bench records
// through the real decode path (decodeBatch + DecodedBatch, dashboard message written as when one
// watches), published on the in-process bus into the recent history, then idle. Heap and external
// memory after a full GC, per car, before and after the watchdog sweep's state compaction. Sockets,
// TLS and uWS are not in it (the storm scenario measures the whole process).
//   node --expose-gc dist/bench/micro/idle-car-memory.js [cars=3000] [recordsPerCar=3] [history|no-history]
import { VehicleActor, type FrameTicket } from '../../src/actors/vehicle-actor.js';
import type { VehicleConnection } from '../../src/actors/vehicle-connection.js';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import { decodeBatch } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { RecentHistory } from '../../src/history/recent-history.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { CarTalk } from '../fleet/frames.js';

const cars = Number(process.argv[2] ?? 3000);
const recordsPerCar = Number(process.argv[3] ?? 3);
const withHistory = (process.argv[4] ?? 'history') === 'history';
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const metrics = new ServerMetrics({ collectDefaults: false });
const bus = new InProcessBus();
const history = new RecentHistory({ windowMs: 3_600_000, resolutionMs: 1000, maxRowsPerCar: 1024, metrics: metrics.history, logger: silentLogger() });
if (withHistory) history.start(bus);

function measure(): { heap: number; external: number } {
  gc!();
  gc!();
  const usage = process.memoryUsage();
  // external already includes arrayBuffers (typed-array stores): adding them would count those twice.
  return { heap: usage.heapUsed, external: usage.external };
}

const before = measure();
const actors: VehicleActor[] = [];
const start = Date.now() - recordsPerCar * 1000;
for (let c = 0; c < cars; c++) {
  const vin = `5YJ3E7EB0LF${String(c).padStart(6, '0')}`;
  const talk = new CarTalk(vin, c + 1);
  const actor = new VehicleActor(vin, bus, metrics.actors, start);
  const connection: VehicleConnection = { connectionId: `c${c}`, vin, networkInterface: 'wifi', clientVersion: '', connectedAt: start, isOpen: true, sendReply: () => {} };
  for (let r = 0; r < recordsPerCar; r++) {
    const receivedAt = start + r * 1000;
    const frame = writeStreamEnvelope({ txid: `t${r}`, topic: 'V', payload: talk.tick(new Date(receivedAt))[0]!.payload });
    const shared = new SharedArrayBuffer(frame.byteLength);
    new Uint8Array(shared).set(frame);
    const ticket: FrameTicket = actor.frameArrived(connection, receivedAt, performance.now());
    const result = decodeBatch({ frames: shared, offsets: Uint32Array.of(0, frame.byteLength), vins: [vin], receivedAt: Float64Array.of(receivedAt), watched: Uint8Array.of(1) });
    actor.decoded(ticket, new DecodedBatch(result, shared), 0);
  }
  actors.push(actor);
}
// Let the history fold in what the bus gave it (it works in slices after the ack).
for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
const loose = measure();
for (const actor of actors) actor.compactState();
const compacted = measure();
// The history's sweep a minute on: idle cars keep only the rows they have.
history.sweep(Date.now() + 61_000);
const swept = measure();

const kb = (bytes: number) => (bytes / cars / 1024).toFixed(2);
console.log(`${cars} idle cars, ${recordsPerCar} V records each (${actors[0]!.state.size} state fields per car), recent history ${withHistory ? 'on' : 'off'}`);
console.log(`  per car, state as slices of the record texts: heap ${kb(loose.heap - before.heap)} KB, external ${kb(loose.external - before.external)} KB`);
console.log(`  per car, after compactState:                 heap ${kb(compacted.heap - before.heap)} KB, external ${kb(compacted.external - before.external)} KB`);
console.log(`  per car, and after the history's idle sweep:  heap ${kb(swept.heap - before.heap)} KB, external ${kb(swept.external - before.external)} KB`);
