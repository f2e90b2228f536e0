/**
 * What each telemetry field becomes in Home Assistant. Units are the ones the car sends (Tesla's
 * telemetry uses miles and mph for distance and speed, °C, bar, kW, kWh, V, A, hours): every one of them
 * is a unit Home Assistant accepts for the device class, so Home Assistant converts to the user's unit
 * system itself and no value is rescaled here (docs/HOME-ASSISTANT.md lists them).
 *
 * State topics carry the canonical Value JSON (`{"doubleValue":80.5}`, or `{"stringValue":"80.5"}` from
 * a car without prefer_typed, or `{"invalid":true}`). Templates therefore take the oneof's only member,
 * whatever its name, and render `None` (Home Assistant's "unknown") for an invalid reading.
 */

export type HaComponent = 'sensor' | 'binary_sensor' | 'device_tracker';

export interface HaEntity {
  component: HaComponent;
  /** Unique per car; becomes the discovery topic's object id and part of unique_id. */
  objectId: string;
  name: string;
  /** The telemetry field whose state topic feeds the entity (a derived topic for derived values). */
  field: string;
  deviceClass?: string;
  unit?: string;
  stateClass?: 'measurement' | 'total' | 'total_increasing';
  valueTemplate?: string;
  /** device_class enum: every state the template can render (besides None). */
  options?: string[];
  entityCategory?: 'diagnostic';
  icon?: string;
  suggestedDisplayPrecision?: number;
}

/** The member of the Value oneof, whichever it is. */
const MEMBER = '(value_json.values() | first)';
const INVALID = 'value_json.invalid is defined';

export function numberTemplate(): string {
  return `{{ none if ${INVALID} else (${MEMBER} | float(none)) }}`;
}

/** Enum values arrive as `ShiftStateD`; older configs may send the bare word. */
export function enumTemplate(prefix: string, options: readonly string[]): string {
  return `{% set s = none if ${INVALID} else (${MEMBER} | string | replace('${prefix}', '')) %}{{ s if s in ${JSON.stringify(options)} else none }}`;
}

export function booleanTemplate(onWhenTrue: boolean): string {
  const [whenTrue, whenFalse] = onWhenTrue ? ['ON', 'OFF'] : ['OFF', 'ON'];
  return `{% set v = none if ${INVALID} else (${MEMBER} | string | lower) %}{{ none if v is none else ('${whenTrue}' if v in ['true', '1'] else '${whenFalse}') }}`;
}

/** One door or trunk of the `Doors` message. */
export function doorTemplate(door: string): string {
  return `{{ none if ${INVALID} or value_json.doorValue is not defined else ('ON' if value_json.doorValue.${door} else 'OFF') }}`;
}

/** A window is open unless it says Closed (WindowStateClosed, or Closed from an untyped config). */
export function windowTemplate(): string {
  return `{% set s = none if ${INVALID} else (${MEMBER} | string) %}{{ none if s is none or 'Unknown' in s else ('OFF' if 'Closed' in s else 'ON') }}`;
}

export function textTemplate(): string {
  return `{{ none if ${INVALID} else ${MEMBER} }}`;
}

const CHARGE_STATES = ['Unknown', 'Disconnected', 'NoPower', 'Starting', 'Charging', 'Complete', 'Stopped'];
const GEARS = ['Unknown', 'Invalid', 'P', 'R', 'N', 'D', 'SNA'];
const SENTRY_STATES = ['Unknown', 'Off', 'Idle', 'Armed', 'Aware', 'Panic', 'Quiet'];

/** Battery power is not a telemetry field: it is PackVoltage x PackCurrent, published under this name. */
export const DERIVED_BATTERY_POWER = 'BatteryPower';

function numeric(
  objectId: string,
  name: string,
  field: string,
  deviceClass: string | undefined,
  unit: string | undefined,
  stateClass: HaEntity['stateClass'],
  extra: Partial<HaEntity> = {},
): HaEntity {
  return {
    component: 'sensor',
    objectId,
    name,
    field,
    ...(deviceClass ? { deviceClass } : {}),
    ...(unit ? { unit } : {}),
    ...(stateClass ? { stateClass } : {}),
    valueTemplate: numberTemplate(),
    ...extra,
  };
}

function binary(objectId: string, name: string, field: string, deviceClass: string, valueTemplate: string, extra: Partial<HaEntity> = {}): HaEntity {
  return { component: 'binary_sensor', objectId, name, field, deviceClass, valueTemplate, ...extra };
}

export const HA_ENTITIES: readonly HaEntity[] = Object.freeze([
  numeric('battery_level', 'Battery level', 'BatteryLevel', 'battery', '%', 'measurement', { suggestedDisplayPrecision: 0 }),
  numeric('state_of_charge', 'State of charge', 'Soc', 'battery', '%', 'measurement', { suggestedDisplayPrecision: 1, entityCategory: 'diagnostic' }),
  numeric('range', 'Range', 'EstBatteryRange', 'distance', 'mi', 'measurement', { suggestedDisplayPrecision: 0 }),
  numeric('rated_range', 'Rated range', 'RatedRange', 'distance', 'mi', 'measurement', { suggestedDisplayPrecision: 0 }),
  numeric('speed', 'Speed', 'VehicleSpeed', 'speed', 'mph', 'measurement', { suggestedDisplayPrecision: 0 }),
  numeric('odometer', 'Odometer', 'Odometer', 'distance', 'mi', 'total_increasing', { suggestedDisplayPrecision: 0 }),
  numeric('battery_power', 'Battery power', DERIVED_BATTERY_POWER, 'power', 'kW', 'measurement', { suggestedDisplayPrecision: 1 }),
  numeric('pack_voltage', 'Pack voltage', 'PackVoltage', 'voltage', 'V', 'measurement', { entityCategory: 'diagnostic' }),
  numeric('pack_current', 'Pack current', 'PackCurrent', 'current', 'A', 'measurement', { entityCategory: 'diagnostic' }),
  numeric('energy_remaining', 'Energy remaining', 'EnergyRemaining', 'energy_storage', 'kWh', 'measurement'),
  {
    component: 'sensor',
    objectId: 'charging_state',
    name: 'Charging state',
    field: 'DetailedChargeState',
    deviceClass: 'enum',
    options: CHARGE_STATES,
    valueTemplate: enumTemplate('DetailedChargeState', CHARGE_STATES),
    icon: 'mdi:ev-station',
  },
  numeric('ac_charger_power', 'Charger power (AC)', 'ACChargingPower', 'power', 'kW', 'measurement'),
  numeric('dc_charger_power', 'Charger power (DC)', 'DCChargingPower', 'power', 'kW', 'measurement'),
  numeric('charger_voltage', 'Charger voltage', 'ChargerVoltage', 'voltage', 'V', 'measurement'),
  numeric('charger_current', 'Charger current', 'ChargeAmps', 'current', 'A', 'measurement'),
  numeric('charge_limit', 'Charge limit', 'ChargeLimitSoc', undefined, '%', 'measurement', { icon: 'mdi:battery-charging-80' }),
  numeric('time_to_full_charge', 'Time to full charge', 'TimeToFullCharge', 'duration', 'h', 'measurement', { suggestedDisplayPrecision: 2 }),
  numeric('energy_added_ac', 'Energy added (AC)', 'ACChargingEnergyIn', 'energy', 'kWh', 'total_increasing'),
  numeric('energy_added_dc', 'Energy added (DC)', 'DCChargingEnergyIn', 'energy', 'kWh', 'total_increasing'),
  numeric('inside_temperature', 'Inside temperature', 'InsideTemp', 'temperature', '°C', 'measurement', { suggestedDisplayPrecision: 1 }),
  numeric('outside_temperature', 'Outside temperature', 'OutsideTemp', 'temperature', '°C', 'measurement', { suggestedDisplayPrecision: 1 }),
  numeric('tire_pressure_front_left', 'Tire pressure front left', 'TpmsPressureFl', 'pressure', 'bar', 'measurement', { suggestedDisplayPrecision: 2 }),
  numeric('tire_pressure_front_right', 'Tire pressure front right', 'TpmsPressureFr', 'pressure', 'bar', 'measurement', { suggestedDisplayPrecision: 2 }),
  numeric('tire_pressure_rear_left', 'Tire pressure rear left', 'TpmsPressureRl', 'pressure', 'bar', 'measurement', { suggestedDisplayPrecision: 2 }),
  numeric('tire_pressure_rear_right', 'Tire pressure rear right', 'TpmsPressureRr', 'pressure', 'bar', 'measurement', { suggestedDisplayPrecision: 2 }),
  // device_class lock: on means unlocked.
  binary('locked', 'Lock', 'Locked', 'lock', booleanTemplate(false)),
  binary('door_driver_front', 'Door driver front', 'DoorState', 'door', doorTemplate('DriverFront')),
  binary('door_driver_rear', 'Door driver rear', 'DoorState', 'door', doorTemplate('DriverRear')),
  binary('door_passenger_front', 'Door passenger front', 'DoorState', 'door', doorTemplate('PassengerFront')),
  binary('door_passenger_rear', 'Door passenger rear', 'DoorState', 'door', doorTemplate('PassengerRear')),
  binary('frunk', 'Frunk', 'DoorState', 'opening', doorTemplate('TrunkFront')),
  binary('trunk', 'Trunk', 'DoorState', 'opening', doorTemplate('TrunkRear')),
  binary('window_driver_front', 'Window driver front', 'FdWindow', 'window', windowTemplate()),
  binary('window_passenger_front', 'Window passenger front', 'FpWindow', 'window', windowTemplate()),
  binary('window_driver_rear', 'Window driver rear', 'RdWindow', 'window', windowTemplate()),
  binary('window_passenger_rear', 'Window passenger rear', 'RpWindow', 'window', windowTemplate()),
  binary('charge_port_door', 'Charge port door', 'ChargePortDoorOpen', 'opening', booleanTemplate(true)),
  {
    component: 'sensor',
    objectId: 'gear',
    name: 'Gear',
    field: 'Gear',
    deviceClass: 'enum',
    options: GEARS,
    valueTemplate: enumTemplate('ShiftState', GEARS),
    icon: 'mdi:car-shift-pattern',
  },
  {
    component: 'sensor',
    objectId: 'sentry_mode',
    name: 'Sentry mode',
    field: 'SentryMode',
    deviceClass: 'enum',
    options: SENTRY_STATES,
    valueTemplate: enumTemplate('SentryModeState', SENTRY_STATES),
    icon: 'mdi:cctv',
  },
  {
    component: 'sensor',
    objectId: 'software_version',
    name: 'Software version',
    field: 'Version',
    valueTemplate: textTemplate(),
    entityCategory: 'diagnostic',
    icon: 'mdi:update',
  },
  { component: 'device_tracker', objectId: 'location', name: 'Location', field: 'Location', icon: 'mdi:car' },
  numeric('heading', 'Heading', 'GpsHeading', undefined, '°', 'measurement', { icon: 'mdi:compass', entityCategory: 'diagnostic', suggestedDisplayPrecision: 0 }),
]);

/** Entities by the field that feeds them. */
export const ENTITIES_BY_FIELD: ReadonlyMap<string, readonly HaEntity[]> = (() => {
  const map = new Map<string, HaEntity[]>();
  for (const entity of HA_ENTITIES) {
    const list = map.get(entity.field) ?? [];
    list.push(entity);
    map.set(entity.field, list);
  }
  return map;
})();

/** Fields whose arrival means the battery power can be derived. */
export const BATTERY_POWER_INPUTS = ['PackVoltage', 'PackCurrent'] as const;
