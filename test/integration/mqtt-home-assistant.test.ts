import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HA_ENTITIES } from '../../src/mqtt/ha-entities.js';
import { encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { VehicleStory, type StoryDatum } from '../../src/sim/vehicle-story.js';
import { renderTemplates } from '../helpers/jinja.js';
import { Mosquitto, Watcher, eventually } from '../helpers/mosquitto.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { holdsAfter } from '../helpers/eventually.js';

const VIN = TEST_VINS[0]; // 5YJ3...: a Model 3
const OTHER_VIN = TEST_VINS[2];
const CLI_JS = new URL('../../src/cli/main.js', import.meta.url).pathname;

/** Fields the story does not send, so that every entity of the catalogue gets fed. */
const EXTRA: StoryDatum[] = [
  { key: 'RatedRange', value: { doubleValue: 250.5 } },
  { key: 'EnergyRemaining', value: { doubleValue: 61.2 } },
  { key: 'DCChargingPower', value: { doubleValue: 0 } },
  { key: 'ChargerVoltage', value: { doubleValue: 238 } },
  { key: 'ChargeAmps', value: { doubleValue: 32 } },
  { key: 'ChargeLimitSoc', value: { intValue: 80 } },
  { key: 'TimeToFullCharge', value: { doubleValue: 1.25 } },
  { key: 'ACChargingEnergyIn', value: { doubleValue: 12.4 } },
  { key: 'DCChargingEnergyIn', value: { doubleValue: 0 } },
  { key: 'FdWindow', value: { windowStateValue: 'WindowStateClosed' } },
  { key: 'FpWindow', value: { windowStateValue: 'WindowStatePartiallyOpen' } },
  // A car without prefer_typed sends strings: the templates must read those too.
  { key: 'RdWindow', value: { stringValue: 'Closed' } },
  { key: 'RpWindow', value: { windowStateValue: 'WindowStateOpened' } },
  { key: 'ChargePortDoorOpen', value: { booleanValue: false } },
  { key: 'SentryMode', value: { sentryModeStateValue: 'SentryModeStateArmed' } },
  { key: 'Version', value: { stringValue: '2026.38.4 abc123' } },
];

function vehicleData(data: StoryDatum[]): Uint8Array {
  return encodeVehicleData({ vin: VIN, createdAt: new Date(), data } as Parameters<typeof encodeVehicleData>[0]);
}

async function metricValue(t: TestServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = t.server.metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('MQTT output with Home Assistant discovery (real mosquitto)', function () {
  this.timeout(60_000);
  let broker: Mosquitto;
  let t: TestServer;
  let watcher: Watcher;
  let car: CarClient;

  before(async () => {
    broker = await Mosquitto.start();
    watcher = await Watcher.connect(broker.url);
    t = await startTestServer({ env: { MQTT_URL: broker.url, MQTT_RAW_RECORDS: 'true', MQTT_CLIENT_ID: 'fleet-telemetry-test' } });
    await eventually(() => t.server.mqtt?.link.connected === true, 10_000, 'server connected to the broker');
    car = await CarClient.connect(t.carOptions(VIN));
  });
  after(async () => {
    await car?.close().catch(() => undefined);
    await t?.stop();
    await watcher?.close();
    await broker?.dispose();
  });

  it('a streaming car appears as one device with every entity, typed, and a retained value per field', async () => {
    const story = new VehicleStory({ seed: 7 });
    for (let i = 0; i < 5; i++) {
      const reply = await car.sendRecord('V', vehicleData(i === 0 ? [...story.next(), ...EXTRA] : story.next()));
      expect(reply.kind).to.equal('ack');
    }
    await eventually(() => watcher.retained.get(`tesla/${VIN}/availability`) === 'online', 10_000, 'car online');
    expect(watcher.retained.get('tesla/status')).to.equal('online');
    for (const entity of HA_ENTITIES) {
      const topic = `homeassistant/${entity.component}/${VIN}/${entity.objectId}/config`;
      await eventually(() => watcher.retained.has(topic), 10_000, `discovery ${topic}`);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
      const config = JSON.parse(watcher.retained.get(topic) as string) as Record<string, any>;
      expect(config.unique_id).to.equal(`tesla_${VIN}_${entity.objectId}`);
      expect(config.device).to.deep.include({ identifiers: [`tesla_${VIN}`], manufacturer: 'Tesla', model: 'Model 3', name: `Tesla ${VIN}` });
      expect(config.availability).to.deep.equal([{ topic: 'tesla/status' }, { topic: `tesla/${VIN}/availability` }]);
      expect(config.availability_mode).to.equal('all');
      const stateTopic = (config.state_topic ?? config.json_attributes_topic) as string;
      await eventually(() => watcher.retained.has(stateTopic), 10_000, `state ${stateTopic}`);
    }
    // The canonical Value JSON, as the car sent it.
    expect(JSON.parse(watcher.retained.get(`tesla/${VIN}/v/ChargeLimitSoc`) as string)).to.deep.equal({ intValue: 80 });
    expect(JSON.parse(watcher.retained.get(`tesla/${VIN}/v/Version`) as string)).to.deep.equal({ stringValue: '2026.38.4 abc123' });
    const location = JSON.parse(watcher.retained.get(`tesla/${VIN}/location`) as string) as Record<string, number>;
    expect(location).to.have.keys('latitude', 'longitude', 'gps_accuracy', 'heading');
    expect(location.latitude).to.be.within(37, 38);
    expect(location.longitude).to.be.within(-123, -122);
  });

  it("every entity's value_template renders the car's value as Home Assistant would", () => {
    const withTemplates = HA_ENTITIES.filter((e) => e.valueTemplate !== undefined);
    const cases = withTemplates.map((entity) => {
      const config = JSON.parse(watcher.retained.get(`homeassistant/${entity.component}/${VIN}/${entity.objectId}/config`) as string) as { value_template: string; state_topic: string };
      return { template: config.value_template, payload: watcher.retained.get(config.state_topic) as string };
    });
    const rendered = renderTemplates(cases);
    const byId = new Map(withTemplates.map((entity, i) => [entity.objectId, rendered[i]]));
    for (const [i, entity] of withTemplates.entries()) {
      const out = rendered[i];
      if (entity.component === 'binary_sensor') expect(out, entity.objectId).to.be.oneOf(['ON', 'OFF']);
      else if (entity.options) expect(out, entity.objectId).to.be.oneOf(entity.options);
      else if (entity.unit) expect(Number.isFinite(Number(out)), `${entity.objectId}: ${out}`).to.equal(true);
    }
    expect(byId.get('charge_limit')).to.equal('80.0');
    expect(byId.get('time_to_full_charge')).to.equal('1.25');
    expect(byId.get('sentry_mode')).to.equal('Armed');
    expect(byId.get('software_version')).to.equal('2026.38.4 abc123');
    expect(byId.get('window_driver_front')).to.equal('OFF');
    expect(byId.get('window_passenger_front')).to.equal('ON');
    expect(byId.get('window_driver_rear')).to.equal('OFF');
    expect(byId.get('window_passenger_rear')).to.equal('ON');
    expect(byId.get('charge_port_door')).to.equal('OFF');
    // The story's car is parked and locked at first: the lock class says OFF for locked.
    expect(byId.get('locked')).to.equal('OFF');
    expect(byId.get('gear')).to.be.oneOf(['P', 'D']);
    expect(byId.get('charging_state')).to.be.oneOf(['Disconnected', 'Charging']);
    // Battery power is derived from pack voltage x current.
    const voltage = JSON.parse(watcher.retained.get(`tesla/${VIN}/v/PackVoltage`) as string).doubleValue as number;
    const current = JSON.parse(watcher.retained.get(`tesla/${VIN}/v/PackCurrent`) as string).doubleValue as number;
    expect(Number(byId.get('battery_power'))).to.be.closeTo((voltage * current) / 1000, 0.001);
  });

  it('an invalid reading becomes unknown (None), not a number', async () => {
    await car.sendRecord('V', vehicleData([{ key: 'InsideTemp', value: { invalid: true } }]));
    await eventually(() => watcher.retained.get(`tesla/${VIN}/v/InsideTemp`) === '{"invalid":true}', 10_000, 'invalid InsideTemp');
    const entity = HA_ENTITIES.find((e) => e.objectId === 'inside_temperature');
    const [out] = renderTemplates([{ template: entity?.valueTemplate as string, payload: '{"invalid":true}' }]);
    expect(out).to.equal('None');
  });

  it('publishes a field only when its value changes', async () => {
    const topic = `tesla/${VIN}/v/ChargeLimitSoc`;
    const before = watcher.on(topic).length;
    for (const soc of [80, 80, 80, 85, 85, 90]) {
      expect((await car.sendRecord('V', vehicleData([{ key: 'ChargeLimitSoc', value: { intValue: soc } }]))).kind).to.equal('ack');
    }
    await eventually(() => watcher.retained.get(topic) === '{"intValue":90}', 10_000, 'limit 90');
    // One more record of the same car, with the same limit and a new odometer: once its odometer is
    // out, everything before it has been published; the limit must still have been sent twice only.
    expect((await car.sendRecord('V', vehicleData([{ key: 'ChargeLimitSoc', value: { intValue: 90 } }, { key: 'Odometer', value: { doubleValue: 4242.5 } }]))).kind).to.equal('ack');
    const barrier = eventually(() => watcher.retained.get(`tesla/${VIN}/v/Odometer`) === '{"doubleValue":4242.5}', 10_000, 'the barrier odometer');
    await holdsAfter(barrier, () => {
      expect(watcher.on(topic).slice(before).map((m) => m.payload)).to.deep.equal(['{"intValue":85}', '{"intValue":90}']);
    });
  });

  it('alerts and errors are events (not retained), one message each; raw records are published when asked', async () => {
    const startedAt = new Date();
    await car.sendRecord('alerts', encodeVehicleAlerts({ vin: VIN, createdAt: startedAt, alerts: [
      { name: 'BMS_a066_SW_Low_Soc', audiences: ['Customer'], startedAt },
      { name: 'UI_a004_TPMS_Hard_Warning', audiences: ['Customer'], startedAt },
    ] } as Parameters<typeof encodeVehicleAlerts>[0]));
    await car.sendRecord('errors', encodeVehicleErrors({ vin: VIN, createdAt: startedAt, errors: [{ name: 'thermal_fault', body: 'x', createdAt: startedAt }] }));
    await eventually(() => watcher.on(`tesla/${VIN}/alerts`).length === 2 && watcher.on(`tesla/${VIN}/errors`).length === 1, 10_000, 'events');
    const alerts = watcher.on(`tesla/${VIN}/alerts`).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    expect(alerts.map((a) => a.name)).to.deep.equal(['BMS_a066_SW_Low_Soc', 'UI_a004_TPMS_Hard_Warning']);
    expect(alerts[0]!.vin).to.equal(VIN);
    expect(watcher.retained.has(`tesla/${VIN}/alerts`), 'alerts are not retained').to.equal(false);
    // A late subscriber sees retained state but no old events.
    const late = await Watcher.connect(broker.url);
    try {
      await eventually(() => late.retained.has(`tesla/${VIN}/v/ChargeLimitSoc`), 5000, 'late subscriber got retained state');
      expect(late.on(`tesla/${VIN}/alerts`)).to.have.length(0);
      expect(late.on(`tesla/${VIN}/record/V`)).to.have.length(0);
    } finally {
      await late.close();
    }
    const raw = watcher.on(`tesla/${VIN}/record/alerts`);
    expect(raw).to.have.length(1);
    expect((JSON.parse(raw[0]!.payload) as { alerts: unknown[] }).alerts).to.have.length(2);
    expect(watcher.on(`tesla/${VIN}/record/V`).length).to.be.greaterThan(5);
  });

  it("republishes discovery when Home Assistant restarts (its birth message on homeassistant/status)", async () => {
    const topic = `homeassistant/sensor/${VIN}/battery_level/config`;
    await watcher.publish(topic, '', true);
    await eventually(() => !watcher.retained.has(topic), 5000, 'config cleared');
    await watcher.publish('homeassistant/status', 'online');
    await eventually(() => watcher.retained.has(topic), 5000, 'config republished');
  });

  it('the car going away makes its entities unavailable', async () => {
    await car.close();
    await eventually(() => watcher.retained.get(`tesla/${VIN}/availability`) === 'offline', 10_000, 'car offline');
    // Transitions (a Home Assistant restart above republished `online` once more).
    const availability = watcher.on(`tesla/${VIN}/availability`).map((m) => m.payload).filter((p, i, all) => i === 0 || p !== all[i - 1]);
    expect(availability).to.deep.equal(['online', 'offline']);
  });

  it('`mqtt remove-car` clears the car from Home Assistant and the running server forgets it', async () => {
    const result = spawnSync(process.execPath, [CLI_JS, 'mqtt', 'remove-car', '--vin', VIN], {
      env: { PATH: process.env.PATH, MQTT_URL: broker.url },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/removed 5YJ3/);
    await eventually(() => [...watcher.retained.keys()].every((topic) => !topic.includes(VIN)), 5000, 'every retained topic of the car cleared');
    await eventually(() => t.server.mqtt?.sink.carCount === 0, 5000, 'server forgot the car');
    // A Home Assistant restart now brings nothing back. Another car the server still knows is the
    // barrier: the restart republishes every known car in one pass, so once the other car's config
    // is out again, the removed car would have been too.
    const other = await CarClient.connect(t.carOptions(OTHER_VIN));
    try {
      expect((await other.sendRecord('V', encodeVehicleData({ vin: OTHER_VIN, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: 7 } }] }))).kind).to.equal('ack');
      const otherConfig = `homeassistant/sensor/${OTHER_VIN}/speed/config`;
      await eventually(() => watcher.retained.has(otherConfig), 10_000, 'the other car discovered');
      const configsBefore = watcher.on(otherConfig).length;
      await watcher.publish('homeassistant/status', 'online');
      await holdsAfter(eventually(() => watcher.on(otherConfig).length > configsBefore, 5000, 'the other car republished'), () => {
        expect([...watcher.retained.keys()].filter((topic) => topic.includes(VIN))).to.deep.equal([]);
      });
    } finally {
      await other.close();
    }
  });

  it('exports connected, published, dropped and queue depth, none labelled by VIN', async () => {
    expect(await metricValue(t, 'fleet_telemetry_mqtt_connected')).to.equal(1);
    expect(await metricValue(t, 'fleet_telemetry_mqtt_published_total', { kind: 'discovery' })).to.be.at.least(HA_ENTITIES.length);
    expect(await metricValue(t, 'fleet_telemetry_mqtt_published_total', { kind: 'state' })).to.be.greaterThan(20);
    expect(await metricValue(t, 'fleet_telemetry_mqtt_queue_depth')).to.equal(0);
    const text = await t.server.metrics.registry.metrics();
    expect(text).to.not.include(VIN);
  });
});

describe('MQTT output survives a broker restart mid-stream (real mosquitto)', function () {
  this.timeout(60_000);
  let broker: Mosquitto;
  let t: TestServer;
  let watcher: Watcher;

  before(async () => {
    broker = await Mosquitto.start();
    t = await startTestServer({ env: { MQTT_URL: broker.url } });
    await eventually(() => t.server.mqtt?.link.connected === true, 10_000, 'server connected');
    watcher = await Watcher.connect(broker.url);
  });
  after(async () => {
    await t?.stop();
    await watcher?.close();
    await broker?.dispose();
  });

  it('acks every frame while the broker is down, keeps only the latest values, and republishes the state after it is back', async () => {
    const vin = TEST_VINS[1];
    const car = await CarClient.connect(t.carOptions(vin));
    const send = async (speed: number) =>
      car.sendRecord('V', encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: speed } }, { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } }] }));
    const replies: string[] = [];
    let speed = 0;
    for (; speed < 20; speed++) replies.push((await send(speed)).kind);
    await eventually(() => watcher.retained.get(`tesla/${vin}/v/VehicleSpeed`) === '{"doubleValue":19}', 10_000, 'first values');
    expect(watcher.retained.has(`homeassistant/sensor/${vin}/speed/config`)).to.equal(true);

    const seenBeforeOutage = watcher.messages.length;
    await broker.stop();
    await eventually(() => t.server.mqtt?.link.connected === false, 10_000, 'server saw the broker go');
    const ackStarted = Date.now();
    for (; speed < 220; speed++) replies.push((await send(speed)).kind);
    const outageSendMs = Date.now() - ackStarted;
    expect(replies.every((kind) => kind === 'ack'), 'every frame acked while the broker was down').to.equal(true);
    // Latest value per car and field, not a backlog of 200 speeds.
    const depth = t.server.mqtt?.link.queueDepth ?? -1;
    expect(depth).to.be.at.most(10);
    const dropped = (await t.server.metrics.mqtt.mqttDropped.get()).values.find((v) => v.labels.reason === 'superseded')?.value ?? 0;
    expect(dropped).to.be.at.least(190);

    // The restarted broker has no retained messages at all (no persistence).
    await broker.restart();
    await eventually(() => t.server.mqtt?.link.connected === true, 20_000, 'server reconnected');
    await eventually(() => watcher.retained.get(`tesla/${vin}/v/VehicleSpeed`) === '{"doubleValue":219}', 10_000, 'latest speed republished');
    await eventually(() => watcher.retained.get(`tesla/${vin}/availability`) === 'online', 10_000, 'availability republished');
    await eventually(() => watcher.retained.has(`homeassistant/sensor/${vin}/speed/config`), 10_000, 'discovery republished');
    expect(watcher.retained.get('tesla/status')).to.equal('online');
    // After the restart only the latest value went out, never the 200 in between.
    const afterRestart = watcher.messages.slice(seenBeforeOutage).filter((m) => m.topic === `tesla/${vin}/v/VehicleSpeed`).map((m) => m.payload);
    expect(afterRestart).to.deep.equal(['{"doubleValue":219}']);
    expect(outageSendMs).to.be.below(20_000);
    await car.close();
  });
});

describe('MQTT output when the broker is not there yet (real mosquitto)', function () {
  // Reconnects back off up to 10 s: under load the broker may come up just after an attempt.
  this.timeout(90_000);

  it('starts without it, acks cars, and connects and publishes once the broker comes up', async () => {
    const broker = await Mosquitto.start();
    await broker.stop();
    const t = await startTestServer({ env: { MQTT_URL: broker.url } });
    try {
      const vin = TEST_VINS[0];
      const car = await CarClient.connect(t.carOptions(vin));
      expect((await car.sendRecord('V', encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: 1234.5 } }] }))).kind).to.equal('ack');
      expect(t.server.mqtt?.link.connected).to.equal(false);
      await broker.launch();
      const watcher = await Watcher.connect(broker.url);
      try {
        await eventually(() => watcher.retained.get(`tesla/${vin}/v/Odometer`) === '{"doubleValue":1234.5}', 45_000, 'value after the broker came up');
        expect(watcher.retained.has(`homeassistant/sensor/${vin}/odometer/config`)).to.equal(true);
      } finally {
        await watcher.close();
      }
      await car.close();
    } finally {
      await t.stop();
      await broker.dispose();
    }
  });
});

describe('MQTT output to a broker with TLS and a password (real mosquitto)', function () {
  this.timeout(60_000);
  let broker: Mosquitto;
  let t: TestServer;
  const credentials = { username: 'fleet', password: 'broker-password-123' };

  before(async () => {
    const pki = (await startTestServer({ env: {} }).then(async (probe) => {
      await probe.stop();
      return probe.pki;
    }));
    broker = await Mosquitto.start({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey }, credentials });
  });
  after(async () => {
    await t?.stop();
    await broker?.dispose();
  });

  it('connects over mqtts:// with the CA, user and a password file, and publishes', async () => {
    const pki = (await import('../helpers/test-server.js')).testPki;
    const files = await pki();
    const passwordFile = join(broker.dir, 'client-password');
    writeFileSync(passwordFile, `${credentials.password}\n`, { mode: 0o600 });
    t = await startTestServer({
      env: { MQTT_URL: broker.url, MQTT_CA_FILE: files.caChain, MQTT_USERNAME: credentials.username, MQTT_PASSWORD_FILE: passwordFile, MQTT_PROTOCOL_VERSION: '5' },
    });
    await eventually(() => t.server.mqtt?.link.connected === true, 10_000, 'server connected over TLS');
    const watcher = await Watcher.connect(broker.url, { ca: (await import('node:fs')).readFileSync(files.caChain), ...credentials });
    try {
      const vin = TEST_VINS[2];
      const car = await CarClient.connect(t.carOptions(vin));
      const reply = await car.sendRecord('V', encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'BatteryLevel', value: { doubleValue: 77.5 } }] }));
      expect(reply.kind).to.equal('ack');
      await eventually(() => watcher.retained.get(`tesla/${vin}/v/BatteryLevel`) === '{"doubleValue":77.5}', 10_000, 'value over TLS');
      await eventually(() => watcher.retained.has(`homeassistant/sensor/${vin}/battery_level/config`), 10_000, 'discovery over TLS');
      await car.close();
    } finally {
      await watcher.close();
    }
  });

  it('a wrong password keeps the output disconnected, the cars acked, and the password out of the logs', async () => {
    const files = await (await import('../helpers/test-server.js')).testPki();
    const lines: string[] = [];
    const pino = (await import('pino')).default;
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const wrong = await startTestServer({
      env: { MQTT_URL: broker.url, MQTT_CA_FILE: files.caChain, MQTT_USERNAME: credentials.username, MQTT_PASSWORD: 'not-the-password-999' },
      overrides: { logger },
    });
    try {
      await eventually(() => lines.some((line) => line.includes('mqtt_error')), 10_000, 'the refusal logged');
      expect(wrong.server.mqtt?.link.connected).to.equal(false);
      const vin = TEST_VINS[3];
      const car = await CarClient.connect(wrong.carOptions(vin));
      expect((await car.sendRecord('V', encodeVehicleData({ vin, createdAt: new Date(), data: [{ key: 'BatteryLevel', value: { doubleValue: 50 } }] }))).kind).to.equal('ack');
      await car.close();
      expect(lines.join('\n')).to.not.include('not-the-password-999');
    } finally {
      await wrong.stop();
    }
  });
});

describe('MQTT output to a broker that wants a client certificate (real mosquitto)', function () {
  this.timeout(60_000);

  it('connects with MQTT_CERT_FILE / MQTT_KEY_FILE, and a broker refuses the same server without them', async () => {
    const files = await (await import('../helpers/test-server.js')).testPki();
    const broker = await Mosquitto.start({ tls: { certFile: files.serverCert, keyFile: files.serverKey, clientCaFile: files.vehicleCaCert } });
    const vin = TEST_VINS[1];
    const withCert = await startTestServer({
      env: { MQTT_URL: broker.url, MQTT_CA_FILE: files.caChain, MQTT_CERT_FILE: files.vehicleCert(vin), MQTT_KEY_FILE: files.vehicleKey(vin) },
    });
    const withoutCert = await startTestServer({ env: { MQTT_URL: broker.url, MQTT_CA_FILE: files.caChain } });
    try {
      await eventually(() => withCert.server.mqtt?.link.connected === true, 10_000, 'connected with a client certificate');
      // The broker's refusal is the event; the link must then stay down.
      const refused = eventually(async () => (await metricValue(withoutCert, 'fleet_telemetry_mqtt_connection_events_total', { event: 'error' })) > 0, 10_000, 'the refusal counted');
      await holdsAfter(refused, () => {
        expect(withoutCert.server.mqtt?.link.connected).to.equal(false);
      }, 500);
    } finally {
      await withCert.stop();
      await withoutCert.stop();
      await broker.dispose();
    }
  });
});
