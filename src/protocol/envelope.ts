// The FlatBuffers envelope that wraps every vehicle message, and the two replies the server sends
// back (ack and error reply). Layout facts: docs of the protocol, section 2 and 3.
//
// Frames come from the network, so the reader treats every offset as hostile: the flatbuffers
// runtime reads whatever index it is given, so each table, vtable, field and vector is checked
// against the frame before it is touched. Byte fields are returned as views into the frame.

import { Builder } from 'flatbuffers';

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

/**
 * Where readEnvelopeSpans puts what it read, in the Int32Array it is given: [start, end) of each byte
 * field as positions in the bytes it was given ([0, 0) when absent), the message type, whether the
 * stream table is there, the stream's created_at (as int32: read it back with `>>> 0`) and the
 * position of its delivered_at_epoch_ms (-1 when absent). The stream's fields are set only when STREAM is 1.
 */
export const ENVELOPE_SPAN = {
  TXID: 0,
  TOPIC: 2,
  MESSAGE_ID: 4,
  SENDER_ID: 6,
  PAYLOAD: 8,
  DEVICE_TYPE: 10,
  DEVICE_ID: 12,
  MESSAGE_TYPE: 14,
  STREAM: 15,
  CREATED_AT: 16,
  DELIVERED_AT: 17,
} as const;
export const ENVELOPE_SPAN_COUNT = 18;

// The frame being read (bytes[base, base + len)) and the vtable of the table most recently opened by
// openTable. Module-level rather than passed around or returned, so reading a frame allocates nothing.
let bytes: Uint8Array = EMPTY;
let base = 0;
let len = 0;
let vtablePos = 0;
let vtableSize = 0;
/** The txid span once read (for the error of a later field); txidRead false before. */
let txidRead = false;
let txidStart = 0;
let txidEnd = 0;

// Little-endian reads at frame positions the callers have checked to lie inside the frame.
function u8(p: number): number {
  return bytes[base + p]!;
}
function u16(p: number): number {
  return bytes[base + p]! | (bytes[base + p + 1]! << 8);
}
function i32(p: number): number {
  const at = base + p;
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}
function u32(p: number): number {
  return i32(p) >>> 0;
}

/** The txid as the error of a later field reports it: null before it was read, empty when absent. */
function errorTxid(): Uint8Array | null {
  if (!txidRead) return null;
  return txidEnd === 0 ? EMPTY : bytes.subarray(txidStart, txidEnd);
}

function openTable(tablePos: number, what: string): void {
  if (tablePos + 4 > len) {
    throw new EnvelopeError('out_of_bounds', `${what} table at ${tablePos} lies outside the ${len}-byte frame`, errorTxid());
  }
  const vt = tablePos - i32(tablePos);
  if (vt < 0 || vt + 4 > len) {
    throw new EnvelopeError('bad_vtable', `${what} vtable at ${vt} lies outside the ${len}-byte frame`, errorTxid());
  }
  const size = u16(vt);
  if (size < 4 || (size & 1) !== 0 || vt + size > len) {
    throw new EnvelopeError('bad_vtable', `${what} vtable at ${vt} has impossible size ${size}`, errorTxid());
  }
  const objectSize = u16(vt + 2);
  if (tablePos + objectSize > len) {
    throw new EnvelopeError('out_of_bounds', `${what} table at ${tablePos} of ${objectSize} bytes runs past the frame`, errorTxid());
  }
  vtablePos = vt;
  vtableSize = size;
}

/** Position of a field of the table last opened, or -1 when the field is absent. */
function fieldPos(tablePos: number, slot: number, width: number, what: string): number {
  // A vtable too short to have the slot was written by an older schema: the field is absent.
  if (slot + 2 > vtableSize) return -1;
  const rel = u16(vtablePos + slot);
  if (rel === 0) return -1;
  const pos = tablePos + rel;
  if (pos + width > len) {
    throw new EnvelopeError('out_of_bounds', `${what} at ${pos} runs past the ${len}-byte frame`, errorTxid());
  }
  return pos;
}

/**
 * Follows a uoffset to a [ubyte] vector and puts its [start, end) in bytes' positions at spans[at]
 * ([0, 0) when absent); the length is checked before any use.
 */
function vectorAt(pos: number, what: string, spans: Int32Array, at: number): void {
  if (pos < 0) {
    spans[at] = 0;
    spans[at + 1] = 0;
    return;
  }
  const vec = pos + u32(pos);
  if (vec + 4 > len) {
    throw new EnvelopeError('out_of_bounds', `${what} vector at ${vec} lies outside the ${len}-byte frame`, errorTxid());
  }
  const count = u32(vec);
  if (count > len - vec - 4) {
    throw new EnvelopeError('out_of_bounds', `${what} vector at ${vec} declares ${count} bytes, more than the ${len}-byte frame holds`, errorTxid());
  }
  spans[at] = base + vec + 4;
  spans[at + 1] = base + vec + 4 + count;
}

/**
 * Reads the envelope in frameBytes[start, end) without making any object: positions go to `spans`
 * (see ENVELOPE_SPAN). Throws EnvelopeError, and nothing else, on any malformed input: the same
 * verdicts as readEnvelope, which is built on it.
 */
export function readEnvelopeSpans(frameBytes: Uint8Array, start: number, end: number, spans: Int32Array): void {
  if (readSpansDirect(frameBytes, start, end, spans)) return;
  readEnvelopeSpansChecked(frameBytes, start, end, spans);
}

/**
 * readEnvelopeSpans by the table readers above, which name what is wrong: the reference the direct
 * reader is tested against, and the reader of every frame the direct one turns down (it then gives the
 * verdict, or the spans should the direct reader have turned down a good frame).
 */
export function readEnvelopeSpansChecked(frameBytes: Uint8Array, start: number, end: number, spans: Int32Array): void {
  bytes = frameBytes;
  base = start;
  len = end - start;
  txidRead = false;
  try {
    readSpans(spans);
  } finally {
    bytes = EMPTY;
  }
}

// The vector fields readSpansDirect reads: vtable slot, then where its span goes, per table.
const ROOT_VECTORS = new Int32Array([ENVELOPE_TXID, ENVELOPE_SPAN.TXID, ENVELOPE_TOPIC, ENVELOPE_SPAN.TOPIC, ENVELOPE_MESSAGE_ID, ENVELOPE_SPAN.MESSAGE_ID]);
const STREAM_VECTORS = new Int32Array([
  STREAM_SENDER_ID, ENVELOPE_SPAN.SENDER_ID, STREAM_PAYLOAD, ENVELOPE_SPAN.PAYLOAD,
  STREAM_DEVICE_TYPE, ENVELOPE_SPAN.DEVICE_TYPE, STREAM_DEVICE_ID, ENVELOPE_SPAN.DEVICE_ID,
]);

/**
 * The spans of a well-formed envelope in b[base, end), read with the same checks as readSpans but no
 * error to name: local reads, no module state, no message text and no calls (the table readers' calls
 * were ~9 % of a worker batch's profile, and helpers here were left out of line too). The checks are
 * those of openTable, fieldPos and vectorAt; the order differs (all of them pass or the frame is turned
 * down). False at the first check readSpans would throw on (the spans then hold anything): the caller
 * reads the frame again with readEnvelopeSpansChecked, which throws the verdict.
 */
export function readSpansDirect(b: Uint8Array, base: number, end: number, spans: Int32Array): boolean {
  const len = end - base;
  if (len < MIN_FRAME_BYTES) return false;
  let table = (b[base]! | (b[base + 1]! << 8) | (b[base + 2]! << 16) | (b[base + 3]! << 24)) >>> 0;
  let vectors = ROOT_VECTORS;
  // Twice: the root table, then the stream table when the message is one.
  for (;;) {
    // openTable(table)
    if (table + 4 > len) return false;
    let p = base + table;
    const vt = table - (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24));
    if (vt < 0 || vt + 4 > len) return false;
    const v = base + vt;
    const size = b[v]! | (b[v + 1]! << 8);
    if (size < 4 || (size & 1) !== 0 || vt + size > len) return false;
    if (table + (b[v + 2]! | (b[v + 3]! << 8)) > len) return false;
    // fieldPos + vectorAt of each vector field ([0, 0) when absent: the slot is past a short vtable, or 0).
    for (let k = 0; k < vectors.length; k += 2) {
      const slot = vectors[k]!;
      const at = vectors[k + 1]!;
      const rel = slot + 2 > size ? 0 : b[v + slot]! | (b[v + slot + 1]! << 8);
      if (rel === 0) {
        spans[at] = 0;
        spans[at + 1] = 0;
        continue;
      }
      const pos = table + rel;
      if (pos + 4 > len) return false;
      p = base + pos;
      const vec = pos + ((b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0);
      if (vec + 4 > len) return false;
      p = base + vec;
      const count = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
      if (count > len - vec - 4) return false;
      spans[at] = p + 4;
      spans[at + 1] = p + 4 + count;
    }
    if (vectors === STREAM_VECTORS) {
      // The stream's scalars: created_at (4 bytes) and delivered_at_epoch_ms (8, its position kept).
      let rel = STREAM_CREATED_AT + 2 > size ? 0 : b[v + STREAM_CREATED_AT]! | (b[v + STREAM_CREATED_AT + 1]! << 8);
      let createdAt = 0;
      if (rel !== 0) {
        if (table + rel + 4 > len) return false;
        p = base + table + rel;
        createdAt = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
      }
      rel = STREAM_DELIVERED_AT + 2 > size ? 0 : b[v + STREAM_DELIVERED_AT]! | (b[v + STREAM_DELIVERED_AT + 1]! << 8);
      if (rel !== 0 && table + rel + 8 > len) return false;
      spans[ENVELOPE_SPAN.CREATED_AT] = createdAt;
      spans[ENVELOPE_SPAN.DELIVERED_AT] = rel === 0 ? -1 : base + table + rel;
      spans[ENVELOPE_SPAN.STREAM] = 1;
      return true;
    }
    // The root's message type (1 byte), then its union value: the stream table when it is one.
    let rel = ENVELOPE_MESSAGE_TYPE + 2 > size ? 0 : b[v + ENVELOPE_MESSAGE_TYPE]! | (b[v + ENVELOPE_MESSAGE_TYPE + 1]! << 8);
    let messageType = MESSAGE_TYPE_NONE;
    if (rel !== 0) {
      if (table + rel + 1 > len) return false;
      messageType = b[base + table + rel]!;
    }
    spans[ENVELOPE_SPAN.MESSAGE_TYPE] = messageType;
    spans[ENVELOPE_SPAN.STREAM] = 0;
    if (messageType !== MESSAGE_TYPE_STREAM) return true;
    rel = ENVELOPE_MESSAGE + 2 > size ? 0 : b[v + ENVELOPE_MESSAGE]! | (b[v + ENVELOPE_MESSAGE + 1]! << 8);
    if (rel === 0) return true;
    const unionPos = table + rel;
    if (unionPos + 4 > len) return false;
    p = base + unionPos;
    table = unionPos + ((b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0);
    vectors = STREAM_VECTORS;
  }
}

function readSpans(spans: Int32Array): void {
  if (len < MIN_FRAME_BYTES) {
    throw new EnvelopeError('too_short', `frame of ${len} bytes is shorter than the smallest envelope`);
  }
  const root = u32(0);
  openTable(root, 'envelope');
  vectorAt(fieldPos(root, ENVELOPE_TXID, 4, 'txid'), 'txid', spans, ENVELOPE_SPAN.TXID);
  txidStart = spans[ENVELOPE_SPAN.TXID]!;
  txidEnd = spans[ENVELOPE_SPAN.TXID + 1]!;
  txidRead = true;
  // The root's vtable is still the one open until the stream table is opened, last.
  vectorAt(fieldPos(root, ENVELOPE_TOPIC, 4, 'topic'), 'topic', spans, ENVELOPE_SPAN.TOPIC);
  const typePos = fieldPos(root, ENVELOPE_MESSAGE_TYPE, 1, 'message_type');
  const messageType = typePos < 0 ? MESSAGE_TYPE_NONE : u8(typePos);
  spans[ENVELOPE_SPAN.MESSAGE_TYPE] = messageType;
  vectorAt(fieldPos(root, ENVELOPE_MESSAGE_ID, 4, 'message_id'), 'message_id', spans, ENVELOPE_SPAN.MESSAGE_ID);
  spans[ENVELOPE_SPAN.STREAM] = 0;
  if (messageType === MESSAGE_TYPE_STREAM) {
    const unionPos = fieldPos(root, ENVELOPE_MESSAGE, 4, 'message');
    if (unionPos >= 0) {
      readStreamSpans(unionPos + u32(unionPos), spans);
      spans[ENVELOPE_SPAN.STREAM] = 1;
    }
  }
}

function readStreamSpans(table: number, spans: Int32Array): void {
  openTable(table, 'stream');
  const createdAtPos = fieldPos(table, STREAM_CREATED_AT, 4, 'created_at');
  const deliveredPos = fieldPos(table, STREAM_DELIVERED_AT, 8, 'delivered_at_epoch_ms');
  spans[ENVELOPE_SPAN.CREATED_AT] = createdAtPos < 0 ? 0 : i32(createdAtPos);
  spans[ENVELOPE_SPAN.DELIVERED_AT] = deliveredPos < 0 ? -1 : base + deliveredPos;
  vectorAt(fieldPos(table, STREAM_SENDER_ID, 4, 'sender_id'), 'sender_id', spans, ENVELOPE_SPAN.SENDER_ID);
  vectorAt(fieldPos(table, STREAM_PAYLOAD, 4, 'payload'), 'payload', spans, ENVELOPE_SPAN.PAYLOAD);
  vectorAt(fieldPos(table, STREAM_DEVICE_TYPE, 4, 'device_type'), 'device_type', spans, ENVELOPE_SPAN.DEVICE_TYPE);
  vectorAt(fieldPos(table, STREAM_DEVICE_ID, 4, 'device_id'), 'device_id', spans, ENVELOPE_SPAN.DEVICE_ID);
}

const SPANS = new Int32Array(ENVELOPE_SPAN_COUNT);

/** The view of a byte field readEnvelopeSpans put in SPANS at `at` (EMPTY when absent). */
function view(frame: Uint8Array, at: number): Uint8Array {
  return SPANS[at + 1] === 0 ? EMPTY : frame.subarray(SPANS[at], SPANS[at + 1]);
}

function uint64At(frame: Uint8Array, p: number): bigint {
  const lo = (frame[p]! | (frame[p + 1]! << 8) | (frame[p + 2]! << 16) | (frame[p + 3]! << 24)) >>> 0;
  const hi = (frame[p + 4]! | (frame[p + 5]! << 8) | (frame[p + 6]! << 16) | (frame[p + 7]! << 24)) >>> 0;
  return BigInt(lo) + (BigInt(hi) << 32n);
}

/**
 * Reads an envelope without copying: every byte field of the result is a view into `frame`, so
 * the caller must not reuse the frame's memory while the result is in use.
 * Throws EnvelopeError, and nothing else, on any malformed input.
 */
export function readEnvelope(frame: Uint8Array): Envelope {
  readEnvelopeSpans(frame, 0, frame.length, SPANS);
  const txid = view(frame, ENVELOPE_SPAN.TXID);
  const topic = view(frame, ENVELOPE_SPAN.TOPIC);
  const messageId = view(frame, ENVELOPE_SPAN.MESSAGE_ID);
  let stream: StreamMessage | null = null;
  if (SPANS[ENVELOPE_SPAN.STREAM] === 1) {
    const delivered = SPANS[ENVELOPE_SPAN.DELIVERED_AT]!;
    stream = {
      createdAt: SPANS[ENVELOPE_SPAN.CREATED_AT]! >>> 0,
      senderId: view(frame, ENVELOPE_SPAN.SENDER_ID),
      payload: view(frame, ENVELOPE_SPAN.PAYLOAD),
      deviceType: view(frame, ENVELOPE_SPAN.DEVICE_TYPE),
      deviceId: view(frame, ENVELOPE_SPAN.DEVICE_ID),
      deliveredAtEpochMs: delivered < 0 ? 0n : uint64At(frame, delivered),
    };
  }
  return { txid, topic, messageType: SPANS[ENVELOPE_SPAN.MESSAGE_TYPE]!, messageId, stream };
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

/**
 * writeAckInto with txid and topic given as [start, end) spans of `src` (as readEnvelopeSpans gives
 * them), so the caller makes no views.
 */
export function writeAckFromSpans(out: Uint8Array, at: number, src: Uint8Array, txidStart: number, txidEnd: number, topicStart: number, topicEnd: number): number {
  const txidLength = txidEnd - txidStart;
  const topicAt = ACK_TXID + vectorSpace(txidLength);
  const end = at + topicAt + vectorSpace(topicEnd - topicStart);
  // Word stores through DataViews kept for the last buffers (a batch's replies and frames, the reused
  // inline frames): a byte loop was ~3 ns a byte, the txid alone 2 % of a worker batch's profile, and
  // out.set() of the head a builtin call per ack.
  if (out !== ackOut) {
    ackOut = out;
    ackOutView = new DataView(out.buffer, out.byteOffset, out.byteLength);
  }
  if (src !== ackSrc) {
    ackSrc = src;
    ackSrcView = new DataView(src.buffer, src.byteOffset, src.byteLength);
  }
  const o = ackOutView;
  const sv = ackSrcView;
  for (let k = 0; k < ACK_HEAD_WORDS.length; k++) o.setInt32(at + 4 * k, ACK_HEAD_WORDS[k]!, true);
  o.setInt32(at + ROOT_TOPIC, topicAt - ROOT_TOPIC, true);
  o.setInt32(at + ACK_TXID, txidLength, true);
  let to = at + ACK_TXID + 4;
  let i = txidStart;
  for (; i + 4 <= txidEnd; i += 4, to += 4) o.setInt32(to, sv.getInt32(i, true), true);
  for (; i < txidEnd; i++) out[to++] = src[i]!;
  // Only the vectors' NUL and padding need zeros (every other byte is written): a fill() of the whole
  // ack was a builtin call per ack (BENCHMARKS.md, engineer S).
  while (to < at + topicAt) out[to++] = 0;
  o.setInt32(at + topicAt, topicEnd - topicStart, true);
  to = at + topicAt + 4;
  for (let j = topicStart; j < topicEnd; j++) out[to++] = src[j]!;
  while (to < end) out[to++] = 0;
  return end;
}

/** ACK_HEAD as little-endian words (ACK_TXID is a multiple of 4). */
const ACK_HEAD_WORDS = (() => {
  const view = new DataView(ACK_HEAD.buffer, ACK_HEAD.byteOffset, ACK_HEAD.byteLength);
  return Int32Array.from({ length: ACK_HEAD.byteLength / 4 }, (_, k) => view.getInt32(4 * k, true));
})();
// writeAckFromSpans's last `out` and `src` and their DataViews.
let ackOut: Uint8Array = EMPTY;
let ackOutView: DataView = new DataView(new ArrayBuffer(0));
let ackSrc: Uint8Array = EMPTY;
let ackSrcView: DataView = new DataView(new ArrayBuffer(0));

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
