// The FlatBuffers envelope that wraps every vehicle message, and the two replies the server sends
// back (ack and error reply). Layout facts: docs of the protocol, section 2 and 3.
//
// Frames come from the network, so the reader treats every offset as hostile: the flatbuffers
// runtime reads whatever index it is given, so each table, vtable, field and vector is checked
// against the frame before it is touched. Byte fields are returned as views into the frame.

import { Builder, ByteBuffer } from 'flatbuffers';

export const MESSAGE_TYPE_NONE = 0;
export const MESSAGE_TYPE_STREAM = 4;
export const MESSAGE_TYPE_STREAM_ACK = 5;

export const INCORRECT_MESSAGE_FORMAT = 'incorrect message format';

export type EnvelopeErrorKind =
  /** The frame cannot even hold a root offset and a table. */
  | 'too_short'
  /** An offset, field or vector reaches outside the frame. */
  | 'out_of_bounds'
  /** A table's vtable lies outside the frame or has an impossible size. */
  | 'bad_vtable';

export class EnvelopeError extends Error {
  readonly kind: EnvelopeErrorKind;
  /**
   * The envelope's txid when it could be read before the damage was found (a view into the
   * frame), so the caller can still address an error reply to the message; otherwise null.
   */
  readonly txid: Uint8Array | null;

  constructor(kind: EnvelopeErrorKind, message: string, txid: Uint8Array | null = null) {
    super(message);
    this.name = 'EnvelopeError';
    this.kind = kind;
    this.txid = txid;
  }
}

export interface StreamMessage {
  /** Seconds since the epoch, as the car stamped it (0 when absent). */
  createdAt: number;
  senderId: Uint8Array;
  /** Protobuf bytes whose message type depends on the envelope's topic. */
  payload: Uint8Array;
  deviceType: Uint8Array;
  deviceId: Uint8Array;
  deliveredAtEpochMs: bigint;
}

export interface Envelope {
  txid: Uint8Array;
  topic: Uint8Array;
  messageType: number;
  messageId: Uint8Array;
  /**
   * The stream table when messageType is MESSAGE_TYPE_STREAM and the union value is present;
   * null otherwise (no union, or another type: the server acks those without decoding).
   */
  stream: StreamMessage | null;
}

// vtable slots: 4 + 2 * field id
const ENVELOPE_TXID = 4;
const ENVELOPE_TOPIC = 6;
const ENVELOPE_MESSAGE_TYPE = 8;
const ENVELOPE_MESSAGE = 10;
const ENVELOPE_MESSAGE_ID = 12;

const STREAM_CREATED_AT = 4;
const STREAM_SENDER_ID = 6;
const STREAM_PAYLOAD = 8;
const STREAM_DEVICE_TYPE = 10;
const STREAM_DEVICE_ID = 12;
const STREAM_DELIVERED_AT = 14;

/** Root uoffset plus a table's soffset: nothing shorter can hold any table. */
const MIN_FRAME_BYTES = 8;

const EMPTY = new Uint8Array(0);

// The vtable of the table most recently opened by openTable. Module-level rather than a returned
// object so reading a frame allocates nothing beyond the ByteBuffer and the result.
let vtablePos = 0;
let vtableSize = 0;

function openTable(bb: ByteBuffer, tablePos: number, what: string, txid: Uint8Array | null): void {
  const len = bb.capacity();
  if (tablePos + 4 > len) {
    throw new EnvelopeError('out_of_bounds', `${what} table at ${tablePos} lies outside the ${len}-byte frame`, txid);
  }
  const vt = tablePos - bb.readInt32(tablePos);
  if (vt < 0 || vt + 4 > len) {
    throw new EnvelopeError('bad_vtable', `${what} vtable at ${vt} lies outside the ${len}-byte frame`, txid);
  }
  const size = bb.readUint16(vt);
  if (size < 4 || (size & 1) !== 0 || vt + size > len) {
    throw new EnvelopeError('bad_vtable', `${what} vtable at ${vt} has impossible size ${size}`, txid);
  }
  const objectSize = bb.readUint16(vt + 2);
  if (tablePos + objectSize > len) {
    throw new EnvelopeError('out_of_bounds', `${what} table at ${tablePos} of ${objectSize} bytes runs past the frame`, txid);
  }
  vtablePos = vt;
  vtableSize = size;
}

/** Absolute position of a field of the table last opened, or -1 when the field is absent. */
function fieldPos(bb: ByteBuffer, tablePos: number, slot: number, width: number, what: string, txid: Uint8Array | null): number {
  // A vtable too short to have the slot was written by an older schema: the field is absent.
  if (slot + 2 > vtableSize) return -1;
  const rel = bb.readUint16(vtablePos + slot);
  if (rel === 0) return -1;
  const pos = tablePos + rel;
  if (pos + width > bb.capacity()) {
    throw new EnvelopeError('out_of_bounds', `${what} at ${pos} runs past the ${bb.capacity()}-byte frame`, txid);
  }
  return pos;
}

/** Follows a uoffset to a [ubyte] vector and returns it as a view; the length is checked before any use. */
function bytesAt(bb: ByteBuffer, frame: Uint8Array, pos: number, what: string, txid: Uint8Array | null): Uint8Array {
  if (pos < 0) return EMPTY;
  const len = frame.length;
  const vec = pos + bb.readUint32(pos);
  if (vec + 4 > len) {
    throw new EnvelopeError('out_of_bounds', `${what} vector at ${vec} lies outside the ${len}-byte frame`, txid);
  }
  const count = bb.readUint32(vec);
  if (count > len - vec - 4) {
    throw new EnvelopeError('out_of_bounds', `${what} vector at ${vec} declares ${count} bytes, more than the ${len}-byte frame holds`, txid);
  }
  return frame.subarray(vec + 4, vec + 4 + count);
}

/**
 * Reads an envelope without copying: every byte field of the result is a view into `frame`, so
 * the caller must not reuse the frame's memory while the result is in use.
 * Throws EnvelopeError, and nothing else, on any malformed input.
 */
export function readEnvelope(frame: Uint8Array): Envelope {
  if (frame.length < MIN_FRAME_BYTES) {
    throw new EnvelopeError('too_short', `frame of ${frame.length} bytes is shorter than the smallest envelope`);
  }
  const bb = new ByteBuffer(frame);
  const root = bb.readUint32(0);
  openTable(bb, root, 'envelope', null);
  const txid = bytesAt(bb, frame, fieldPos(bb, root, ENVELOPE_TXID, 4, 'txid', null), 'txid', null);
  // The root's vtable is still the one open until the stream table is opened, last.
  const topic = bytesAt(bb, frame, fieldPos(bb, root, ENVELOPE_TOPIC, 4, 'topic', txid), 'topic', txid);
  const typePos = fieldPos(bb, root, ENVELOPE_MESSAGE_TYPE, 1, 'message_type', txid);
  const messageType = typePos < 0 ? MESSAGE_TYPE_NONE : bb.readUint8(typePos);
  const messageId = bytesAt(bb, frame, fieldPos(bb, root, ENVELOPE_MESSAGE_ID, 4, 'message_id', txid), 'message_id', txid);
  let stream: StreamMessage | null = null;
  if (messageType === MESSAGE_TYPE_STREAM) {
    const unionPos = fieldPos(bb, root, ENVELOPE_MESSAGE, 4, 'message', txid);
    if (unionPos >= 0) stream = readStream(bb, frame, unionPos + bb.readUint32(unionPos), txid);
  }
  return { txid, topic, messageType, messageId, stream };
}

function readStream(bb: ByteBuffer, frame: Uint8Array, table: number, txid: Uint8Array): StreamMessage {
  openTable(bb, table, 'stream', txid);
  const createdAtPos = fieldPos(bb, table, STREAM_CREATED_AT, 4, 'created_at', txid);
  const deliveredPos = fieldPos(bb, table, STREAM_DELIVERED_AT, 8, 'delivered_at_epoch_ms', txid);
  return {
    createdAt: createdAtPos < 0 ? 0 : bb.readUint32(createdAtPos),
    senderId: bytesAt(bb, frame, fieldPos(bb, table, STREAM_SENDER_ID, 4, 'sender_id', txid), 'sender_id', txid),
    payload: bytesAt(bb, frame, fieldPos(bb, table, STREAM_PAYLOAD, 4, 'payload', txid), 'payload', txid),
    deviceType: bytesAt(bb, frame, fieldPos(bb, table, STREAM_DEVICE_TYPE, 4, 'device_type', txid), 'device_type', txid),
    deviceId: bytesAt(bb, frame, fieldPos(bb, table, STREAM_DEVICE_ID, 4, 'device_id', txid), 'device_id', txid),
    deliveredAtEpochMs: deliveredPos < 0 ? 0n : bb.readUint64(deliveredPos),
  };
}

// ---------------------------------------------------------------------------------------------
// Replies. They run once per received frame, so they are assembled by hand from a prebuilt head:
// one allocation, two or three copies. Every envelope field is written, as the reference does,
// because cars were only ever tested against replies that carry all of them.
//
// Shared head (offsets in bytes):
//    0  u32 root table offset = 20
//    4  root vtable: size 14, object size 24, txid@4 topic@8 message_type@20 message@12 message_id@16
//   20  root table: soffset 16 (vtable at 4), then txid, topic, message, message_id uoffsets, type

const ROOT_TABLE = 20;
const ROOT_TXID = 24;
const ROOT_TOPIC = 28;
const ROOT_MESSAGE = 32;
const ROOT_MESSAGE_ID = 36;
const ROOT_TYPE = 40;
const REPLY_BODY = 44;

function putU16(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
}

function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = (v >>> 24) & 0xff;
}

/** Writes a NUL-terminated byte vector at `at` (4-aligned) and returns where the next one may start. */
function putVector(out: Uint8Array, at: number, bytes: Uint8Array): number {
  putU32(out, at, bytes.length);
  out.set(bytes, at + 4);
  // the NUL and the alignment padding are already zero in a fresh buffer
  return at + vectorSpace(bytes.length);
}

/** Bytes a NUL-terminated vector of n bytes takes, padded so the next item stays 4-aligned. */
function vectorSpace(n: number): number {
  return 4 + ((n + 4) & ~3);
}

function replyHead(size: number, messageType: number): Uint8Array {
  const head = new Uint8Array(size);
  putU32(head, 0, ROOT_TABLE);
  putU16(head, 4, 14);
  putU16(head, 6, REPLY_BODY - ROOT_TABLE);
  putU16(head, 8, ROOT_TXID - ROOT_TABLE);
  putU16(head, 10, ROOT_TOPIC - ROOT_TABLE);
  putU16(head, 12, ROOT_TYPE - ROOT_TABLE);
  putU16(head, 14, ROOT_MESSAGE - ROOT_TABLE);
  putU16(head, 16, ROOT_MESSAGE_ID - ROOT_TABLE);
  putU32(head, ROOT_TABLE, ROOT_TABLE - 4);
  head[ROOT_TYPE] = messageType;
  return head;
}

// Ack body:
//   44  FlatbuffersStreamAck table (no fields): soffset -4 (vtable at 48)
//   48  its vtable: size 4, object size 4
//   52  empty vector shared by message_id
//   60  txid vector, then topic vector
// Unlike the reference (whose union points at an empty byte vector), the union value here is a
// real empty table, so a verifying reader accepts it as well as a lenient one.
const ACK_EMPTY_TABLE = 44;
const ACK_EMPTY_VECTOR = 52;
const ACK_TXID = 60;
const ACK_HEAD = (() => {
  const head = replyHead(ACK_TXID, MESSAGE_TYPE_STREAM_ACK);
  putU32(head, ROOT_MESSAGE, ACK_EMPTY_TABLE - ROOT_MESSAGE);
  putU32(head, ROOT_MESSAGE_ID, ACK_EMPTY_VECTOR - ROOT_MESSAGE_ID);
  putU32(head, ROOT_TXID, ACK_TXID - ROOT_TXID);
  putU32(head, ACK_EMPTY_TABLE, -4);
  putU16(head, ACK_EMPTY_TABLE + 4, 4);
  putU16(head, ACK_EMPTY_TABLE + 6, 4);
  return head;
})();

/** The ack for a received message: its txid and topic, message_type 5, empty message_id. */
export function writeAck(txid: Uint8Array, topic: Uint8Array): Uint8Array {
  const topicAt = ACK_TXID + vectorSpace(txid.length);
  const out = new Uint8Array(topicAt + vectorSpace(topic.length));
  out.set(ACK_HEAD);
  putU32(out, ROOT_TOPIC, topicAt - ROOT_TOPIC);
  putVector(out, ACK_TXID, txid);
  putVector(out, topicAt, topic);
  return out;
}

/** Bytes writeAckInto takes for an ack to this txid and topic. */
export function ackByteLength(txid: Uint8Array, topic: Uint8Array): number {
  return ACK_TXID + vectorSpace(txid.length) + vectorSpace(topic.length);
}

/**
 * writeAck into `out` at `at` (4-aligned, ackByteLength(txid, topic) bytes free, any old content), so a
 * batch of acks shares one buffer instead of one allocation each. Returns where the ack ends.
 */
export function writeAckInto(out: Uint8Array, at: number, txid: Uint8Array, topic: Uint8Array): number {
  const end = at + ackByteLength(txid, topic);
  // Vectors rely on zeroed NULs and padding; a reused buffer has old bytes there.
  out.fill(0, at + ACK_TXID, end);
  out.set(ACK_HEAD, at);
  const topicAt = ACK_TXID + vectorSpace(txid.length);
  putU32(out, at + ROOT_TOPIC, topicAt - ROOT_TOPIC);
  putVector(out, at + ACK_TXID, txid);
  putVector(out, at + topicAt, topic);
  return end;
}

// Error reply body:
//   44  stream vtable: size 10, object size 8, payload@4 (created_at, sender_id absent)
//   56  stream table: soffset 12 (vtable at 44), payload uoffset
//   64  payload vector 'incorrect message format'
//   96  empty vector shared by topic and message_id
//  104  txid vector
const ERROR_STREAM_VTABLE = 44;
const ERROR_STREAM_TABLE = 56;
const ERROR_PAYLOAD = 64;
const ERROR_EMPTY_VECTOR = 96;
const ERROR_TXID = 104;
const ERROR_HEAD = (() => {
  const head = replyHead(ERROR_TXID, MESSAGE_TYPE_STREAM);
  putU32(head, ROOT_TXID, ERROR_TXID - ROOT_TXID);
  putU32(head, ROOT_TOPIC, ERROR_EMPTY_VECTOR - ROOT_TOPIC);
  putU32(head, ROOT_MESSAGE, ERROR_STREAM_TABLE - ROOT_MESSAGE);
  putU32(head, ROOT_MESSAGE_ID, ERROR_EMPTY_VECTOR - ROOT_MESSAGE_ID);
  putU16(head, ERROR_STREAM_VTABLE, 10);
  putU16(head, ERROR_STREAM_VTABLE + 2, 8);
  putU16(head, ERROR_STREAM_VTABLE + STREAM_PAYLOAD, 4);
  putU32(head, ERROR_STREAM_TABLE, ERROR_STREAM_TABLE - ERROR_STREAM_VTABLE);
  putU32(head, ERROR_STREAM_TABLE + 4, ERROR_PAYLOAD - (ERROR_STREAM_TABLE + 4));
  const end = putVector(head, ERROR_PAYLOAD, new TextEncoder().encode(INCORRECT_MESSAGE_FORMAT));
  if (end !== ERROR_EMPTY_VECTOR) throw new Error('error reply layout is inconsistent');
  return head;
})();

/**
 * The reply to a message the server could not use: a stream whose payload is
 * 'incorrect message format', addressed by txid (empty when the message was too big to read).
 */
export function writeErrorReply(txid: Uint8Array): Uint8Array {
  const out = new Uint8Array(ERROR_TXID + vectorSpace(txid.length));
  out.set(ERROR_HEAD);
  putVector(out, ERROR_TXID, txid);
  return out;
}

// ---------------------------------------------------------------------------------------------
// What a car sends. Not on the server's hot path (the simulator and tests use it), so it uses the
// flatbuffers Builder, which writes byte vectors NUL-terminated as the reference does.

export interface StreamEnvelopeInput {
  txid: Uint8Array | string;
  topic: Uint8Array | string;
  payload: Uint8Array;
  /** Written only when given. */
  messageId?: Uint8Array | string;
  createdAt?: number;
  senderId?: Uint8Array | string;
  deviceType?: Uint8Array | string;
  deviceId?: Uint8Array | string;
  deliveredAtEpochMs?: bigint;
}

const UINT32_MAX = 0xffffffff;
const UINT64_MAX = (1n << 64n) - 1n;

export function writeStreamEnvelope(m: StreamEnvelopeInput): Uint8Array {
  const createdAt = m.createdAt ?? 0;
  if (!Number.isInteger(createdAt) || createdAt < 0 || createdAt > UINT32_MAX) {
    throw new RangeError(`createdAt must be an integer number of seconds in [0, ${UINT32_MAX}], got ${createdAt}`);
  }
  const deliveredAt = m.deliveredAtEpochMs ?? 0n;
  if (deliveredAt < 0n || deliveredAt > UINT64_MAX) {
    throw new RangeError(`deliveredAtEpochMs must fit in an unsigned 64-bit integer, got ${deliveredAt}`);
  }
  const b = new Builder(128 + m.payload.length);
  const senderId = m.senderId === undefined ? 0 : b.createString(m.senderId);
  const payload = b.createString(m.payload);
  const deviceType = m.deviceType === undefined ? 0 : b.createString(m.deviceType);
  const deviceId = m.deviceId === undefined ? 0 : b.createString(m.deviceId);
  b.startObject(6);
  b.addFieldInt32(0, createdAt | 0, 0);
  b.addFieldOffset(1, senderId, 0);
  b.addFieldOffset(2, payload, 0);
  b.addFieldOffset(3, deviceType, 0);
  b.addFieldOffset(4, deviceId, 0);
  b.addFieldInt64(5, deliveredAt, 0n);
  const stream = b.endObject();

  const txid = b.createString(m.txid);
  const topic = b.createString(m.topic);
  const messageId = m.messageId === undefined ? 0 : b.createString(m.messageId);
  b.startObject(5);
  b.addFieldOffset(0, txid, 0);
  b.addFieldOffset(1, topic, 0);
  b.addFieldInt8(2, MESSAGE_TYPE_STREAM, MESSAGE_TYPE_NONE);
  b.addFieldOffset(3, stream, 0);
  b.addFieldOffset(4, messageId, 0);
  b.finish(b.endObject());
  // asUint8Array is a view into the end of the builder's oversized buffer; a compact copy keeps
  // `.buffer` equal to the frame for callers that transfer or offset into it.
  return b.asUint8Array().slice();
}
