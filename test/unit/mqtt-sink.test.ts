import { expect } from 'chai';
import client from 'prom-client';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { silentLogger } from '../../src/log/logger.js';
import { MqttLink } from '../../src/mqtt/mqtt-link.js';
import { MqttMetrics } from '../../src/mqtt/mqtt-metrics.js';
import { MqttSink } from '../../src/mqtt/mqtt-sink.js';
import { MqttTopics } from '../../src/mqtt/mqtt-topics.js';

const VIN = '5YJ3E7EB0LF000001';
const turn = () => new Promise((resolve) => setImmediate(resolve));
/** Enough event-loop turns for the sink to work through what was published (it goes in slices). */
const tick = async () => {
  for (let i = 0; i < 50; i++) await turn();
};

function vRecord(data: Array<{ key: string | number; value: unknown }>, vin = VIN): BusRecord {
  const recordJson = JSON.stringify({ data, createdAt: '2026-11-30T00:00:00Z', vin, isResend: false });
  return { vin, topic: 'V', txid: 't', receivedAt: Date.now(), recordJson, dashboardMessage: '', payload: null };
}

/** A link that is never connected (no broker): what the sink queues stays visible in its queue. */
function offlineLink(metrics: MqttMetrics, maxQueuedEvents = 100): MqttLink {
  return new MqttLink({
    url: 'mqtt://127.0.0.1:1',
    clientOptions: {},
    qos: 1,
    maxQueuedEvents,
    maxInFlight: 10,
    maxPerSecond: 0,
    statusTopic: 'tesla/status',
    subscriptions: [],
    onConnect() {},
    onMessage() {},
    metrics,
    logger: silentLogger(),
  });
}

async function counter(metrics: MqttMetrics, reason: string): Promise<number> {
  return (await metrics.mqttDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('MQTT sink and link (no broker)', () => {
  let metrics: MqttMetrics;
  let bus: InProcessBus;
  let clock: number;

  beforeEach(() => {
    metrics = new MqttMetrics(new client.Registry());
    bus = new InProcessBus();
    clock = 1_000_000;
  });

  function sink(link: MqttLink, extra: Partial<ConstructorParameters<typeof MqttSink>[0]> = {}): MqttSink {
    const s = new MqttSink({
      bus, link, topics: new MqttTopics('tesla', 'homeassistant'), metrics, logger: silentLogger(), discovery: true, heartbeatMs: 0,
      rawRecords: false, configuredFields: [], serverVersion: '0', now: () => clock, ...extra,
    });
    s.start();
    return s;
  }

  it('the bus listener returns before any message is built (acks never wait)', async () => {
    const link = offlineLink(metrics);
    sink(link);
    let safe = false;
    bus.publish(vRecord([{ key: 'VehicleSpeed', value: { doubleValue: 1 } }]), () => (safe = true));
    expect(safe).to.equal(true);
    expect(link.queueDepth).to.equal(0);
    await tick();
    expect(link.queueDepth).to.be.greaterThan(0);
  });

  it('keeps the latest value per topic while disconnected and counts the superseded ones', async () => {
    const link = offlineLink(metrics);
    sink(link, { discovery: false });
    for (let speed = 0; speed < 100; speed++) bus.publish(vRecord([{ key: 'VehicleSpeed', value: { doubleValue: speed } }]), () => {});
    await tick();
    // VehicleSpeed and the car's availability.
    expect(link.queueDepth).to.equal(2);
    expect(await counter(metrics, 'superseded')).to.equal(99);
  });

  it('bounds the event queue and drops the oldest', async () => {
    const link = offlineLink(metrics, 5);
    for (let i = 0; i < 12; i++) link.publishEvent('tesla/x/alerts', String(i), 'event');
    expect(link.queueDepth).to.equal(5);
    expect(await counter(metrics, 'queue_full')).to.equal(7);
  });

  it('publishes an unchanged value again only when the heartbeat is due', async () => {
    const link = offlineLink(metrics);
    const handed: string[] = [];
    const publishRetained = link.publishRetained.bind(link);
    link.publishRetained = (topic, payload, kind) => {
      handed.push(topic);
      publishRetained(topic, payload, kind);
    };
    sink(link, { discovery: false, heartbeatMs: 60_000 });
    const send = async () => {
      bus.publish(vRecord([{ key: 'Odometer', value: { doubleValue: 5 } }]), () => {});
      await tick();
    };
    const odometer = () => handed.filter((topic) => topic === `tesla/${VIN}/v/Odometer`).length;
    await send();
    expect(odometer()).to.equal(1);
    await send(); // same value, heartbeat not due
    clock += 59_999;
    await send();
    expect(odometer()).to.equal(1);
    clock += 1;
    await send(); // due
    expect(odometer()).to.equal(2);
  });

  it("announces the pushed config's fields with the car, before they send anything", async () => {
    const link = offlineLink(metrics);
    const s = sink(link, { configuredFields: ['BatteryLevel', 'PackVoltage', 'PackCurrent', 'Gear'] });
    bus.publish(vRecord([{ key: 'VehicleSpeed', value: { doubleValue: 1 } }]), () => {});
    await tick();
    // speed (seen) + battery level, pack voltage, pack current, battery power (derived), gear (configured)
    // discovery configs, the speed value and availability.
    expect(link.queueDepth).to.equal(6 + 2);
    expect(s.carCount).to.equal(1);
  });

  it('skips records another instance stored (NATS) and cars whose id cannot be a topic level', async () => {
    const link = offlineLink(metrics);
    const s = sink(link);
    const remote = Object.assign(vRecord([{ key: 'VehicleSpeed', value: { doubleValue: 1 } }]), { instance: 'other', state: null, createdAt: null });
    bus.publish(remote, () => {});
    bus.publish(vRecord([{ key: 'VehicleSpeed', value: { doubleValue: 1 } }], 'bad/vin#'), () => {});
    await tick();
    expect(s.carCount).to.equal(0);
    expect(link.queueDepth).to.equal(0);
    expect(await counter(metrics, 'unsupported_vin')).to.equal(1);
  });

  it('a malformed record costs only itself', async () => {
    const link = offlineLink(metrics);
    const s = sink(link, { discovery: false });
    bus.publish({ ...vRecord([]), recordJson: '{not json' }, () => {});
    bus.publish(vRecord([{ key: 'VehicleSpeed', value: { doubleValue: 3 } }]), () => {});
    await tick();
    expect(s.carCount).to.equal(1);
    expect(link.queueDepth).to.equal(2);
  });
});
