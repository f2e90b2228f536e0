#!/usr/bin/env node
// Micro-benchmark of what following a record costs the recent history on the main thread: bench cars'
// V records (the drive/charge story, ~20 datums each), decoded by the real decode stage (decodeBatch +
// receiveOutcomes, so each record comes with its datums located, as the actor publishes it), published
// on the in-process bus that the history follows. Two regimes, CPU µs per record:
//   - lone: one record per event-loop turn (a fleet of cars at 1 frame/s each), the turns' own cost
//     measured without the history and subtracted;
//   - batch: the records of a turn published back to back, folded in on the next turn (saturation).
// Each pass starts a fresh history and feeds the cars' records in time order (new rows, trips, charges).
//   - cold (`--cold-kb N`): the fold alone, as the window's timer runs it in the sparse regime: each
//     record published after N KB of scratch memory was written (so the car it goes to is out of the
//     caches, as after 999 other cars' work), then `--fold` records (one per car, cars in turn) folded
//     in by one drain, timed alone (wall, median of the drains, µs per record).
//   node dist/bench/micro/history-follow-micro.js [--cars 200] [--ticks 100] [--seconds 3] [--batch 256] [--from-text] [--no-origin]
//     [--cold-kb 0] [--fold 100]
import { parseArgs } from 'node:util';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { decodeBatch, receiveOutcomes } from '../../src/decode/decode-batch.js';
import type { DecodeTask } from '../../src/decode/decode-task.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { RecentHistory } from '../../src/history/recent-history.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { packFrames } from '../../tools/pack-frames.js';
import { CarTalk, envelopeOf } from '../fleet/frames.js';
import type { LocalVehicleState } from '../../src/bus/vehicle-state.js';

const { values } = parseArgs({
  options: {
    cars: { type: 'string', default: '200' },
    ticks: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '256' },
    only: { type: 'string', default: '' },
    // Read the values from the text on the main thread, as before the decode stage read them.
    'from-text': { type: 'boolean', default: false },
    // Records without their actor (BusRecord.origin), where the history caches its car's entry.
    'no-origin': { type: 'boolean', default: false },
    'cold-kb': { type: 'string', default: '0' },
    fold: { type: 'string', default: '100' },
  },
});
const carCount = Number(values.cars);
const ticks = Number(values.ticks);
const seconds = Number(values.seconds);
const batchSize = Number(values.batch);

/** The V records of `carCount` cars over `ticks` seconds, as the actor publishes them, in time order. */
function buildRecords(): BusRecord[] {
  const start = Date.now() - ticks * 1000 - 60_000;
  const talks = Array.from({ length: carCount }, (_, i) => {
    const vin = `5YJ3E7EB0LF${String(i).padStart(6, '0')}`;
    // What the actor is to the history: where it caches the car's entry (LocalVehicleState.historyCar).
    const origin: LocalVehicleState = { state: new Map(), lastSeenAt: 0, connected: true, stale: false, historyCar: null };
    return { vin, talk: new CarTalk(vin, i + 1), origin };
  });
  const records: BusRecord[] = [];
  for (let tick = 0; tick < ticks; tick++) {
    const frames: Uint8Array[] = [];
    const vins: string[] = [];
    const at = start + tick * 1000;
    const origins: LocalVehicleState[] = [];
    for (const { vin, talk, origin } of talks) {
      origins.push(origin);
      const [vehicleData] = talk.tick(new Date(at));
      frames.push(envelopeOf(vin, `${tick.toString(16).padStart(22, '0')}-000000001`, 'V', vehicleData.payload, `m${tick}`));
      vins.push(vin);
    }
    // No dashboard watches (as in the sparse and saturation scenarios): the text is the record JSON.
    const task: DecodeTask = packFrames(frames, vins, at + 20, false);
    const result = decodeBatch(task);
    const batch = new DecodedBatch(result, task.frames);
    const outcomes = receiveOutcomes(result, task.frames);
    const view = new Uint8Array(task.frames);
    outcomes.forEach((outcome, i) => {
      if (outcome.kind !== 'record' || outcome.topic !== 'V') throw new Error(`frame ${i}: ${outcome.kind} ${outcome.errorKind ?? ''}`);
      const record: BusRecord = {
        vin: vins[i]!,
        topic: 'V',
        txid: outcome.txid,
        receivedAt: at + 20,
        recordJson: outcome.recordJson,
        dashboardMessage: outcome.dashboardMessage ?? '',
        payload: view.subarray(outcome.payloadStart, outcome.payloadEnd),
        createdAt: outcome.createdAt,
      };
      if (values['no-origin'] !== true) record.origin = origins[i]!;
      const text = outcome.dashboardMessage ?? outcome.recordJson;
      if (outcome.state !== null && text !== null) {
        record.datums = outcome.state;
        record.datumText = text;
      }
      // As the actor publishes it: created_at as the decode stage parsed it, and (unless --from-text)
      // the followed signals the decode stage read.
      if (outcome.createdAt !== null) record.createdAtMs = batch.createdAtMs(i);
      const sampleAt = batch.sampleAt(i);
      if (sampleAt >= 0 && values['from-text'] !== true) {
        record.samples = batch.samples;
        record.sampleAt = sampleAt;
      }
      records.push(record);
    });
  }
  return records;
}

const records = buildRecords();
const metrics = new ServerMetrics({ collectDefaults: false });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function newHistory(bus: InProcessBus): RecentHistory {
  const history = new RecentHistory({ windowMs: 24 * 3_600_000, resolutionMs: 5000, maxRowsPerCar: 1024, metrics: metrics.history, logger: silentLogger() });
  history.start(bus);
  return history;
}

/** One pass over every record, `perTurn` records published per event-loop turn. */
async function pass(withHistory: boolean, perTurn: number): Promise<void> {
  const bus = new InProcessBus();
  const history = withHistory ? newHistory(bus) : null;
  for (let i = 0; i < records.length; i += perTurn) {
    const end = Math.min(records.length, i + perTurn);
    for (let k = i; k < end; k++) bus.publishNow(records[k]!);
    await turn();
  }
  await turn();
  history?.stop();
}

/** CPU µs per record of passes over `seconds`. */
async function cpuPerRecord(withHistory: boolean, perTurn: number): Promise<number> {
  let passes = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - started < seconds * 1000) {
    await pass(withHistory, perTurn);
    passes++;
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / (passes * records.length);
}

console.log(`${records.length} V records (${carCount} cars x ${ticks} s), ${(records.reduce((n, r) => n + (r.datums?.length ?? 0) / 3, 0) / records.length).toFixed(1)} datums each`);
// Warm-up: JIT for both paths.
await pass(true, 1);
await pass(true, batchSize);
await pass(false, 1);
for (const [label, perTurn] of [
  ['lone (1 record per turn)', 1],
  [`batch (${batchSize} records per turn)`, batchSize],
] as const) {
  if (values.only !== '' && !label.startsWith(values.only)) continue;
  const without = await cpuPerRecord(false, perTurn);
  const withHistory = await cpuPerRecord(true, perTurn);
  console.log(`${label.padEnd(32)} history ${(withHistory - without).toFixed(2).padStart(6)} us CPU/record  (turns with ${withHistory.toFixed(2)}, without ${without.toFixed(2)})`);
}

const coldBytes = Number(values['cold-kb']) * 1024;
if (coldBytes > 0 && (values.only === '' || 'cold'.startsWith(values.only))) {
  const scratch = new Int32Array(coldBytes >> 2);
  let scratchSum = 0;
  const evict = (): void => {
    for (let w = 0; w < scratch.length; w += 16) scratch[w] = (scratch[w]! + w) | 0;
    scratchSum = (scratchSum + scratch[16]!) | 0;
  };
  const foldSize = Number(values.fold);
  const times: number[] = [];
  const started = performance.now();
  let passes = 0;
  while (performance.now() - started < seconds * 1000) {
    const bus = new InProcessBus();
    const history = newHistory(bus);
    for (let i = 0; i < records.length; i += foldSize) {
      const end = Math.min(records.length, i + foldSize);
      for (let k = i; k < end; k++) {
        evict();
        bus.publishNow(records[k]!);
      }
      const t0 = performance.now();
      history.drain();
      const t1 = performance.now();
      // The first pass fills the cars (their rows made and grown) and warms the JIT: not counted.
      if (passes > 0) times.push(((t1 - t0) * 1000) / (end - i));
    }
    history.stop();
    passes++;
  }
  times.sort((a, b) => a - b);
  console.log(`${`cold (${foldSize} records a drain)`.padEnd(32)} fold   ${times[times.length >> 1]!.toFixed(2).padStart(6)} us/record wall, median of ${times.length} drains (${values['cold-kb']} KB evicted before each record, ${passes} passes${scratchSum === 1 ? '' : ''})`);
}
