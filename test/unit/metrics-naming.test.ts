import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import client from 'prom-client';
import { describeMetrics } from '../../src/metrics/metrics-reference.js';
import { registerNodeMetrics } from '../../src/metrics/node-metrics.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { PREFIX } from '../../src/metrics/series.js';
import { promtool } from '../helpers/metrics-tools.js';

describe('metric names and types', () => {
  const metrics = new ServerMetrics({ version: '1.2.3' });
  const all = describeMetrics(metrics.registry);

  it('every series has the prefix, counters end in _total and nothing else does', () => {
    for (const metric of all) {
      expect(metric.name, metric.name).to.match(/^fleet_telemetry_[a-z0-9_]+$/);
      if (metric.type === 'counter') expect(metric.name, metric.name).to.match(/_total$/);
      else expect(metric.name, `${metric.name} is a ${metric.type}`).to.not.match(/_total$/);
      expect(metric.help.length, `${metric.name} has help`).to.be.greaterThan(5);
    }
  });

  it('latencies are histograms in seconds', () => {
    for (const metric of all.filter((m) => /latency|duration/.test(m.name))) {
      expect(metric.type, metric.name).to.equal('histogram');
      expect(metric.name, metric.name).to.match(/_seconds$/);
    }
  });

  it('exports build info, process and Node metrics including event-loop lag, memory and CPU', async () => {
    const text = await metrics.registry.metrics();
    expect(text).to.match(/^fleet_telemetry_build_info\{version="1\.2\.3",node_version="v[\d.]+"\} 1$/m);
    const names = new Set(all.map((m) => m.name));
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
      expect(names.has(`${PREFIX}${name}`), name).to.equal(true);
    }
  });

  it('drops the Node gauges named like counters when a labelled sibling exists, and renames the others', async () => {
    const registry = new client.Registry();
    registerNodeMetrics(registry, 'x_');
    const names = describeMetrics(registry).map((m) => m.name);
    expect(names).to.include('x_nodejs_active_handles');
    expect(names.filter((name) => name.startsWith('x_nodejs_active_') && name.endsWith('_total'))).to.deep.equal([]);
    // The default set itself still has them: the test would be vacuous if prom-client stopped exporting them.
    const raw = new client.Registry();
    client.collectDefaultMetrics({ register: raw, prefix: 'x_' });
    expect(describeMetrics(raw).filter((m) => m.type !== 'counter' && m.name.endsWith('_total')).length).to.be.greaterThan(0);
  });

  it('passes promtool check metrics, lint included (a fresh registry; the integration test adds traffic)', async () => {
    const result = spawnSync(promtool(), ['check', 'metrics'], { input: await metrics.registry.metrics(), encoding: 'utf8', timeout: 10_000 });
    expect(result.stdout + result.stderr).to.equal('');
    expect(result.status).to.equal(0);
  });

  it('promtool does reject what prom-client exports by default (so the check above means something)', async () => {
    const raw = new client.Registry();
    client.collectDefaultMetrics({ register: raw, prefix: 'x_' });
    const result = spawnSync(promtool(), ['check', 'metrics'], { input: await raw.metrics(), encoding: 'utf8', timeout: 10_000 });
    expect(result.status).to.not.equal(0);
    expect(result.stdout + result.stderr).to.include('non-counter metrics should not have "_total" suffix');
  });
});
