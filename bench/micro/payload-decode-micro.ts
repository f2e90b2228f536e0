// Micro-benchmark of the protobufjs path of a record (decodeRecord: what the transcoder falls back to,
// and what records read back from the NATS stream go through), per record on one thread, with the
// protobufjs decode inside it measured alone, with our present-only oneof setter (oneof-setter.ts) and
// with protobufjs's stock one.
//   node dist/bench/micro/payload-decode-micro.js [--records 256] [--seconds 3]
import { parseArgs } from 'node:util';
import { decodeRecord, encodeNormalised } from '../../src/protocol/payload.js';
import { protoSchema, readProtoRoot, RECORD_TYPES } from '../../src/protocol/proto-schema.js';
import { CarTalk } from '../fleet/frames.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '256' },
    seconds: { type: 'string', default: '3' },
  },
});
const recordCount = Number(values.records);
const seconds = Number(values.seconds);

function vPayloads(): { vin: string; payload: Uint8Array }[] {
  const cars = Array.from({ length: 16 }, (_, i) => {
    const vin = `5YJBENCH${String(i).padStart(9, '0')}`;
    return { vin, talk: new CarTalk(vin, i + 1) };
  });
  const out: { vin: string; payload: Uint8Array }[] = [];
  for (let tick = 0; out.length < recordCount; tick++) {
    const car = cars[tick % cars.length]!;
    const v = car.talk.tick(new Date(1_780_000_000_000 + tick * 1000))[0];
    out.push({ vin: car.vin, payload: v.payload });
  }
  return out;
}

function measure(label: string, run: () => void): void {
  for (let i = 0; i < 20; i++) run(); // warm-up: JIT and the writers' caches
  let rounds = 0;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  while (performance.now() < started + seconds * 1000) {
    run();
    rounds++;
  }
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  const records = rounds * recordCount;
  // CPU time is the figure to compare on a shared machine: wall time also counts waiting for a core.
  console.log(`${label.padEnd(48)} ${((cpu.user + cpu.system) / records).toFixed(2).padStart(7)} us CPU/record  ${((elapsed * 1000) / records).toFixed(2).padStart(7)} us wall/record`);
}

const payloads = vPayloads();
const datums = payloads.reduce((n, p) => n + (protoSchema().payload.decode(p.payload) as unknown as { data: unknown[] }).data.length, 0);
console.log(`${recordCount} V records of 16 bench cars, ${(datums / recordCount).toFixed(1)} datums each on average`);
measure('decodeRecord (decode, normalise, canonical JSON)', () => {
  for (const { vin, payload } of payloads) decodeRecord('V', payload, vin);
});
measure('encodeNormalised (decode, normalise, encode)', () => {
  for (const { vin, payload } of payloads) encodeNormalised('V', payload, vin);
});
const patched = protoSchema().payload;
measure('protobufjs decode, present-only oneof setter', () => {
  for (const { payload } of payloads) patched.decode(payload);
});
const stock = readProtoRoot().lookupType(RECORD_TYPES.V);
measure('protobufjs decode, stock oneof setter', () => {
  for (const { payload } of payloads) stock.decode(payload);
});
