// Payload encoding: plain objects -> protobuf bytes of a topic's message, checked against the schema
// at run time. For the car simulator, tests and bench, and the server-made connectivity record.
import protobuf from 'protobufjs';
import { connectivityJson } from './payload.js';
import { protoSchema } from './proto-schema.js';
import { isObject } from '../safety/json-reader.js';


export type EnumInput = string | number;
/** A Date, or raw Timestamp parts (to build odd values, e.g. milliseconds in `seconds`). */
export type TimestampInput = Date | { seconds: number | bigint | string; nanos?: number };

/**
 * One member of telemetry.vehicle_data.Value, by its JSON name (proto names work too), e.g.
 * `{doubleValue: 12.3}`, `{stringValue: '80'}`, `{longValue: 123n}`, `{invalid: true}`,
 * `{locationValue: {latitude, longitude}}`, `{doorValue: {DriverFront: true}}`,
 * `{timeValue: {hour, minute, second}}`, `{shiftStateValue: 'ShiftStateD'}`. Enum members take a value
 * name or a number (numbers the schema does not know are allowed, to imitate newer firmware).
 * Checked at run time: an unknown member, a wrong JS type or two members throw TypeError/RangeError.
 */
export type ValueInput = { readonly [member: string]: unknown };

export interface DatumInput {
  /** Field enum name or number (numbers above the schema's last one are allowed). */
  key: string | number;
  /** Omit for a datum without a value. */
  value?: ValueInput | null;
}

export interface VehicleDataInput {
  vin: string;
  createdAt?: TimestampInput;
  isResend?: boolean;
  data: DatumInput[];
}

export interface VehicleAlertInput {
  name: string;
  audiences?: EnumInput[];
  startedAt?: TimestampInput;
  endedAt?: TimestampInput;
}

export interface VehicleAlertsInput {
  vin?: string;
  createdAt?: TimestampInput;
  alerts: VehicleAlertInput[];
}

export interface VehicleErrorInput {
  name: string;
  body?: string;
  tags?: Record<string, string>;
  createdAt?: TimestampInput;
}

export interface VehicleErrorsInput {
  vin?: string;
  createdAt?: TimestampInput;
  errors: VehicleErrorInput[];
}

export interface ConnectivityInput {
  vin: string;
  connectionId: string;
  status: 'CONNECTED' | 'DISCONNECTED';
  createdAt: Date;
  networkInterface?: string;
}

const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

/** A type's fields by JSON name, proto name and protobufjs property name. */
function fieldsOf(type: protobuf.Type): Map<string, protobuf.Field> {
  let idx = fieldIndex.get(type);
  if (!idx) {
    idx = new Map();
    for (const f of type.fieldsArray) {
      const protoName = f.protoName ?? f.name;
      idx.set(f.name, f).set(protoName, f).set(f.jsonName ?? protobuf.util.jsonName(protoName), f);
    }
    fieldIndex.set(type, idx);
  }
  return idx;
}

const INT32_LIMITS: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};

function toLong(v: unknown, unsigned: boolean, path: string): unknown {
  let text: string;
  if (typeof v === 'bigint') text = v.toString();
  else if (typeof v === 'number' && Number.isSafeInteger(v)) text = String(v);
  else if (typeof v === 'string' && /^-?\d+$/.test(v)) text = v;
  else throw new TypeError(`${path}: integer (number, bigint or decimal string) expected`);
  // protobufjs represents 64-bit values as Long when long.js is installed (it is a dependency of v8).
  const Long = protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): unknown } | undefined;
  return Long ? Long.fromString(text, unsigned) : Number(text);
}

function toTimestamp(v: unknown, path: string): { seconds: unknown; nanos: number } {
  if (v instanceof Date) {
    const ms = v.getTime();
    if (Number.isNaN(ms)) throw new RangeError(`${path}: invalid Date`);
    const seconds = Math.floor(ms / 1000);
    return { seconds: toLong(seconds, false, path), nanos: (ms - seconds * 1000) * 1_000_000 };
  }
  if (v !== null && typeof v === 'object' && 'seconds' in v) {
    const nanos = (v as { nanos?: unknown }).nanos ?? 0;
    if (typeof nanos !== 'number' || !Number.isInteger(nanos)) throw new TypeError(`${path}.nanos: integer expected`);
    return { seconds: toLong((v as { seconds: unknown }).seconds, false, `${path}.seconds`), nanos };
  }
  throw new TypeError(`${path}: Date or {seconds, nanos} expected`);
}

function toSingle(field: protobuf.Field, type: string, v: unknown, path: string): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string') {
      const n = rt.values[v];
      if (n === undefined) throw new RangeError(`${path}: ${rt.name} has no value ${v}`);
      return n;
    }
    if (typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647) return v;
    throw new TypeError(`${path}: ${rt.name} name or int32 expected`);
  }
  if (rt instanceof protobuf.Type) {
    if (rt.fullName === '.google.protobuf.Timestamp') return toTimestamp(v, path);
    return toMessage(rt, v, path);
  }
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw new TypeError(`${path}: string expected`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new TypeError(`${path}: boolean expected`);
      return v;
    case 'double':
    case 'float':
      if (typeof v !== 'number') throw new TypeError(`${path}: number expected`);
      return v;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw new TypeError(`${path}: Uint8Array expected`);
      return v;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return toLong(v, false, path);
    case 'uint64':
    case 'fixed64':
      return toLong(v, true, path);
    default: {
      const range = INT32_LIMITS[type];
      if (!range) throw new TypeError(`${path}: unsupported field type ${type}`);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw new TypeError(`${path}: ${type} expected`);
      }
      return v;
    }
  }
}

/** Checks a plain object against a message type and gives protobufjs's property layout. */
function toMessage(type: protobuf.Type, input: unknown, path: string): Record<string, unknown> {
  if (!isObject(input)) throw new TypeError(`${path}: object expected for ${type.name}`);
  const fields = fieldsOf(type);
  const out: Record<string, unknown> = {};
  const oneofs = new Map<string, string>();
  for (const [key, v] of Object.entries(input)) {
    if (v === undefined) continue;
    const field = fields.get(key);
    if (!field) throw new RangeError(`${path}: ${type.name} has no field ${key}`);
    const at = `${path}.${key}`;
    if (field.partOf) {
      const other = oneofs.get(field.partOf.name);
      if (other !== undefined) throw new RangeError(`${path}: both ${other} and ${key} of oneof ${field.partOf.name}`);
      oneofs.set(field.partOf.name, key);
    }
    if (v === null) {
      // null means unset, except inside a oneof where it would hide which member was meant.
      if (field.partOf) throw new TypeError(`${at}: null oneof member`);
      continue;
    }
    if (field.map) {
      if (!isObject(v)) throw new TypeError(`${at}: object expected for map`);
      const m: Record<string, unknown> = {};
      for (const [k, mv] of Object.entries(v)) m[k] = toSingle(field, field.type, mv, `${at}.${k}`);
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(v)) throw new TypeError(`${at}: array expected`);
      out[field.name] = v.map((e, i) => toSingle(field, field.type, e, `${at}[${i}]`));
    } else {
      out[field.name] = toSingle(field, field.type, v, at);
    }
  }
  return out;
}

function encodeAs(type: protobuf.Type, input: unknown): Uint8Array {
  return type.encode(toMessage(type, input, type.name)).finish();
}

/** protobuf bytes of a telemetry.vehicle_data.Payload (what a car sends on topic V). */
export function encodeVehicleData(p: VehicleDataInput): Uint8Array {
  return encodeAs(protoSchema().payload, p);
}

/** protobuf bytes of a telemetry.vehicle_alerts.VehicleAlerts (topic alerts). */
export function encodeVehicleAlerts(p: VehicleAlertsInput): Uint8Array {
  return encodeAs(protoSchema().alerts, p);
}

/** protobuf bytes of a telemetry.vehicle_error.VehicleErrors (topic errors). */
export function encodeVehicleErrors(p: VehicleErrorsInput): Uint8Array {
  return encodeAs(protoSchema().errors, p);
}

/** protobuf bytes of the server-made telemetry.vehicle_connectivity.VehicleConnectivity record. */
export function encodeConnectivity(p: ConnectivityInput): Uint8Array {
  return encodeAs(protoSchema().connectivity, p);
}

/** Canonical JSON of the server-made connectivity record, without a protobuf round trip. */
export function connectivityRecordJson(p: ConnectivityInput): string {
  const type = protoSchema().connectivity;
  return connectivityJson(toMessage(type, p, type.name));
}
