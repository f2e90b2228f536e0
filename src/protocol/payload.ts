// Payload stage of a record: protobuf bytes of a topic -> validated, normalised message ->
// canonical JSON text (plus per-datum state for V). Runs per frame in the decode workers.
//
// What counts as invalid (PayloadError kind 'invalid', the bytes themselves decoded fine):
// - a repeated or map field with more than PAYLOAD_LIMITS.maxEntries entries (V data, alerts, errors,
//   audiences, tags...). Real cars send at most a few hundred datums per payload; the cap bounds the
//   JSON a 1 MB frame of tiny entries could blow up to;
// - a Timestamp that has no RFC 3339 form (seconds outside 0001-01-01..9999-12-31, nanos outside
//   0..999,999,999), after the alert millisecond fix-up.
// Not invalid: a datum without a value (written as "value":null), unknown Field numbers or enum
// values (kept as numbers), an empty V payload, unknown protobuf fields (skipped; protobuf JSON has
// no place for them).
// Kind 'protobuf': the bytes are not a valid protobuf of the topic's message (truncated, bad wire
// type, bad UTF-8 in a string, nesting too deep).
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { CanonicalJson, CanonicalJsonError, formatTimestamp, type JsonTap, type JsonWriter } from './canonical-json.js';
import type {
  DecodedTimestamp,
  DecodedValue,
  DecodedVehicleAlerts,
  DecodedVehicleConnectivity,
  DecodedVehicleData,
  DecodedVehicleErrors,
} from './decoded-message.js';
import { normaliseVehicleAlerts, normaliseVehicleData, normaliseVehicleErrors, type LatLon } from './normalise.js';
import type { KnownTopic } from './topics.js';

export type { KnownTopic } from './topics.js';
export type PayloadErrorKind = 'protobuf' | 'invalid';

export class PayloadError extends Error {
  override readonly name = 'PayloadError';
  constructor(
    readonly kind: PayloadErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface StateEntry {
  /** Field enum name, or the number as a string when the schema does not know it. */
  field: string;
  /** Canonical JSON of the datum's Value, e.g. {"doubleValue":80.5}; "null" when the datum has none. */
  value: string;
}

export interface DecodedRecord {
  topic: string;
  /** Canonical protobuf JSON of the normalised record; null for topics passed through as opaque bytes. */
  json: string | null;
  /** V: datums; alerts: alerts; errors: errors; connectivity: 1; unknown topic: 0. */
  signals: number;
  /** V only: one entry per datum, in payload order. */
  state: StateEntry[] | null;
  /** RFC 3339 UTC text of the record's created_at, when set. */
  createdAt: string | null;
  /** V only: the car re-sent data that was not acked. */
  isResend: boolean;
}

export const PAYLOAD_LIMITS = Object.freeze({ maxEntries: 10_000 });

// ---- schema loading ------------------------------------------------------------------------------

/** The project folder holding proto/, found from this module's own location (src/ or dist/src/). */
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'vehicle_data.proto'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find proto/vehicle_data.proto above the payload module');
    dir = parent;
  }
}

const PROTO_DIR = findProtoDir();
const root = protobuf.loadSync(
  readdirSync(PROTO_DIR)
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => join(PROTO_DIR, f)),
);
root.resolveAll();

// protobufjs's decoder records each oneof member it reads through the oneof's virtual setter, and the
// stock setter deletes every other member of the oneof: 52 `delete`s per Value, about 1.4 us each
// Value and ~70% of the time a 20-datum V payload takes. This setter deletes only the members that are
// actually present, which leaves the message exactly as the stock one does. protobufjs reads
// util.oneOfSetter when it builds a type's constructor, so our types get fresh constructors built
// while it is swapped in, and the shared protobufjs module is restored right after.
function presentOnlyOneofSetter(fieldNames: string[]): (this: Record<string, unknown>, name: string) => void {
  const members = new Set(fieldNames);
  return function setOneof(name) {
    const keys = Object.keys(this);
    for (let i = 0; i < keys.length; i++) if (keys[i] !== name && members.has(keys[i])) delete this[keys[i]];
  };
}

function rebuildConstructorsWithOneofs(ns: protobuf.NamespaceBase): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type && nested.oneofsArray.length > 0) {
      nested.ctor = (protobuf.Type.generateConstructor(nested) as () => protobuf.Constructor<{}>)();
    }
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) rebuildConstructorsWithOneofs(nested);
  }
}

{
  const util = protobuf.util as unknown as { oneOfSetter: unknown };
  const stock = util.oneOfSetter;
  util.oneOfSetter = presentOnlyOneofSetter;
  try {
    rebuildConstructorsWithOneofs(root);
  } finally {
    util.oneOfSetter = stock;
  }
}

const PayloadType = root.lookupType('telemetry.vehicle_data.Payload');
const ValueType = root.lookupType('telemetry.vehicle_data.Value');
const LocationType = root.lookupType('telemetry.vehicle_data.LocationValue');
const AlertsType = root.lookupType('telemetry.vehicle_alerts.VehicleAlerts');
const ErrorsType = root.lookupType('telemetry.vehicle_error.VehicleErrors');
const ConnectivityType = root.lookupType('telemetry.vehicle_connectivity.VehicleConnectivity');
const FieldEnum = root.lookupEnum('telemetry.vehicle_data.Field');

function namesByNumber(e: protobuf.Enum): string[] {
  const names: string[] = [];
  for (const [name, num] of Object.entries(e.values)) if (num >= 0 && names[num] === undefined) names[num] = name;
  return names;
}

/** Field enum names by number (for config building and validation). */
export const FIELD_NAMES: readonly string[] = Object.freeze(namesByNumber(FieldEnum));

/** The resolved schema of proto/ (the transcoder is generated from it). */
export const SCHEMA_ROOT: protobuf.Root = root;

/** The payload message type of each topic decodeRecord decodes. */
export const RECORD_TYPES: Readonly<Record<KnownTopic, string>> = Object.freeze({
  V: 'telemetry.vehicle_data.Payload',
  alerts: 'telemetry.vehicle_alerts.VehicleAlerts',
  errors: 'telemetry.vehicle_error.VehicleErrors',
  connectivity: 'telemetry.vehicle_connectivity.VehicleConnectivity',
});

// ---- canonical JSON ------------------------------------------------------------------------------

// The V writer hands each datum's Value JSON to this tap, which collects the state entries; ctx is the
// StateEntry[] of the record being written (undefined when nobody wants state).
const collectState: JsonTap = (json, datum, ctx) => {
  if (ctx === undefined) return;
  const key = typeof datum.key === 'number' ? datum.key : 0;
  (ctx as StateEntry[]).push({ field: FIELD_NAMES[key] ?? String(key), value: json });
};

const canonical = new CanonicalJson({
  maxEntries: PAYLOAD_LIMITS.maxEntries,
  taps: new Map([['telemetry.vehicle_data.Datum.value', collectState]]),
});
const writePayload = canonical.writer(PayloadType);
const writeAlerts = canonical.writer(AlertsType);
const writeErrors = canonical.writer(ErrorsType);
const writeConnectivity = canonical.writer(ConnectivityType);

// ---- decoding ------------------------------------------------------------------------------------

/** T names the fields our code reads; protobufjs builds the message from the type's own schema. */
function decodeAs<T>(type: protobuf.Type, topic: string, payload: Uint8Array): T {
  try {
    return type.decode(payload) as unknown as T;
  } catch (err) {
    throw new PayloadError('protobuf', `${topic}: not a valid ${type.name} protobuf: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function checkCount(topic: string, what: string, n: number): void {
  if (n > PAYLOAD_LIMITS.maxEntries) {
    throw new PayloadError('invalid', `${topic}: ${n} ${what}, limit ${PAYLOAD_LIMITS.maxEntries}`);
  }
}

function writeJson(topic: string, write: JsonWriter, m: object, ctx?: unknown): string {
  try {
    return write(m, ctx);
  } catch (err) {
    if (err instanceof CanonicalJsonError) throw new PayloadError('invalid', `${topic}: ${err.message}`, { cause: err });
    // Anything else is a bug of ours, not a verdict on the payload: it propagates as it is.
    throw err;
  }
}

function createdAtOf(m: { createdAt?: DecodedTimestamp | null }): string | null {
  const ts = m.createdAt;
  // Only called after the writer accepted the record, so the Timestamp is in range.
  return ts == null ? null : formatTimestamp(ts.seconds, ts.nanos);
}

const makeLocationValue = (loc: LatLon): DecodedValue => ValueType.create({ locationValue: LocationType.create(loc) }) as DecodedValue;

/**
 * Decodes, validates and normalises one record's payload. `vin` is the certificate's identity and
 * replaces whatever VIN the payload carries. A payload it refuses throws PayloadError; any other
 * exception is a bug of ours and is not relabelled as one (the decode stage counts and logs it as a
 * bug). Unknown topics are not decoded (their bytes pass through opaque).
 */
export function decodeRecord(topic: string, payload: Uint8Array, vin: string, options: DecodeOptions = {}): DecodedRecord {
  return decodeKnown(topic, payload, vin, options.normalised === true);
}

export interface DecodeOptions {
  /**
   * The payload was normalised already (a stored record, see encodeNormalised): only the VIN is set.
   * Normalising twice is not the same: the second Location string of a record would become "the first".
   */
  normalised?: boolean;
}

function decodeKnown(topic: string, payload: Uint8Array, vin: string, normalised: boolean): DecodedRecord {
  switch (topic) {
    case 'V': {
      const m = decodeAs<DecodedVehicleData>(PayloadType, topic, payload);
      checkCount(topic, 'datums', m.data.length);
      if (normalised) m.vin = vin;
      else normaliseVehicleData(m, vin, makeLocationValue);
      const state: StateEntry[] = [];
      const json = writeJson(topic, writePayload, m, state);
      return { topic, json, signals: m.data.length, state, createdAt: createdAtOf(m), isResend: m.isResend === true };
    }
    case 'alerts': {
      const m = decodeAs<DecodedVehicleAlerts>(AlertsType, topic, payload);
      checkCount(topic, 'alerts', m.alerts.length);
      if (normalised) m.vin = vin;
      else normaliseVehicleAlerts(m, vin);
      const json = writeJson(topic, writeAlerts, m);
      return { topic, json, signals: m.alerts.length, state: null, createdAt: createdAtOf(m), isResend: false };
    }
    case 'errors': {
      const m = decodeAs<DecodedVehicleErrors>(ErrorsType, topic, payload);
      checkCount(topic, 'errors', m.errors.length);
      normaliseVehicleErrors(m, vin);
      const json = writeJson(topic, writeErrors, m);
      return { topic, json, signals: m.errors.length, state: null, createdAt: createdAtOf(m), isResend: false };
    }
    case 'connectivity': {
      const m = decodeAs<DecodedVehicleConnectivity>(ConnectivityType, topic, payload);
      m.vin = vin;
      const json = writeJson(topic, writeConnectivity, m);
      return { topic, json, signals: 1, state: null, createdAt: createdAtOf(m), isResend: false };
    }
    default:
      return { topic, json: null, signals: 0, state: null, createdAt: null, isResend: false };
  }
}

// ---- the normalised record as protobuf (what the NATS stream stores) ------------------------------

/**
 * The record as the reference server stores it: decoded, normalised (certificate VIN, Location
 * strings, scientific-notation strings, alert millisecond times) and encoded again, with the unknown
 * fields the car sent kept (protobufjs keeps them when the reader does not discard them). Null for
 * topics that are not decoded, or a payload decodeRecord refuses.
 */
export function encodeNormalised(topic: string, payload: Uint8Array, vin: string): Uint8Array | null {
  const type = topic === 'V' ? PayloadType : topic === 'alerts' ? AlertsType : topic === 'errors' ? ErrorsType : topic === 'connectivity' ? ConnectivityType : null;
  if (type === null) return null;
  try {
    const reader = protobuf.Reader.create(payload);
    reader.discardUnknown = false;
    const m = type.decode(reader);
    if (topic === 'V') normaliseVehicleData(m as unknown as DecodedVehicleData, vin, makeLocationValue);
    else if (topic === 'alerts') normaliseVehicleAlerts(m as unknown as DecodedVehicleAlerts, vin);
    else if (topic === 'errors') normaliseVehicleErrors(m as unknown as DecodedVehicleErrors, vin);
    else (m as unknown as DecodedVehicleConnectivity).vin = vin;
    return type.encode(m).finish();
  } catch {
    return null;
  }
}

// ---- encoding (car simulator, tests, server-made connectivity records) -----------------------------

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
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new TypeError(`${path}: object expected for ${type.name}`);
  }
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
      if (typeof v !== 'object' || Array.isArray(v)) throw new TypeError(`${at}: object expected for map`);
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
  return encodeAs(PayloadType, p);
}

/** protobuf bytes of a telemetry.vehicle_alerts.VehicleAlerts (topic alerts). */
export function encodeVehicleAlerts(p: VehicleAlertsInput): Uint8Array {
  return encodeAs(AlertsType, p);
}

/** protobuf bytes of a telemetry.vehicle_error.VehicleErrors (topic errors). */
export function encodeVehicleErrors(p: VehicleErrorsInput): Uint8Array {
  return encodeAs(ErrorsType, p);
}

/** protobuf bytes of the server-made telemetry.vehicle_connectivity.VehicleConnectivity record. */
export function encodeConnectivity(p: ConnectivityInput): Uint8Array {
  return encodeAs(ConnectivityType, p);
}

/** Canonical JSON of the server-made connectivity record, without a protobuf round trip. */
export function connectivityRecordJson(p: ConnectivityInput): string {
  const m = toMessage(ConnectivityType, p, ConnectivityType.name);
  return writeJson('connectivity', writeConnectivity, m);
}
