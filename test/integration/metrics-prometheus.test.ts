import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { dashboardQueries, expandGrafanaVariables } from '../../src/metrics/dashboard-queries.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { startPrometheus, type RunningPrometheus } from '../helpers/metrics-tools.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const DASHBOARDS = fileURLToPath(new URL('../../../grafana/dashboards/', import.meta.url));

async function eventually<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const result = await probe();
      if (result !== null) return result;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) throw new Error(`${what} not seen in time${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('a real Prometheus scraping a running server while a car streams', function () {
  this.timeout(60_000);
  let t: TestServer;
  let prometheus: RunningPrometheus | null = null;
  let car: CarClient | null = null;
  let streaming: NodeJS.Timeout | null = null;

  before(async () => {
    t = await startTestServer();
    prometheus = await startPrometheus(`127.0.0.1:${t.server.metricsPort}`);
    car = await CarClient.connect(t.carOptions(TEST_VINS[0]));
    let speed = 0;
    streaming = setInterval(() => {
      const payload = encodeVehicleData({ vin: TEST_VINS[0], createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: speed++ } }] });
      car?.sendRecord('V', payload).catch(() => undefined);
    }, 50);
  });

  after(async () => {
    if (streaming !== null) clearInterval(streaming);
    await car?.close().catch(() => undefined);
    await prometheus?.stop();
    await t?.stop();
  });

  const positive = (promql: string) => async (): Promise<number | null> => {
    const result = await prometheus!.query(promql);
    const n = result.length > 0 ? Number(result[0]!.value[1]) : NaN;
    return Number.isFinite(n) && n > 0 ? n : null;
  };

  it('scrapes the target successfully', async () => {
    await eventually('up == 1', positive('up{job="fleet-telemetry"}'));
  });

  it('has non-zero records, acks and ack latency histogram series', async () => {
    await eventually('records', positive('sum(fleet_telemetry_records_total{topic="V"})'));
    await eventually('acks', positive('sum(fleet_telemetry_replies_total{kind="ack"})'));
    await eventually('ack latency count', positive('sum(fleet_telemetry_ack_latency_seconds_count)'));
    await eventually('ack latency +Inf bucket', positive('sum(fleet_telemetry_ack_latency_seconds_bucket{le="+Inf"})'));
    const p99 = await eventually('ack latency p99', positive('histogram_quantile(0.99, sum by (le) (rate(fleet_telemetry_ack_latency_seconds_bucket[5s])))'));
    expect(p99).to.be.below(5, 'p99 ack latency on loopback is below the top bucket');
    await eventually('record rate', positive('sum(rate(fleet_telemetry_records_total{topic="V"}[5s]))'));
    await eventually('signal spend', positive('sum(fleet_telemetry_signal_cost_dollars_total)'));
  });

  it('agrees with the server about the record count it scraped', async () => {
    const scraped = await eventually('records', positive('sum(fleet_telemetry_records_total{topic="V"})'));
    const local = (await t.server.metrics.actors.records.get()).values.find((v) => v.labels.topic === 'V')?.value ?? 0;
    expect(scraped).to.be.at.most(local);
    expect(scraped).to.be.greaterThan(0);
  });

  it('evaluates every dashboard query without error', async () => {
    const queries = dashboardQueries(DASHBOARDS);
    expect(queries.length, 'the dashboards have queries to evaluate').to.be.greaterThan(10);
    for (const query of queries) {
      const expr = expandGrafanaVariables(query.expr).replace(/\[1m\]/g, '[5s]');
      await prometheus!.query(expr);
    }
  });
});
