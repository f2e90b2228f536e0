import { expect } from 'chai';
import { discoveryMessage } from '../../src/mqtt/ha-discovery.js';
import { HA_ENTITIES, type HaEntity } from '../../src/mqtt/ha-entities.js';
import { MqttTopics } from '../../src/mqtt/mqtt-topics.js';
import { modelFromVin } from '../../src/mqtt/vin-model.js';

// Written from Home Assistant's documentation: the MQTT integration's discovery section, the MQTT
// sensor, binary sensor and device tracker pages (their configuration variables), and the sensor and
// binary sensor pages (device classes and the units each accepts). Only what those pages say is
// checked; a payload that breaks any of it would be refused or mis-shown by Home Assistant.

/** Sensor device classes and the units the sensor page lists for each (null = unitless or free). */
const SENSOR_UNITS: Record<string, readonly string[] | null> = {
  absolute_humidity: ['g/m³', 'mg/m³'],
  apparent_power: ['mVA', 'VA'],
  aqi: null,
  area: ['m²', 'cm²', 'km²', 'mm²', 'in²', 'ft²', 'yd²', 'mi²', 'ac', 'ha'],
  atmospheric_pressure: ['cbar', 'bar', 'hPa', 'mmHg', 'inHg', 'kPa', 'mbar', 'Pa', 'psi'],
  battery: ['%'],
  blood_glucose_concentration: ['mg/dL', 'mmol/L'],
  carbon_dioxide: ['ppm'],
  carbon_monoxide: ['ppm'],
  current: ['A', 'mA'],
  data_rate: ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'B/s', 'kB/s', 'MB/s', 'GB/s', 'KiB/s', 'MiB/s', 'GiB/s'],
  data_size: ['bit', 'kbit', 'Mbit', 'Gbit', 'B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'],
  date: null,
  distance: ['km', 'm', 'cm', 'mm', 'mi', 'nmi', 'yd', 'in'],
  duration: ['d', 'h', 'min', 's', 'ms', 'µs'],
  energy: ['J', 'kJ', 'MJ', 'GJ', 'mWh', 'Wh', 'kWh', 'MWh', 'GWh', 'TWh', 'cal', 'kcal', 'Mcal', 'Gcal'],
  energy_distance: ['kWh/100km', 'Wh/km', 'mi/kWh', 'km/kWh'],
  energy_storage: ['J', 'kJ', 'MJ', 'GJ', 'mWh', 'Wh', 'kWh', 'MWh', 'GWh', 'TWh', 'cal', 'kcal', 'Mcal', 'Gcal'],
  enum: null,
  frequency: ['Hz', 'kHz', 'MHz', 'GHz'],
  gas: ['L', 'm³', 'ft³', 'CCF'],
  humidity: ['%'],
  illuminance: ['lx'],
  irradiance: ['W/m²', 'BTU/(h⋅ft²)'],
  moisture: ['%'],
  monetary: null,
  nitrogen_dioxide: ['µg/m³'],
  nitrogen_monoxide: ['µg/m³'],
  nitrous_oxide: ['µg/m³'],
  ozone: ['µg/m³'],
  ph: null,
  pm1: ['µg/m³'],
  pm25: ['µg/m³'],
  pm10: ['µg/m³'],
  power_factor: ['%'],
  power: ['mW', 'W', 'kW', 'MW', 'GW', 'TW'],
  precipitation: ['cm', 'in', 'mm'],
  precipitation_intensity: ['in/d', 'in/h', 'mm/d', 'mm/h'],
  pressure: ['Pa', 'kPa', 'hPa', 'bar', 'cbar', 'mbar', 'mmHg', 'inHg', 'psi'],
  reactive_energy: ['varh', 'kvarh'],
  reactive_power: ['var', 'kvar'],
  signal_strength: ['dB', 'dBm'],
  sound_pressure: ['dB', 'dBA'],
  speed: ['ft/s', 'in/d', 'in/h', 'in/s', 'km/h', 'kn', 'm/s', 'mph', 'mm/d', 'mm/s'],
  sulphur_dioxide: ['µg/m³'],
  temperature: ['°C', '°F', 'K'],
  timestamp: null,
  volatile_organic_compounds: ['µg/m³', 'mg/m³'],
  volatile_organic_compounds_parts: ['ppm', 'ppb'],
  voltage: ['V', 'mV', 'µV', 'kV', 'MV'],
  volume: ['L', 'mL', 'gal', 'fl. oz.', 'm³', 'ft³', 'CCF'],
  volume_flow_rate: ['m³/h', 'm³/s', 'ft³/min', 'L/h', 'L/min', 'L/s', 'gal/min', 'mL/s'],
  volume_storage: ['L', 'mL', 'gal', 'fl. oz.', 'm³', 'ft³', 'CCF'],
  water: ['L', 'gal', 'm³', 'ft³', 'CCF'],
  weight: ['kg', 'g', 'mg', 'µg', 'oz', 'lb', 'st'],
  wind_direction: ['°'],
  wind_speed: ['Beaufort', 'ft/s', 'km/h', 'kn', 'm/s', 'mph'],
};

const BINARY_SENSOR_CLASSES = [
  'battery', 'battery_charging', 'carbon_monoxide', 'cold', 'connectivity', 'door', 'garage_door', 'gas', 'heat', 'light', 'lock',
  'moisture', 'motion', 'moving', 'occupancy', 'opening', 'plug', 'power', 'presence', 'problem', 'running', 'safety', 'smoke',
  'sound', 'tamper', 'update', 'vibration', 'window',
];

const STATE_CLASSES = ['measurement', 'measurement_angle', 'total', 'total_increasing'];
/** Accumulating quantities: Home Assistant's statistics want them as totals, never measurements. */
const TOTAL_ONLY = new Set(['energy', 'gas', 'water', 'monetary']);

/** Configuration variables documented for each MQTT platform (full names; abbreviations are not used). */
const COMMON_KEYS = [
  'availability', 'availability_mode', 'availability_template', 'availability_topic', 'device', 'default_entity_id', 'enabled_by_default',
  'encoding', 'entity_category', 'entity_picture', 'icon', 'json_attributes_template', 'json_attributes_topic', 'name', 'object_id',
  'origin', 'payload_available', 'payload_not_available', 'qos', 'unique_id', 'value_template', 'platform',
];
const KEYS: Record<string, Set<string>> = {
  sensor: new Set([...COMMON_KEYS, 'device_class', 'expire_after', 'force_update', 'last_reset_value_template', 'options', 'state_class', 'state_topic', 'suggested_display_precision', 'unit_of_measurement']),
  binary_sensor: new Set([...COMMON_KEYS, 'device_class', 'expire_after', 'force_update', 'off_delay', 'payload_off', 'payload_on', 'state_topic']),
  device_tracker: new Set([...COMMON_KEYS, 'payload_home', 'payload_not_home', 'payload_reset', 'source_type', 'state_topic']),
};
const DEVICE_KEYS = new Set(['configuration_url', 'connections', 'hw_version', 'identifiers', 'manufacturer', 'model', 'model_id', 'name', 'serial_number', 'suggested_area', 'sw_version', 'via_device']);
const ORIGIN_KEYS = new Set(['name', 'sw_version', 'support_url']);
const ID_PATTERN = /^[a-zA-Z0-9_-]+$/;

/** Every rule above, for one discovery message; returns what is wrong (empty when valid). */
function problemsOf(topic: string, payload: string, discoveryPrefix: string): string[] {
  const problems: string[] = [];
  const parts = topic.split('/');
  const prefixParts = discoveryPrefix.split('/').length;
  const [component = '', ...ids] = parts.slice(prefixParts);
  if (!topic.startsWith(`${discoveryPrefix}/`)) problems.push('topic not under the discovery prefix');
  if (ids.pop() !== 'config') problems.push('topic does not end in /config');
  if (ids.length < 1 || ids.length > 2 || !ids.every((id) => ID_PATTERN.test(id))) problems.push(`node/object ids ${ids.join('/')} are not [a-zA-Z0-9_-]+`);
  const allowed = KEYS[component];
  if (allowed === undefined) return [...problems, `unknown component ${component}`];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
  let config: Record<string, any>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
    config = JSON.parse(payload) as Record<string, any>;
  } catch {
    return [...problems, 'payload is not JSON'];
  }
  for (const key of Object.keys(config)) if (!allowed.has(key)) problems.push(`key ${key} is not documented for ${component}`);
  if (component === 'sensor' || component === 'binary_sensor') {
    if (typeof config.state_topic !== 'string' || config.state_topic === '') problems.push('state_topic is required');
  }
  if (component === 'device_tracker') {
    if (config.state_topic === undefined && config.json_attributes_topic === undefined) problems.push('state_topic or json_attributes_topic is required');
    if (config.source_type !== undefined && !['gps', 'router', 'bluetooth', 'bluetooth_le'].includes(config.source_type)) problems.push('bad source_type');
  }
  if (config.availability !== undefined && config.availability_topic !== undefined) problems.push('availability and availability_topic must not be used together');
  if (config.availability !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
    if (!Array.isArray(config.availability) || config.availability.some((a: any) => typeof a?.topic !== 'string')) problems.push('availability entries need a topic');
    if (config.availability_mode !== undefined && !['all', 'any', 'latest'].includes(config.availability_mode)) problems.push('bad availability_mode');
  }
  if (config.device !== undefined) {
    const device = config.device as Record<string, unknown>;
    if (device.identifiers === undefined && device.connections === undefined) problems.push('device needs identifiers or connections');
    for (const key of Object.keys(device)) if (!DEVICE_KEYS.has(key)) problems.push(`device key ${key} is not documented`);
    // Device registry entries are made only for entities with a unique_id.
    if (typeof config.unique_id !== 'string' || config.unique_id === '') problems.push('a device needs the entity to have a unique_id');
  }
  if (config.origin !== undefined) {
    if (typeof config.origin.name !== 'string') problems.push('origin needs a name');
    for (const key of Object.keys(config.origin)) if (!ORIGIN_KEYS.has(key)) problems.push(`origin key ${key} is not documented`);
  }
  if (config.qos !== undefined && ![0, 1, 2].includes(config.qos)) problems.push('qos must be 0, 1 or 2');
  if (config.entity_category !== undefined && !['config', 'diagnostic'].includes(config.entity_category)) problems.push('bad entity_category');
  if (component === 'binary_sensor' && config.device_class !== undefined && !BINARY_SENSOR_CLASSES.includes(config.device_class)) {
    problems.push(`binary_sensor device_class ${config.device_class} is not documented`);
  }
  if (component === 'sensor') {
    const deviceClass = config.device_class as string | undefined;
    const unit = config.unit_of_measurement as string | undefined;
    if (config.state_class !== undefined && !STATE_CLASSES.includes(config.state_class)) problems.push(`bad state_class ${config.state_class}`);
    if (deviceClass !== undefined) {
      if (!(deviceClass in SENSOR_UNITS)) problems.push(`sensor device_class ${deviceClass} is not documented`);
      const units = SENSOR_UNITS[deviceClass];
      if (units && (unit === undefined || !units.includes(unit))) problems.push(`${deviceClass} does not accept unit ${unit}`);
      if (TOTAL_ONLY.has(deviceClass) && !['total', 'total_increasing'].includes(config.state_class)) problems.push(`${deviceClass} needs state_class total or total_increasing`);
    }
    if (deviceClass === 'enum') {
      if (!Array.isArray(config.options) || config.options.length === 0) problems.push('enum needs options');
      if (unit !== undefined || config.state_class !== undefined) problems.push('enum takes no unit or state_class');
    } else if (config.options !== undefined) {
      problems.push('options only with device_class enum');
    }
    if (config.suggested_display_precision !== undefined && !Number.isInteger(config.suggested_display_precision)) problems.push('bad suggested_display_precision');
  }
  return problems;
}

describe('Home Assistant discovery payloads against the documented MQTT discovery schema', () => {
  const vin = '5YJ3E7EB0LF000001';
  const topics = new MqttTopics('tesla', 'homeassistant');
  const messages = HA_ENTITIES.map((entity) => ({ entity, ...discoveryMessage(entity, vin, { topics, serverVersion: '1.2.3' }) }));

  it('every entity of the catalogue is valid', () => {
    for (const { entity, topic, payload } of messages) expect(problemsOf(topic, payload, 'homeassistant'), entity.objectId).to.deep.equal([]);
  });

  it('the checker refuses what Home Assistant refuses', () => {
    const battery = messages.find((m) => m.entity.objectId === 'battery_level') as (typeof messages)[number];
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
    const broken = (change: (config: Record<string, any>) => void, topic = battery.topic): string[] => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
      const config = JSON.parse(battery.payload) as Record<string, any>;
      change(config);
      return problemsOf(topic, JSON.stringify(config), 'homeassistant');
    };
    expect(broken((c) => (c.unit_of_measurement = 'percent'))).to.include('battery does not accept unit percent');
    expect(broken((c) => delete c.state_topic)).to.include('state_topic is required');
    expect(broken((c) => (c.availability_topic = 'x'))).to.include('availability and availability_topic must not be used together');
    expect(broken((c) => (c.device = { name: 'x' }))).to.include('device needs identifiers or connections');
    expect(broken((c) => (c.device_class = 'soc'))).to.include('sensor device_class soc is not documented');
    expect(broken((c) => (c.device_class = 'energy'))).to.include('energy needs state_class total or total_increasing');
    expect(broken((c) => (c.stat_t = 'abbreviated'))).to.include('key stat_t is not documented for sensor');
    expect(broken(() => undefined, 'homeassistant/sensor/5YJ3.E7/battery/config')).to.have.length(1);
  });

  it('one device per car: the same identifiers, name, manufacturer and model in every config', () => {
    const devices = new Set(messages.map((m) => JSON.stringify((JSON.parse(m.payload) as { device: unknown }).device)));
    expect(devices.size).to.equal(1);
    expect(JSON.parse([...devices][0]!)).to.deep.include({ identifiers: [`tesla_${vin}`], manufacturer: 'Tesla', model: 'Model 3' });
    const uniqueIds = messages.map((m) => (JSON.parse(m.payload) as { unique_id: string }).unique_id);
    expect(new Set(uniqueIds).size).to.equal(uniqueIds.length);
  });

  it('covers every entity the issue lists', () => {
    const fields = new Set(HA_ENTITIES.map((e: HaEntity) => e.field));
    for (const field of [
      'BatteryLevel', 'EstBatteryRange', 'VehicleSpeed', 'Odometer', 'DetailedChargeState', 'ACChargingPower', 'ChargerVoltage', 'ChargeAmps',
      'ChargeLimitSoc', 'TimeToFullCharge', 'ACChargingEnergyIn', 'InsideTemp', 'OutsideTemp', 'TpmsPressureFl', 'TpmsPressureFr',
      'TpmsPressureRl', 'TpmsPressureRr', 'Locked', 'DoorState', 'FdWindow', 'FpWindow', 'RdWindow', 'RpWindow', 'Gear', 'SentryMode',
      'Version', 'Location',
    ]) {
      expect(fields.has(field), field).to.equal(true);
    }
    const tracker = messages.find((m) => m.entity.component === 'device_tracker');
    expect(JSON.parse(tracker?.payload as string)).to.include({ json_attributes_topic: `tesla/${vin}/location`, source_type: 'gps' });
  });

  it('reads the model from the VIN', () => {
    expect(modelFromVin('5YJ3E7EB0LF000001')).to.equal('Model 3');
    expect(modelFromVin('5YJYGDEE1MF000004')).to.equal('Model Y');
    expect(modelFromVin('5YJSA1E26MF000005')).to.equal('Model S');
    expect(modelFromVin('7SAXCBE60PF000006')).to.equal('Model X');
    expect(modelFromVin('7G2CEHED1RA000007')).to.equal('Cybertruck');
    expect(modelFromVin('not-a-vin')).to.equal('Tesla vehicle');
  });
});
