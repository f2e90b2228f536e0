import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { httpGet, runPromtool } from '../helpers/metrics-tools.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const SOCKETS_PER_CAR = 3;
const RECORDS_PER_SOCKET = 6;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (label values here never contain `"` or `,`, which promtool also checks). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function labelLeaks(samples: Sample[], forbidden: string[]): string[] {
  const leaks: string[] = [];
  for (const sample of samples) {
    for (const [label, labelValue] of Object.entries(sample.labels)) {
      if (forbidden.some((secret) => labelValue.includes(secret))) leaks.push(`${sample.name}{${label}="${labelValue}"}`);
    }
  }
  return leaks;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('metrics exposition with traffic from many cars (real server, promtool)', function () {
  this.timeout(60_000);
  let t: TestServer;
  const secrets = { vins: [...TEST_VINS], txids: [] as string[], connectionIds: [] as string[] };
  let exposition = '';

  before(async () => {
    t = await startTestServer();
    const cars: CarClient[] = [];
    for (const vin of TEST_VINS) {
      for (let s = 0; s < SOCKETS_PER_CAR; s++) {
        const connectionTxid = randomUUID();
        secrets.connectionIds.push(connectionTxid);
        cars.push(await CarClient.connect(t.carOptions(vin, { connectionTxid, networkInterface: s % 2 === 0 ? 'wifi' : 'cellular' })));
      }
    }
    const replies = [];
    for (const car of cars) {
      for (let i = 0; i < RECORDS_PER_SOCKET; i++) {
        const txid = car.nextTxid();
        secrets.txids.push(txid);
        const createdAt = new Date();
        const payload =
          i % 3 === 0 ? encodeVehicleData({ vin: car.vin, createdAt, data: [{ key: 'VehicleSpeed', value: { doubleValue: i } }, { key: 'Odometer', value: { doubleValue: 1000 + i } }] })
          : i % 3 === 1 ? encodeVehicleAlerts({ vin: car.vin, createdAt, alerts: [{ name: 'CUSTOMER_ALERT', audiences: [], startedAt: createdAt }] })
          : encodeVehicleErrors({ vin: car.vin, createdAt, errors: [{ name: 'some_error', tags: {}, body: 'text' }] });
        replies.push(car.sendRecord(i % 3 === 0 ? 'V' : i % 3 === 1 ? 'alerts' : 'errors', payload, txid));
      }
      // One undecodable payload and one invented topic per socket.
      const badTxid = car.nextTxid();
      secrets.txids.push(badTxid);
      replies.push(car.sendRecord('V', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), badTxid));
      const oddTxid = car.nextTxid();
      secrets.txids.push(oddTxid);
      replies.push(car.sendRecord(`topic-${car.vin}`, new Uint8Array([1, 2, 3]), oddTxid));
    }
    const answered = await Promise.all(replies);
    expect(answered.filter((r) => r.kind === 'closed')).to.have.length(0);

    // A client without a certificate is refused (a refusal reason appears).
    const options = t.carOptions(TEST_VINS[0]);
    await new Promise<void>((resolve) => {
      const socket = new WebSocket(options.url, { ca: options.caPem, servername: 'localhost' } as WebSocket.ClientOptions);
      socket.once('unexpected-response', () => resolve());
      socket.once('error', () => resolve());
    });
    // Half the sockets go away; the rest stay open while scraping.
    await Promise.all(cars.filter((_, i) => i % 2 === 0).map((car) => car.close()));

    const response = await httpGet(`http://127.0.0.1:${t.server.metricsPort}/metrics`);
    expect(response.status).to.equal(200);
    exposition = response.body;
  });

  after(async () => {
    await t?.stop();
  });

  it('passes promtool check metrics, lint included', () => {
    const result = runPromtool(['check', 'metrics'], exposition);
    expect(result.output).to.equal('');
    expect(result.status).to.equal(0);
  });

  it('counts the traffic that was sent', () => {
    const samples = parseExposition(exposition);
    const sockets = TEST_VINS.length * SOCKETS_PER_CAR;
    expect(value(samples, 'fleet_telemetry_records_total', { topic: 'V' })).to.equal(sockets * 2);
    expect(value(samples, 'fleet_telemetry_records_total', { topic: 'alerts' })).to.equal(sockets * 2);
    expect(value(samples, 'fleet_telemetry_records_total', { topic: 'other' })).to.equal(sockets);
    expect(value(samples, 'fleet_telemetry_signals_total', { topic: 'V' })).to.equal(sockets * 2 * 2);
    expect(value(samples, 'fleet_telemetry_signal_cost_dollars_total', { topic: 'V' })).to.be.closeTo((sockets * 4) / 150_000, 1e-12);
    expect(value(samples, 'fleet_telemetry_replies_total', { kind: 'ack' })).to.equal(sockets * (RECORDS_PER_SOCKET + 1));
    expect(value(samples, 'fleet_telemetry_replies_total', { kind: 'error' })).to.equal(sockets);
    expect(value(samples, 'fleet_telemetry_decode_errors_total')).to.equal(sockets);
    expect(value(samples, 'fleet_telemetry_ack_latency_seconds_count')).to.equal(sockets * (RECORDS_PER_SOCKET + 2));
    expect(value(samples, 'fleet_telemetry_ack_latency_seconds_bucket', { le: '+Inf' })).to.equal(sockets * (RECORDS_PER_SOCKET + 2));
    expect(value(samples, 'fleet_telemetry_frames_received_total')).to.equal(sockets * (RECORDS_PER_SOCKET + 2));
    expect(value(samples, 'fleet_telemetry_vehicle_connection_attempts_total', { result: 'accepted' })).to.equal(sockets);
    expect(value(samples, 'fleet_telemetry_vehicle_connection_refusals_total', { reason: 'no_certificate' })).to.equal(1);
    expect(value(samples, 'fleet_telemetry_vehicles_connected')).to.equal(TEST_VINS.length);
    expect(value(samples, 'fleet_telemetry_bus_publish_latency_seconds_count', { bus: t.server.bus.name })).to.be.greaterThan(0);
  });

  it('no label value is a VIN, txid, connection id or IP address, and label values are few', () => {
    const samples = parseExposition(exposition);
    const forbidden = [...secrets.vins, ...secrets.txids, ...secrets.connectionIds, '127.0.0.1'];
    expect(secrets.txids.length).to.be.greaterThan(50);
    const leaks = labelLeaks(samples, forbidden);
    expect(labelLeaks([{ name: 'planted', labels: { vin: `x${secrets.vins[1]}` }, value: 1 }], forbidden), 'the scan finds a planted VIN').to.have.length(1);
    const valuesPerLabel = new Map<string, Set<string>>();
    const seriesPerMetric = new Map<string, number>();
    for (const sample of samples) {
      seriesPerMetric.set(sample.name, (seriesPerMetric.get(sample.name) ?? 0) + 1);
      for (const [label, labelValue] of Object.entries(sample.labels)) {
        const key = `${sample.name}:${label}`;
        if (!valuesPerLabel.has(key)) valuesPerLabel.set(key, new Set());
        valuesPerLabel.get(key)!.add(labelValue);
      }
    }
    expect(leaks).to.deep.equal([]);
    for (const [key, values] of valuesPerLabel) {
      if (key.endsWith(':le')) continue;
      // 12 sockets and 12 invented topics: a label fed from input would exceed this.
      expect(values.size, `${key} has values ${[...values].join(', ')}`).to.be.at.most(10);
    }
    for (const [name, count] of seriesPerMetric) expect(count, name).to.be.at.most(40);
  });

  it('serves only /metrics on the metrics port', async () => {
    const other = await httpGet(`http://127.0.0.1:${t.server.metricsPort}/`);
    expect(other.status).to.equal(404);
  });
});
