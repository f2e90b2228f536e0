// Micro-benchmark of the decode worker's two readers on one thread, CPU time per frame: the generated
// transcoder alone (a V/alerts/errors payload's wire bytes to its record JSON bytes, the same bench-car
// records as decode-batch-micro) and the envelope reader.
//   node dist/bench/micro/transcoder-micro.js [--records 256] [--seconds 3] [--rounds 3]
import { parseArgs } from 'node:util';
import * as envelope from '../../src/protocol/envelope.js';
import { JsonSink, toWords } from '../../src/protocol/json-sink.js';
import { RECORD_TYPES, protoSchema } from '../../src/protocol/proto-schema.js';
import { buildTranscoder } from '../../src/protocol/transcoder.js';
import { CarTalk, envelopeOf } from '../fleet/frames.js';
import * as signalSample from '../../src/history/signal-sample.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '256' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
  },
});
const count = Number(values.records);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);

const cars = Array.from({ length: 16 }, (_, i) => `5YJBENCH${String(i).padStart(9, '0')}`);
const talks = cars.map((vin, i) => new CarTalk(vin, i + 1));
const records: Array<{ topic: string; payload: Uint8Array }> = [];
const frames: Uint8Array[] = [];
for (let tick = 0; records.length < count; tick++) {
  for (const record of talks[tick % cars.length]!.tick(new Date(1_780_000_000_000 + tick * 1000))) {
    if (records.length >= count) break;
    records.push(record);
    frames.push(envelopeOf(cars[tick % cars.length]!, `${tick.toString(16).padStart(22, '0')}-000000001`, record.topic, record.payload, `m${tick}`));
  }
}
// All payloads back to back in one buffer, as a batch's frames are.
const wire = new Uint8Array(records.reduce((n, r) => n + r.payload.byteLength, 0));
const spans: number[] = [];
for (let i = 0, at = 0; i < records.length; i++) {
  wire.set(records[i]!.payload, at);
  spans.push(at, at + records[i]!.payload.byteLength);
  at += records[i]!.payload.byteLength;
}

const sink = new JsonSink();
const transcoder = buildTranscoder(protoSchema().root, sink, { maxEntries: 10_000, topics: { ...RECORD_TYPES } });
// The VIN's JSON text in toWords' layout, as the decode stage passes it.
const vinJson = toWords(JSON.stringify(cars[0]));
const state = {
  values: new Int32Array(1 << 16),
  length: 0,
  room(): void {
    const values = new Int32Array(this.values.length * 2);
    values.set(this.values);
    this.values = values;
  },
  // The StateIndex of builds before 30 November 2026 (so this file measures them too).
  push(field: number, start: number, end: number): void {
    if (this.length + 3 > this.values.length) this.room();
    this.values[this.length++] = field;
    this.values[this.length++] = start;
    this.values[this.length++] = end;
  },
};
const info = { signals: 0, createdAtStart: -1, createdAtEnd: -1, createdAtMs: NaN, rewrites: 0, recordStart: -1, isResend: false, valueRewrites: [] };

function transcodeAll(): void {
  sink.n = 0;
  state.length = 0;
  for (let i = 0; i < records.length; i++) {
    if (!transcoder.run(records[i]!.topic, wire, spans[2 * i]!, spans[2 * i + 1]!, vinJson, state, info, null)) throw new Error('a bench record left the transcoder');
  }
}
// The followed signals' values gathered as the decode stage does (builds from 30 November 2026 on).
const DatumValueList = (signalSample as { DatumValueList?: new () => { n: number } }).DatumValueList;
const datumValues = DatumValueList === undefined ? undefined : new DatumValueList();
function transcodeAllWithSamples(): void {
  sink.n = 0;
  state.length = 0;
  for (let i = 0; i < records.length; i++) {
    if (!(transcoder.run as (...args: unknown[]) => boolean)(records[i]!.topic, wire, spans[2 * i]!, spans[2 * i + 1]!, vinJson, state, info, null, datumValues)) throw new Error('a bench record left the transcoder');
  }
}
/** Values only (builds from 1 December 2026 on): what the decode stage writes for a record whose text nobody reads. */
function transcodeAllValuesOnly(): void {
  sink.n = 0;
  state.length = 0;
  for (let i = 0; i < records.length; i++) {
    const topic = records[i]!.topic;
    if (!(transcoder.run as (...args: unknown[]) => boolean)(topic, wire, spans[2 * i]!, spans[2 * i + 1]!, vinJson, state, info, null, datumValues, topic === 'V')) throw new Error('a bench record left the transcoder');
  }
}
let sum = 0;
function readAll(): void {
  for (const frame of frames) sum += envelope.readEnvelope(frame).topic.length;
}
// What the decode stage reads since 30 November 2026: spans, no views or objects.
const ENVELOPE_SPANS = new Int32Array(32);
const readSpans = (envelope as { readEnvelopeSpans?: (b: Uint8Array, s: number, e: number, o: Int32Array) => void }).readEnvelopeSpans;
function readAllSpans(): void {
  for (const frame of frames) {
    readSpans!(frame, 0, frame.length, ENVELOPE_SPANS);
    sum += ENVELOPE_SPANS[0]!;
  }
}

function measure(label: string, run: () => void): void {
  for (let i = 0; i < 300; i++) run();
  const figures: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const started = process.cpuUsage();
    const until = performance.now() + (seconds * 1000) / rounds;
    let n = 0;
    while (performance.now() < until) {
      run();
      n++;
    }
    const cpu = process.cpuUsage(started);
    figures.push(((cpu.user + cpu.system) / (n * records.length)).toFixed(2));
  }
  console.log(`${label.padEnd(40)} ${figures.join(' / ')} us CPU per record`);
}

transcodeAll();
console.log(`${records.length} records, ${(sink.n / records.length).toFixed(0)} JSON bytes each on average`);
measure('transcoder: wire bytes -> record JSON', transcodeAll);
if (datumValues !== undefined) measure('transcoder + samples\' values (decode stage)', transcodeAllWithSamples);
if (datumValues !== undefined && 'isResend' in info) {
  transcodeAllValuesOnly();
  console.log(`values only: ${(sink.n / records.length).toFixed(0)} bytes each on average (V records; others whole)`);
  measure('... values only (an unwatched V record)', transcodeAllValuesOnly);
}
measure('envelope: readEnvelope (views)', readAll);
if (readSpans !== undefined) measure('envelope: readEnvelopeSpans', readAllSpans);
if (sum < 0) console.log(sum);
