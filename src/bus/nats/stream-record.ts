import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { dashboardRecordMessage } from '../../decode/decode-batch.js';
import { decodeRecord, type StateEntry } from '../../protocol/payload.js';
import type { BusRecord } from '../record-bus.js';
import { fromHeaderValue, headerValue, recordMessageId, recordSubject } from './nats-names.js';

/**
 * How a record looks in the stream: the subject says where it belongs, the body is the normalised
 * record as protobuf (certificate VIN, converted Location, ...; unknown fields kept) or its canonical
 * JSON (operator's choice), and headers carry what a consumer needs without decoding the body.
 * Consumers outside this project read the same headers. The car's own bytes are never stored for a
 * decoded topic: they carry whatever VIN the car wrote.
 */
export const HEADER = {
  vin: 'Telemetry-Vin',
  txid: 'Telemetry-Txid',
  topic: 'Telemetry-Topic',
  receivedAt: 'Telemetry-Received-At',
  /** protobuf | json | opaque (an unknown topic's bytes, whatever the setting). */
  encoding: 'Telemetry-Encoding',
  /** Which instance stored it: an instance skips its own records when they come back from NATS. */
  instance: 'Telemetry-Instance',
  /** `true` on protobuf bodies that are the normalised record (read back without normalising again). */
  normalised: 'Telemetry-Normalised',
  /** The `Version` header of the car's connection, when it sent one. */
  clientVersion: 'Telemetry-Client-Version',
} as const;

export type RecordEncoding = 'protobuf' | 'json';

export interface StreamMessage {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs;
  msgId: string;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function toStreamMessage(record: BusRecord, prefix: string, encoding: RecordEncoding, instanceId: string): StreamMessage {
  const h = headers();
  h.set(HEADER.vin, headerValue(record.vin));
  h.set(HEADER.txid, headerValue(record.txid));
  h.set(HEADER.topic, headerValue(record.topic));
  h.set(HEADER.receivedAt, new Date(record.receivedAt).toISOString());
  h.set(HEADER.instance, instanceId);
  if (record.clientVersion !== undefined && record.clientVersion !== '') h.set(HEADER.clientVersion, headerValue(record.clientVersion));
  let data: Uint8Array;
  if (record.recordJson === null) {
    h.set(HEADER.encoding, 'opaque');
    data = record.payload ?? new Uint8Array(0);
  } else if (encoding === 'protobuf' && record.normalisedPayload !== undefined) {
    h.set(HEADER.encoding, 'protobuf');
    h.set(HEADER.normalised, 'true');
    data = record.normalisedPayload;
  } else {
    // JSON when asked for, and whenever no normalised protobuf came with the record.
    h.set(HEADER.encoding, 'json');
    data = utf8.encode(record.recordJson);
  }
  return {
    subject: recordSubject(prefix, record.vin, record.topic),
    data,
    headers: h,
    msgId: recordMessageId(record.vin, record.txid, record.topic),
  };
}

export class StreamRecordError extends Error {}

/** A record read back from the stream, with what a reader needs to fold it into last-known state. */
export type StoredRecord = BusRecord & {
  /** The instance that stored it. */
  instance: string;
  /** V only: the datums as field -> canonical Value JSON, as the decode worker gives the actor. */
  state: StateEntry[] | null;
  /** RFC 3339 created_at of the record, when set. */
  createdAt: string | null;
};

interface JsonVehicleData {
  isResend?: unknown;
  createdAt?: unknown;
  data?: Array<{ key?: unknown; value?: unknown }>;
}

/**
 * A stored message back into the record dashboards receive. Protobuf bodies are decoded and normalised
 * here exactly as the decode worker does, so a dashboard sees the same JSON whichever instance the car
 * is on. Throws StreamRecordError for a message this project did not write.
 */
export function fromStreamMessage(data: Uint8Array, h: MsgHdrs | undefined): StoredRecord {
  const get = (name: string): string => {
    const value = h?.get(name) ?? '';
    if (value === '') throw new StreamRecordError(`stream message without ${name} header`);
    return value;
  };
  const vin = fromHeaderValue(get(HEADER.vin));
  const topic = fromHeaderValue(get(HEADER.topic));
  const txid = h?.has(HEADER.txid) ? fromHeaderValue(h.get(HEADER.txid)) : '';
  const receivedAt = Date.parse(get(HEADER.receivedAt));
  if (Number.isNaN(receivedAt)) throw new StreamRecordError(`stream message with a bad ${HEADER.receivedAt} header`);
  const encoding = get(HEADER.encoding);
  let recordJson: string | null;
  let payload: Uint8Array | null;
  let isResend = false;
  let state: StateEntry[] | null = null;
  let createdAt: string | null = null;
  if (encoding === 'protobuf') {
    // Bodies stored before records were normalised are the car's bytes: those are normalised here.
    const decoded = decodeRecord(topic, data, vin, { normalised: h?.get(HEADER.normalised) === 'true' });
    recordJson = decoded.json;
    isResend = decoded.isResend;
    state = decoded.state;
    createdAt = decoded.createdAt;
    payload = data;
  } else if (encoding === 'json') {
    recordJson = fromUtf8.decode(data);
    if (topic === 'V') {
      // Canonical JSON re-serialises to the same text, so values match what the decode worker made.
      const parsed = JSON.parse(recordJson) as JsonVehicleData;
      isResend = parsed.isResend === true;
      createdAt = typeof parsed.createdAt === 'string' ? parsed.createdAt : null;
      state = (Array.isArray(parsed.data) ? parsed.data : []).map((datum) => ({
        field: String(datum.key ?? 0),
        value: datum.value === undefined ? 'null' : JSON.stringify(datum.value),
      }));
    }
    payload = null;
  } else if (encoding === 'opaque') {
    recordJson = null;
    payload = data;
  } else {
    throw new StreamRecordError(`stream message with unknown encoding ${JSON.stringify(encoding)}`);
  }
  const clientVersion = h?.has(HEADER.clientVersion) ? fromHeaderValue(h.get(HEADER.clientVersion)) : '';
  return {
    vin,
    topic,
    txid,
    receivedAt,
    recordJson,
    payload,
    ...(clientVersion !== '' ? { clientVersion } : {}),
    dashboardMessage: dashboardRecordMessage(vin, topic, receivedAt, recordJson, isResend),
    instance: h?.get(HEADER.instance) ?? '',
    state,
    createdAt,
  };
}
