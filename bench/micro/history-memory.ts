#!/usr/bin/env node
// Memory of the recent history at fleet size: N cars, each fed a day-like story until its history is
// full (every row a new resolution step, so the per-car cap is reached), then the heap is measured.
//   node --expose-gc dist/bench/micro/history-memory.js [cars=10000] [recordsPerCar=1400] [maxRowsPerCar=1024]
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { RecentHistory } from '../../src/history/recent-history.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';

const cars = Number(process.argv[2] ?? 10_000);
const recordsPerCar = Number(process.argv[3] ?? 1400);
const maxRowsPerCar = Number(process.argv[4] ?? 1024);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

// One story's records (canonical JSON, as the decode worker makes them), 5 s apart so each is a new row.
const start = Date.now() - recordsPerCar * 5000;
const story = new VehicleStory({ seed: 1 });
const template: Array<{ json: string; at: number }> = [];
for (let i = 0; i < recordsPerCar; i++) {
  const createdAt = new Date(start + i * 5000);
  template.push({ json: decodeRecord('V', encodeVehicleData({ vin: 'X', createdAt, data: story.next() as never }), 'X').json!, at: createdAt.getTime() });
}

const metrics = new ServerMetrics({ collectDefaults: false });
const history = new RecentHistory({ windowMs: 24 * 3_600_000, resolutionMs: 5000, maxRowsPerCar, metrics: metrics.history, logger: silentLogger() });
const bus = new InProcessBus();
history.start(bus);
gc();
const before = process.memoryUsage();
const began = performance.now();
for (let c = 0; c < cars; c++) {
  const vin = `5YJ3E7EB0LF${String(c).padStart(6, '0')}`;
  for (const { json, at } of template) {
    const record: BusRecord = { vin, topic: 'V', txid: '', receivedAt: at, recordJson: json, dashboardMessage: '', payload: null };
    bus.publish(record, () => {});
  }
  history.drain();
}
const seconds = (performance.now() - began) / 1000;
gc();
const after = process.memoryUsage();
const heap = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
const answer = await history.query('5YJ3E7EB0LF000000', 0, Date.now(), 5000);
const result = {
  cars,
  maxRowsPerCar,
  recordsPerCar,
  rowsPerCar: answer.series.t.length,
  tripsPerCar: answer.trips.length,
  chargesPerCar: answer.charges.length,
  accountedBytesPerCar: Math.round(history.bytes / cars),
  measuredBytesPerCar: Math.round(heap / cars),
  totalMiB: Math.round(heap / 2 ** 20),
  recordsPerSecond: Math.round((cars * recordsPerCar) / seconds),
};
history.stop();
process.stdout.write(`${JSON.stringify(result)}\n`);
