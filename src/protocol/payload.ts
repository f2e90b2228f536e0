// Payload decoding with protobufjs: protobuf bytes of a topic -> validated, normalised message ->
// canonical JSON text (plus per-datum state for V). The decode workers' generated transcoder
// (transcoder.ts) handles the common frame and hands this what it leaves, malformed payloads included,
// so both give the same verdict; records read back from the NATS stream come through here too.
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
import { protoSchema, type ProtoSchema } from './proto-schema.js';

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

// ---- canonical JSON ------------------------------------------------------------------------------

/** The schema's types and their canonical JSON writers, built on the first decode (see protoSchema). */
interface PayloadCodec {
  readonly schema: ProtoSchema;
  readonly writePayload: JsonWriter;
  readonly writeAlerts: JsonWriter;
  readonly writeErrors: JsonWriter;
  readonly writeConnectivity: JsonWriter;
  readonly makeLocationValue: (loc: LatLon) => DecodedValue;
}

let built: PayloadCodec | undefined;

function payloadCodec(): PayloadCodec {
  return (built ??= buildCodec(protoSchema()));
}

function buildCodec(schema: ProtoSchema): PayloadCodec {
  const fieldNames = schema.fieldNames;
  // The V writer hands each datum's Value JSON to this tap, which collects the state entries; ctx is the
  // StateEntry[] of the record being written (undefined when nobody wants state).
  const collectState: JsonTap = (json, datum, ctx) => {
    if (ctx === undefined) return;
    const key = typeof datum.key === 'number' ? datum.key : 0;
    (ctx as StateEntry[]).push({ field: fieldNames[key] ?? String(key), value: json });
  };
  const canonical = new CanonicalJson({
    maxEntries: PAYLOAD_LIMITS.maxEntries,
    taps: new Map([['telemetry.vehicle_data.Datum.value', collectState]]),
  });
  return {
    schema,
    writePayload: canonical.writer(schema.payload),
    writeAlerts: canonical.writer(schema.alerts),
    writeErrors: canonical.writer(schema.errors),
    writeConnectivity: canonical.writer(schema.connectivity),
    makeLocationValue: (loc) => schema.value.create({ locationValue: schema.location.create(loc) }) as DecodedValue,
  };
}

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
  const codec = payloadCodec();
  const { schema, makeLocationValue } = codec;
  switch (topic) {
    case 'V': {
      const m = decodeAs<DecodedVehicleData>(schema.payload, topic, payload);
      checkCount(topic, 'datums', m.data.length);
      if (normalised) m.vin = vin;
      else normaliseVehicleData(m, vin, makeLocationValue);
      const state: StateEntry[] = [];
      const json = writeJson(topic, codec.writePayload, m, state);
      return { topic, json, signals: m.data.length, state, createdAt: createdAtOf(m), isResend: m.isResend === true };
    }
    case 'alerts': {
      const m = decodeAs<DecodedVehicleAlerts>(schema.alerts, topic, payload);
      checkCount(topic, 'alerts', m.alerts.length);
      if (normalised) m.vin = vin;
      else normaliseVehicleAlerts(m, vin);
      const json = writeJson(topic, codec.writeAlerts, m);
      return { topic, json, signals: m.alerts.length, state: null, createdAt: createdAtOf(m), isResend: false };
    }
    case 'errors': {
      const m = decodeAs<DecodedVehicleErrors>(schema.errors, topic, payload);
      checkCount(topic, 'errors', m.errors.length);
      normaliseVehicleErrors(m, vin);
      const json = writeJson(topic, codec.writeErrors, m);
      return { topic, json, signals: m.errors.length, state: null, createdAt: createdAtOf(m), isResend: false };
    }
    case 'connectivity': {
      const m = decodeAs<DecodedVehicleConnectivity>(schema.connectivity, topic, payload);
      m.vin = vin;
      const json = writeJson(topic, codec.writeConnectivity, m);
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
  const { schema, makeLocationValue } = payloadCodec();
  const type = topic === 'V' ? schema.payload : topic === 'alerts' ? schema.alerts : topic === 'errors' ? schema.errors : topic === 'connectivity' ? schema.connectivity : null;
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

/** Canonical JSON of a server-made connectivity record (see connectivityRecordJson). */
export function connectivityJson(message: object): string {
  return writeJson('connectivity', payloadCodec().writeConnectivity, message);
}
