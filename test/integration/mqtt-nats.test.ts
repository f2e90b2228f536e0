import { expect } from 'chai';
import type { NatsRecordBus } from '../../src/bus/nats/nats-record-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { Mosquitto, Watcher, eventually } from '../helpers/mosquitto.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { holdsAfter } from '../helpers/eventually.js';
import { scrapeSum } from '../helpers/metrics-tools.js';

const VIN = TEST_VINS[3];

describe('MQTT output in NATS mode: every record published once across instances (real nats-server + mosquitto)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let broker: Mosquitto;
  let a: TestServer;
  let b: TestServer;
  let watcher: Watcher;

  before(async () => {
    nats = await NatsServer.start();
    broker = await Mosquitto.start();
    const env = (instance: string) => ({
      NATS_URL: nats.url,
      NATS_INSTANCE_ID: instance,
      NATS_STATE_FLUSH_MS: '100',
      MQTT_URL: broker.url,
      MQTT_RAW_RECORDS: 'true',
    });
    a = await startTestServer({ env: env('mqtt-a') });
    b = await startTestServer({ env: env('mqtt-b') });
    await eventually(() => a.server.mqtt?.link.connected === true && b.server.mqtt?.link.connected === true, 10_000, 'both connected');
    watcher = await Watcher.connect(broker.url);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await watcher?.close();
    await broker?.dispose();
    await nats?.dispose();
  });

  it('a car on A, its records also delivered to B (a dashboard there watches it): each record and each change reaches MQTT once', async () => {
    // B follows the car as it does for a local dashboard, so B's bus delivers A's records too.
    const busB = b.server.bus as NatsRecordBus;
    busB.watch(VIN);
    await busB.watchReady(VIN);
    const seenByB: BusRecord[] = [];
    b.server.bus.subscribe((record) => {
      if (record.vin === VIN) seenByB.push(record);
    });

    const car = await CarClient.connect(a.carOptions(VIN));
    const count = 30;
    for (let speed = 1; speed <= count; speed++) {
      const reply = await car.sendRecord('V', encodeVehicleData({ vin: VIN, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: speed } }] }));
      expect(reply.kind).to.equal('ack');
    }
    await eventually(() => seenByB.filter((r) => r.topic === 'V').length === count, 10_000, 'B received every record from NATS');
    await eventually(() => watcher.on(`tesla/${VIN}/v/VehicleSpeed`).length >= count, 10_000, 'every speed on MQTT');
    // B has every record (the barrier): a duplicate would come from B's publisher, so B must have
    // published no car state or record, and nothing extra may reach the broker, over a settle.
    const bUrl = `http://127.0.0.1:${b.server.metricsPort}/metrics`;
    await holdsAfter(Promise.resolve(), async () => {
      expect(await scrapeSum(bUrl, 'fleet_telemetry_mqtt_published_total', { kind: 'state' }), 'state published by B').to.equal(0);
      expect(await scrapeSum(bUrl, 'fleet_telemetry_mqtt_published_total', { kind: 'record' }), 'records published by B').to.equal(0);
      expect(watcher.on(`tesla/${VIN}/v/VehicleSpeed`)).to.have.length(count);
    }, 500);

    const speeds = watcher.on(`tesla/${VIN}/v/VehicleSpeed`).map((m) => (JSON.parse(m.payload) as { doubleValue: number }).doubleValue);
    expect(speeds).to.deep.equal(Array.from({ length: count }, (_, i) => i + 1));
    expect(watcher.on(`tesla/${VIN}/record/V`)).to.have.length(count);
    expect(watcher.on(`tesla/${VIN}/availability`).map((m) => m.payload)).to.deep.equal(['online']);
    expect(b.server.mqtt?.sink.carCount).to.equal(0);
    expect(a.server.mqtt?.sink.carCount).to.equal(1);
    await car.close();
    await eventually(() => watcher.retained.get(`tesla/${VIN}/availability`) === 'offline', 10_000, 'offline once');
    busB.unwatch(VIN);
  });

  it('a car that goes A -> B -> A: A publishes its values again though they equal what A published before', async () => {
    const vin = TEST_VINS[2];
    const topic = `tesla/${vin}/v/Locked`;
    const locked = (value: boolean) => encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'Locked', value: { booleanValue: value } }] });
    let car = await CarClient.connect(a.carOptions(vin));
    expect((await car.sendRecord('V', locked(true))).kind).to.equal('ack');
    await eventually(() => watcher.retained.get(topic) === '{"booleanValue":true}', 10_000, 'locked via A');
    await car.close();
    car = await CarClient.connect(b.carOptions(vin));
    expect((await car.sendRecord('V', locked(false))).kind).to.equal('ack');
    await eventually(() => watcher.retained.get(topic) === '{"booleanValue":false}', 10_000, 'unlocked via B');
    await car.close();
    car = await CarClient.connect(a.carOptions(vin));
    expect((await car.sendRecord('V', locked(true))).kind).to.equal('ack');
    await eventually(() => watcher.retained.get(topic) === '{"booleanValue":true}', 10_000, 'locked again via A');
    await car.close();
  });
});
