// What counting costs on the frame path: prom-client's inc()/observe() (label set hashed and checked
// every call, also through a child from labels()) against the cells of src/metrics/hot-path.ts
// (a plain addition, folded into the series at scrape time). Nanoseconds per call, best of rounds.
//   node dist/bench/micro/metrics-cells-micro.js [--calls 1000000] [--rounds 5]
import { parseArgs } from 'node:util';
import client from 'prom-client';
import { CellHistogram, CounterCell, foldCounterCells } from '../../src/metrics/hot-path.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const registry = new client.Registry();
const r = [registry];
const cell = new CounterCell();
const labelled = new client.Counter({ name: 'a_total', help: 'a', labelNames: ['kind'], registers: r });
const child = labelled.labels({ kind: 'ack' });
const plain = new client.Counter({ name: 'b_total', help: 'b', registers: r });
new client.Counter({ name: 'c_total', help: 'c', labelNames: ['kind'], registers: r, collect: foldCounterCells([[{ kind: 'ack' }, cell]]) });
const histogram = new client.Histogram({ name: 'd_seconds', help: 'd', buckets: BUCKETS, registers: r });
const labelledHistogram = new client.Histogram({ name: 'e_seconds', help: 'e', labelNames: ['bus'], buckets: BUCKETS, registers: r });
const histogramChild = labelledHistogram.labels({ bus: 'in_process' });
const cellHistogram = new CellHistogram({ name: 'f_seconds', help: 'f', buckets: BUCKETS, registers: r });
const cellHistogramChild = new CellHistogram({ name: 'g_seconds', help: 'g', labelNames: ['bus'], buckets: BUCKETS, registers: r }).child({ bus: 'in_process' });

/** Latencies of a loaded server: mostly low buckets, a tail. */
const samples = Float64Array.from({ length: 1024 }, (_, i) => (i % 64 === 0 ? 0.2 : 0.0003 + (i % 17) * 0.0004));

const cases: Array<[string, (i: number) => void]> = [
  // What the loop and the call through `run` cost by themselves; subtract it from the others.
  ['empty call (the loop itself)', () => {}],
  ['counter.inc(labels)          prom-client', () => labelled.inc({ kind: 'ack' })],
  ['child.inc() from labels()    prom-client', () => child.inc()],
  ['counter.inc() without labels prom-client', () => plain.inc()],
  ['CounterCell.inc()            hot-path.ts', () => cell.inc()],
  ['histogram.observe()          prom-client', (i) => histogram.observe(samples[i & 1023] as number)],
  ['child.observe() from labels() prom-client', (i) => histogramChild.observe(samples[i & 1023] as number)],
  ['CellHistogram.observe()      hot-path.ts', (i) => cellHistogram.observe(samples[i & 1023] as number)],
  ['HistogramCell.observe()      hot-path.ts', (i) => cellHistogramChild.observe(samples[i & 1023] as number)],
];

for (const [name, run] of cases) {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) run(i);
    best = Math.min(best, Number(process.hrtime.bigint() - started) / calls);
  }
  console.log(`${name.padEnd(44)} ${best.toFixed(1).padStart(7)} ns per call`);
}
// The scrape sees what the cells gathered: not a benchmark of nothing.
const text = await registry.metrics();
if (!text.includes(`c_total{kind="ack"} ${calls * rounds}`)) throw new Error('the counter cell did not fold into its series');
