import { headers, type MsgHdrs } from '@nats-io/transport-node';
import type { StateEntry } from '../../protocol/payload.js';
import { decodeStoredBody, type DecodedBody, type StoredBody } from '../../protocol/stored-body.js';
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

/** A stored message as far as its headers go: the body still to be decoded (by the decode stage). */
export interface StoredMessage {
  vin: string;
  topic: string;
  txid: string;
  receivedAt: number;
  instance: string;
  clientVersion: string;
  body: StoredBody;
}

const ENCODINGS = new Set(['protobuf', 'json', 'opaque']);

/**
 * Decodes stored bodies off the main thread (the decode stage's worker pool), outcomes in the order
 * of `bodies`: the bus hands every body it reads back to it.
 */
export interface StoredRecordDecoder {
  decodeStored(bodies: StoredBody[]): Promise<Array<DecodedBody | { error: string; internal?: boolean }>>;
}

/** The headers of a stored message read and checked. Throws StreamRecordError for a message this project did not write. */
export function readStoredMessage(data: Uint8Array, h: MsgHdrs | undefined): StoredMessage {
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
  if (!ENCODINGS.has(encoding)) throw new StreamRecordError(`stream message with unknown encoding ${JSON.stringify(encoding)}`);
  return {
    vin,
    topic,
    txid,
    receivedAt,
    instance: h?.get(HEADER.instance) ?? '',
    clientVersion: h?.has(HEADER.clientVersion) ? fromHeaderValue(h.get(HEADER.clientVersion)) : '',
    body: { topic, vin, encoding, normalised: h?.get(HEADER.normalised) === 'true', body: data },
  };
}

/** The record dashboards receive, from a stored message and its decoded body. */
export function storedRecordOf(message: StoredMessage, decoded: DecodedBody): StoredRecord {
  const { vin, topic, receivedAt, body } = message;
  return {
    vin,
    topic,
    txid: message.txid,
    receivedAt,
    recordJson: decoded.recordJson,
    // The stored bytes for a protobuf or opaque body (the normalised record, or an unknown topic's bytes).
    payload: body.encoding === 'json' ? null : body.body,
    ...(message.clientVersion !== '' ? { clientVersion: message.clientVersion } : {}),
    // Framed by the dashboard stage (dashboardMessageOf) for the dashboards that receive it.
    dashboardMessage: '',
    instance: message.instance,
    state: decoded.state,
    createdAt: decoded.createdAt,
  };
}

/**
 * A stored message back into the record dashboards receive, decoded here on the calling thread. The
 * bus hands bodies to the decode stage instead (StoredRecordDecoder); this serves tools and tests.
 */
export function fromStreamMessage(data: Uint8Array, h: MsgHdrs | undefined): StoredRecord {
  const message = readStoredMessage(data, h);
  return storedRecordOf(message, decodeStoredBody(message.body));
}
