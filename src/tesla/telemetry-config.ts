import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { SIGNALS_PER_US_DOLLAR } from '../protocol/signal-price.js';
import { fieldNames } from '../protocol/proto-schema.js';
import { certificateBlocks } from '../pki/pem.js';
import { isObject, parseJson } from '../safety/json-reader.js';

const FIELD_NAMES = fieldNames();

/**
 * The car-side `fleet_telemetry_config` (tesla-protocol.md section 5): built from our settings, checked
 * against our schema before it reaches a car, and priced, because every signal is billed.
 */

export interface FieldSpec {
  interval_seconds: number;
  minimum_delta?: number;
  resend_interval_seconds?: number;
}

export type FieldMap = Record<string, FieldSpec>;

export interface TelemetryConfig {
  hostname: string;
  port: number;
  ca: string;
  fields: FieldMap;
  alert_types: string[];
  prefer_typed: true;
  delivery_policy: 'latest';
  exp?: number;
}

export class TelemetryConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'TelemetryConfigError';
  }
}

const every = (seconds: number, names: string[]): FieldMap =>
  Object.fromEntries(names.map((name) => [name, { interval_seconds: seconds }]));

const MINIMAL: FieldMap = {
  ...every(60, ['Gear', 'ChargeState']),
  ...every(300, ['Location', 'Soc', 'BatteryLevel']),
  ...every(3600, ['Odometer', 'Version']),
};

const DRIVING: FieldMap = {
  ...every(10, ['VehicleSpeed', 'Location', 'Gear', 'GpsHeading']),
  ...every(60, ['Soc', 'EstBatteryRange', 'Odometer', 'RouteLine', 'MinutesToArrival', 'DestinationName']),
  ...every(300, ['InsideTemp', 'OutsideTemp', 'Locked', 'SentryMode']),
  ...every(3600, ['Version']),
};

const CHARGING: FieldMap = {
  ...every(30, ['ChargeState', 'DetailedChargeState', 'ChargeAmps', 'ChargerVoltage', 'ACChargingPower', 'DCChargingPower']),
  ...every(60, ['Soc', 'BatteryLevel', 'TimeToFullCharge', 'FastChargerPresent', 'ChargePortDoorOpen', 'ACChargingEnergyIn', 'DCChargingEnergyIn']),
  ...every(300, ['ChargeLimitSoc', 'Location', 'EstBatteryRange']),
  ...every(3600, ['Version']),
};

const FULL: FieldMap = {
  ...CHARGING,
  ...DRIVING,
  ...every(300, ['DoorState', 'FdWindow', 'FpWindow', 'RdWindow', 'RpWindow', 'HvacPower', 'HvacLeftTemperatureRequest', 'ClimateKeeperMode']),
  ...every(600, ['TpmsPressureFl', 'TpmsPressureFr', 'TpmsPressureRl', 'TpmsPressureRr']),
  ...every(3600, ['VehicleName', 'CarType', 'Trim', 'ExteriorColor', 'SoftwareUpdateVersion']),
};

export const PRESETS: Readonly<{ minimal: FieldMap; driving: FieldMap; charging: FieldMap; full: FieldMap; [name: string]: FieldMap | undefined }> = Object.freeze({
  minimal: MINIMAL,
  driving: DRIVING,
  charging: CHARGING,
  full: FULL,
});

export const PRESET_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  minimal: 'alive check: gear, charge state, position and battery every few minutes',
  driving: 'live trips: speed, position, gear, heading every 10 s; battery, route, cabin',
  charging: 'charging sessions: state, power, energy, limits every 30-60 s',
  full: 'driving + charging + doors, windows, climate, tyres and vehicle details',
});

const KNOWN_FIELDS = new Set(FIELD_NAMES);
const FIELD_SPEC_KEYS = new Set(['interval_seconds', 'minimum_delta', 'resend_interval_seconds']);

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** Every problem of a `fields` map, one line each; empty when it is acceptable. */
export function fieldProblems(fields: unknown): string[] {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return ['fields must be an object of field name -> {"interval_seconds": N}'];
  const problems: string[] = [];
  const entries = Object.entries(fields as Record<string, unknown>);
  if (entries.length === 0) problems.push('fields is empty: a config must ask for at least one field');
  for (const [name, spec] of entries) {
    if (!KNOWN_FIELDS.has(name) || name === 'Unknown') {
      const hint = FIELD_NAMES.find((known) => known.toLowerCase() === name.toLowerCase());
      problems.push(`field "${name}" is not in the vehicle_data schema${hint ? ` (did you mean "${hint}"?)` : ''}`);
      continue;
    }
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      problems.push(`field "${name}": must be an object like {"interval_seconds": 60}`);
      continue;
    }
    const item = spec as Record<string, unknown>;
    for (const key of Object.keys(item)) {
      if (!FIELD_SPEC_KEYS.has(key)) problems.push(`field "${name}": unknown option "${key}" (allowed: ${[...FIELD_SPEC_KEYS].join(', ')})`);
    }
    if (!isPositiveInteger(item.interval_seconds)) {
      problems.push(`field "${name}": interval_seconds must be a positive integer, got ${JSON.stringify(item.interval_seconds)}`);
    }
    if (item.resend_interval_seconds !== undefined && !isPositiveInteger(item.resend_interval_seconds)) {
      problems.push(`field "${name}": resend_interval_seconds must be a positive integer, got ${JSON.stringify(item.resend_interval_seconds)}`);
    }
    if (item.minimum_delta !== undefined && !(typeof item.minimum_delta === 'number' && Number.isFinite(item.minimum_delta) && item.minimum_delta >= 0)) {
      problems.push(`field "${name}": minimum_delta must be a number >= 0, got ${JSON.stringify(item.minimum_delta)}`);
    }
  }
  return problems;
}

/** A preset by name, or the `fields` map of a JSON file (either the map itself or {"fields": {...}}). */
export function resolveFields(o: { preset?: string; fieldsFile?: string }): FieldMap {
  let fields: unknown;
  if (o.fieldsFile) {
    let text: string;
    try {
      text = readFileSync(o.fieldsFile, 'utf8');
    } catch (error) {
      throw new TelemetryConfigError([`cannot read the fields file ${o.fieldsFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
    }
    try {
      fields = parseJson(text);
    } catch (error) {
      throw new TelemetryConfigError([`the fields file ${o.fieldsFile} is not valid JSON: ${(error as Error).message}`]);
    }
    if (typeof fields === 'object' && fields !== null && 'fields' in fields) fields = (fields as { fields: unknown }).fields;
  } else {
    const name = o.preset ?? 'driving';
    fields = PRESETS[name];
    if (fields === undefined) {
      throw new TelemetryConfigError([`unknown preset "${name}" (choose ${Object.keys(PRESETS).join(', ')}, or give a fields JSON file)`]);
    }
  }
  const problems = fieldProblems(fields);
  if (problems.length > 0) throw new TelemetryConfigError(problems);
  return structuredClone(fields as FieldMap);
}


/** The certificates of a PEM chain file, nothing else (no keys, no comments), one newline after each. */
export function readCaChain(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TelemetryConfigError([`cannot read the ca chain ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) throw new TelemetryConfigError([`no PEM certificate in the ca chain ${file} (TLS_CA_CHAIN_FILE)`]);
  return blocks.join('');
}

export interface BuildInput {
  hostname: string;
  port: number;
  caPem: string;
  fields: FieldMap;
  alertTypes: string[];
  /** Epoch seconds; omitted when undefined. */
  exp?: number;
}

export function buildTelemetryConfig(input: BuildInput): TelemetryConfig {
  const problems: string[] = [];
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) {
    problems.push(`port must be an integer from 1 to 65535 (cars connect to it), got ${JSON.stringify(input.port)}`);
  }
  if (input.hostname === '' || /[/:\s]/.test(input.hostname)) problems.push(`hostname must be a bare DNS name, got ${JSON.stringify(input.hostname)}`);
  if (!/-----BEGIN CERTIFICATE-----/.test(input.caPem)) problems.push('ca must hold the PEM certificate chain cars verify the server with');
  problems.push(...fieldProblems(input.fields));
  for (const type of input.alertTypes) {
    if (!/^[a-z_]+$/.test(type)) problems.push(`alert type ${JSON.stringify(type)} is not a lower-case word such as "service"`);
  }
  if (input.exp !== undefined && !(Number.isInteger(input.exp) && input.exp > 0)) problems.push('exp must be epoch seconds');
  if (problems.length > 0) throw new TelemetryConfigError(problems);
  return {
    hostname: input.hostname,
    port: input.port,
    ca: input.caPem,
    fields: input.fields,
    alert_types: input.alertTypes,
    prefer_typed: true,
    delivery_policy: 'latest',
    ...(input.exp !== undefined ? { exp: input.exp } : {}),
  };
}

export function parseAlertTypes(text: string): string[] {
  return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

export interface SignalEstimate {
  /** Upper bound: each field sent once per interval. Cars send a field only when it changed, so real use is lower. */
  signalsPerHour: number;
  dollarsPerHour: number;
  dollarsPer30Days: number;
}

export function estimateSignals(fields: FieldMap): SignalEstimate {
  const signalsPerHour = Object.values(fields).reduce((sum, spec) => sum + 3600 / spec.interval_seconds, 0);
  const dollarsPerHour = signalsPerHour / SIGNALS_PER_US_DOLLAR;
  return { signalsPerHour, dollarsPerHour, dollarsPer30Days: dollarsPerHour * 24 * 30 };
}

/**
 * How the car's current config differs from the one we would push, in words; empty when it matches.
 * `exp` is left out here: expiry is judged by `expiresSoon`.
 */
export function configDifferences(desired: TelemetryConfig, current: Record<string, unknown> | null): string[] {
  if (current === null) return ['the car has no telemetry config from this app'];
  const differences: string[] = [];
  if (current.hostname !== desired.hostname) differences.push(`hostname is ${JSON.stringify(current.hostname)}, want ${JSON.stringify(desired.hostname)}`);
  if (Number(current.port) !== desired.port || typeof current.port !== 'number') {
    differences.push(`port is ${JSON.stringify(current.port)}, want ${desired.port}`);
  }
  const normalisePem = (value: unknown): string => (typeof value === 'string' ? value.replace(/\s+/g, '') : '');
  if (normalisePem(current.ca) !== normalisePem(desired.ca)) differences.push('ca chain differs');
  if (!isDeepStrictEqual(normaliseFields(current.fields), normaliseFields(desired.fields))) differences.push('fields differ');
  const alerts = Array.isArray(current.alert_types) ? [...(current.alert_types as unknown[])].map(String).sort() : [];
  if (!isDeepStrictEqual(alerts, [...desired.alert_types].sort())) differences.push('alert_types differ');
  if (current.prefer_typed !== true) differences.push('prefer_typed is not true');
  if (current.delivery_policy !== desired.delivery_policy) differences.push(`delivery_policy is ${JSON.stringify(current.delivery_policy)}, want "latest"`);
  return differences;
}

function normaliseFields(value: unknown): Record<string, Record<string, number>> {
  if (typeof value !== 'object' || value === null) return {};
  const out: Record<string, Record<string, number>> = {};
  for (const name of Object.keys(value).sort()) {
    const found: unknown = (value as Record<string, unknown>)[name];
    const spec = isObject(found) ? found : {};
    const clean: Record<string, number> = {};
    for (const key of [...FIELD_SPEC_KEYS].sort()) {
      const item = spec[key];
      // Tesla may echo unset options as 0.
      if (typeof item === 'number' && item !== 0) clean[key] = item;
    }
    out[name] = clean;
  }
  return out;
}

/**
 * Whether a config with this `exp` should be replaced now: within a quarter of the lifetime we would
 * give it (or a day, when we give none), so a car never drops its config while we are running.
 */
export function expiresSoon(exp: unknown, lifetimeSeconds: number, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  if (typeof exp !== 'number' || exp <= 0) return false;
  const margin = lifetimeSeconds > 0 ? lifetimeSeconds / 4 : 86_400;
  return exp - nowSeconds < margin;
}
