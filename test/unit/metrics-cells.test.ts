import { expect } from 'chai';
import client from 'prom-client';
import { CellHistogram, CounterCell, foldCounterCells } from '../../src/metrics/hot-path.js';
import { METRIC_TOPICS } from '../../src/actors/actor-metrics.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { SIGNALS_PER_US_DOLLAR } from '../../src/protocol/signal-price.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

function valueOf(data: client.MetricObjectWithValues<client.MetricValue<string>>, labels: Record<string, string>): number | undefined {
  return data.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))?.value;
}

describe('metrics hot path cells', () => {
  it('a cell histogram exports exactly what a prom-client histogram exports for the same observations', async () => {
    const observations = [0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.7, 1, 1.5, 42];
    const oursRegistry = new client.Registry();
    const theirsRegistry = new client.Registry();
    const ours = new CellHistogram({ name: 'x_seconds', help: 'h', buckets: BUCKETS, registers: [oursRegistry] });
    const theirs = new client.Histogram({ name: 'x_seconds', help: 'h', buckets: BUCKETS, registers: [theirsRegistry] });
    for (const value of observations) {
      ours.observe(value);
      theirs.observe(value);
    }
    expect(await oursRegistry.metrics()).to.equal(await theirsRegistry.metrics());
  });

  it('labelled children export like prom-client labelled series, and observe() without a child is refused', async () => {
    const oursRegistry = new client.Registry();
    const theirsRegistry = new client.Registry();
    const ours = new CellHistogram({ name: 'y_seconds', help: 'h', buckets: BUCKETS, labelNames: ['bus'], registers: [oursRegistry] });
    const theirs = new client.Histogram({ name: 'y_seconds', help: 'h', buckets: BUCKETS, labelNames: ['bus'], registers: [theirsRegistry] });
    const a = ours.child({ bus: 'in_process' });
    const b = ours.child({ bus: 'nats' });
    expect(ours.child({ bus: 'in_process' })).to.equal(a, 'children are created once and reused');
    for (const [cell, bus, value] of [[a, 'in_process', 0.002], [b, 'nats', 0.3], [a, 'in_process', 5]] as const) {
      cell.observe(value);
      theirs.observe({ bus }, value);
    }
    expect(await oursRegistry.metrics()).to.equal(await theirsRegistry.metrics());
    expect(() => ours.observe(1)).to.throw(/has labels/);
    expect(() => ours.child({} as { bus: string })).to.throw(/expected labels bus/);
  });

  it('an unlabelled histogram is exported at zero before its first observation, and reset() zeroes it', async () => {
    const registry = new client.Registry();
    const histogram = new CellHistogram({ name: 'z_seconds', help: 'h', buckets: BUCKETS, registers: [registry] });
    expect(await registry.metrics()).to.include('z_seconds_count 0');
    histogram.observe(0.5);
    expect(await registry.metrics()).to.include('z_seconds_count 1');
    registry.resetMetrics();
    expect(await registry.metrics()).to.include('z_seconds_count 0');
    expect(() => new CellHistogram({ name: 'bad', help: 'h', buckets: [1, 1], registers: [] })).to.throw(/ascending/);
  });

  it('a lone inline batch counted as one addition shows up in decode_batch_frames and decode_batches_total as an observation would, once', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const registry = metrics.registry;
    metrics.decode.decodeBatchFrames.observe(3);
    metrics.decode.batchCells.inline.inc();
    metrics.decode.loneInlineBatches += 4;
    const text = await registry.metrics();
    expect(text).to.include('fleet_telemetry_decode_batch_frames_bucket{le="1"} 4');
    expect(text).to.include('fleet_telemetry_decode_batch_frames_bucket{le="4"} 5');
    expect(text).to.include('fleet_telemetry_decode_batch_frames_sum 7');
    expect(text).to.include('fleet_telemetry_decode_batch_frames_count 5');
    expect(text).to.include('fleet_telemetry_decode_batches_total{path="inline"} 5');
    expect(metrics.decode.loneInlineBatches).to.equal(0);
    // Read again: nothing folded twice.
    metrics.decode.loneInlineBatches++;
    const again = await registry.metrics();
    expect(again).to.include('fleet_telemetry_decode_batch_frames_count 6');
    expect(again).to.include('fleet_telemetry_decode_batches_total{path="inline"} 6');
    // A reset drops what was folded; what was not folded yet survives it, in both series alike (as a counter cell's pending count does).
    metrics.decode.loneInlineBatches += 2;
    registry.resetMetrics();
    const reset = await registry.metrics();
    expect(reset).to.include('fleet_telemetry_decode_batch_frames_count 2');
    expect(reset).to.include('fleet_telemetry_decode_batches_total{path="inline"} 2');
  });

  it('counter cells are folded in at every read, once, with a scale', async () => {
    const registry = new client.Registry();
    const apples = new CounterCell();
    const pears = new CounterCell();
    const counter = new client.Counter({
      name: 'fruit_total', help: 'h', labelNames: ['kind'], registers: [registry],
      collect: foldCounterCells<'kind'>([[{ kind: 'apple' }, apples], [{ kind: 'pear' }, pears]], 0.5),
    });
    apples.inc();
    apples.inc(3);
    expect(valueOf(await counter.get(), { kind: 'apple' })).to.equal(2);
    expect(valueOf(await counter.get(), { kind: 'apple' }), 'a second read adds nothing').to.equal(2);
    pears.inc(10);
    counter.inc({ kind: 'apple' }, 1);
    const data = await counter.get();
    expect(valueOf(data, { kind: 'pear' })).to.equal(5);
    expect(valueOf(data, { kind: 'apple' })).to.equal(3);
  });

  it('a record counts once in records, signals, payload bytes and estimated spend of its topic', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false }).actors;
    metrics.topic('V').recordReceived(300_000, 1000);
    metrics.topic('alerts').recordReceived(2, 10);
    metrics.topic('some-topic-a-car-invented').recordReceived(1, 1);
    expect(metrics.topic('another-invented-topic')).to.equal(metrics.topic('other'));
    const records = await metrics.records.get();
    expect(valueOf(records, { topic: 'V' })).to.equal(1);
    expect(valueOf(records, { topic: 'other' })).to.equal(1);
    expect(valueOf(records, { topic: 'errors' }), 'known topics are exported at zero').to.equal(0);
    expect(records.values.map((v) => v.labels.topic).sort()).to.deep.equal([...METRIC_TOPICS].sort());
    expect(valueOf(await metrics.signals.get(), { topic: 'V' })).to.equal(300_000);
    expect(valueOf(await metrics.recordBytes.get(), { topic: 'alerts' })).to.equal(10);
    const cost = await metrics.signalCostDollars.get();
    expect(valueOf(cost, { topic: 'V' })).to.be.closeTo(300_000 / SIGNALS_PER_US_DOLLAR, 1e-12);
    expect(valueOf(cost, { topic: 'V' })).to.be.closeTo(2, 1e-12);
    expect(valueOf(cost, { topic: 'alerts' })).to.be.closeTo(2 / SIGNALS_PER_US_DOLLAR, 1e-15);
  });

  it('reply and frame cells and the ack latency histogram show up in the exposition', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    metrics.vehicle.replyCells.ack.inc();
    metrics.vehicle.replyCells.ack.inc();
    metrics.vehicle.replyCells.error.inc();
    metrics.vehicle.framesCell.inc();
    metrics.vehicle.frameBytesCell.inc(123);
    metrics.vehicle.ackLatency.observe(0.003);
    metrics.actors.busPublishLatency.child({ bus: 'in_process' }).observe(0.0001);
    const text = await metrics.registry.metrics();
    expect(text).to.include('fleet_telemetry_replies_total{kind="ack"} 2');
    expect(text).to.include('fleet_telemetry_replies_total{kind="error"} 1');
    expect(text).to.include('fleet_telemetry_frames_received_total 1');
    expect(text).to.include('fleet_telemetry_frame_received_bytes_total 123');
    expect(text).to.include('fleet_telemetry_ack_latency_seconds_bucket{le="0.005"} 1');
    expect(text).to.include('fleet_telemetry_ack_latency_seconds_bucket{le="0.002"} 0');
    expect(text).to.include('fleet_telemetry_bus_publish_latency_seconds_count{bus="in_process"} 1');
  });
});
