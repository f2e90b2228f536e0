import { decodeRecord, type StateEntry } from './payload.js';
import { isObject, kindOf, parseJson } from '../safety/json-reader.js';

/**
 * A record body read back from the NATS stream (stored by any instance), as the decode stage gets it:
 * the body bytes and what the message headers say about them.
 */
export interface StoredBody {
  topic: string;
  /** The VIN from the message's headers (the certificate VIN of the car's instance). */
  vin: string;
  /** protobuf | json | opaque (Telemetry-Encoding). */
  encoding: string;
  /** Protobuf bodies: already the normalised record (Telemetry-Normalised), so only the VIN is set. */
  normalised: boolean;
  body: Uint8Array;
}

/** What decoding a stored body gives the reader: the same record JSON and state a car's frame gives. */
export interface DecodedBody {
  /** Canonical JSON of the record; null for an opaque body. */
  recordJson: string | null;
  isResend: boolean;
  /** V only: the datums as field -> canonical Value JSON, as the decode worker gives the actor. */
  state: StateEntry[] | null;
  /** RFC 3339 created_at of the record, when set. */
  createdAt: string | null;
}

/** A body this project did not write (unknown encoding, undecodable protobuf, JSON that does not parse). */
export class StoredBodyError extends Error {}

const fromUtf8 = new TextDecoder();

/**
 * One stored body decoded and normalised exactly as the decode worker does a car's frame, so a
 * dashboard sees the same JSON whichever instance the car is on. Runs in a decode worker (or inline for
 * small work, as car frames do). Throws StoredBodyError or the PayloadError of a bad protobuf body.
 */
export function decodeStoredBody(stored: StoredBody): DecodedBody {
  const { topic, vin, body } = stored;
  if (stored.encoding === 'protobuf') {
    // Bodies stored before records were normalised are the car's bytes: those are normalised here.
    const decoded = decodeRecord(topic, body, vin, { normalised: stored.normalised });
    return { recordJson: decoded.json, isResend: decoded.isResend, state: decoded.state, createdAt: decoded.createdAt };
  }
  if (stored.encoding === 'json') {
    const recordJson = fromUtf8.decode(body);
    if (topic !== 'V') return { recordJson, isResend: false, state: null, createdAt: null };
    let parsed: unknown;
    try {
      parsed = parseJson(recordJson);
    } catch (error) {
      throw new StoredBodyError(`stream message with a JSON body that does not parse: ${(error as Error).message}`);
    }
    if (!isObject(parsed)) throw new StoredBodyError(`stream message with a JSON body that is ${kindOf(parsed)}, not a V record object`);
    const data: unknown[] = Array.isArray(parsed.data) ? parsed.data : [];
    // Values re-serialised by JSON.stringify match the canonical writer's text for every value but one:
    // a -0 (the canonical writer keeps "-0", JSON.parse reads it as 0 and JSON.stringify writes "0").
    // Only the state folded from a JSON body sees that; the record JSON itself is the stored text.
    const state = data.map((datum, i) => {
      if (!isObject(datum)) throw new StoredBodyError(`stream message with a JSON body whose data[${i}] is ${kindOf(datum)}, not a datum object`);
      return { field: String(datum.key ?? 0), value: datum.value === undefined ? 'null' : JSON.stringify(datum.value) };
    });
    return { recordJson, isResend: parsed.isResend === true, state, createdAt: typeof parsed.createdAt === 'string' ? parsed.createdAt : null };
  }
  if (stored.encoding === 'opaque') return { recordJson: null, isResend: false, state: null, createdAt: null };
  throw new StoredBodyError(`stream message with unknown encoding ${JSON.stringify(stored.encoding)}`);
}
