// The global Buffer is an accessor (a getter call per read on the per-record path); the module's binding is not.
import { Buffer } from 'node:buffer';
import {
  ENVELOPE_SPAN,
  ENVELOPE_SPAN_COUNT,
  EnvelopeError,
  MESSAGE_TYPE_STREAM,
  readEnvelope,
  readEnvelopeSpans,
  writeAckFromSpans,
  writeErrorReply,
} from '../protocol/envelope.js';
import { civilYmd } from '../protocol/canonical-json.js';
import { JsonSink, bytesToWords, toWords } from '../protocol/json-sink.js';
import { PAYLOAD_LIMITS, PayloadError, decodeRecord, encodeNormalised } from '../protocol/payload.js';
import { RECORD_TYPES, fieldNames, protoSchema } from '../protocol/proto-schema.js';
import { buildTranscoder, type StateIndex, type TranscodeInfo } from '../protocol/transcoder.js';
import { replaceVinInto, type DatumFields } from '../protocol/vin-patch.js';
import { sampleTime } from '../protocol/state-value.js';
import { DatumValueList, SAMPLE_VALUES, SignalSample, readSampleFromBytes, writeSampleRowFromDatumValues } from '../history/signal-sample.js';
import { DecodedBatch } from './decoded-batch.js';
import { RECORD_MESSAGE_TAIL, writeRecordMessageHead } from '../protocol/record-message.js';
import {
  ERROR_KINDS,
  FRAME_SLOTS,
  KIND_ACK_ONLY,
  KIND_ERROR,
  KIND_RECORD,
  SLOT,
  TEXT_LEVEL,
  align8,
  type DecodeResult,
  type DecodeTask,
  type FrameOutcome,
} from './decode-task.js';

const FIELD_NAMES = fieldNames();
const SCHEMA_ROOT = protoSchema().root;

const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder('latin1');
const FIELD_NUMBERS = new Map(FIELD_NAMES.map((name, number) => [name, number]));
const ERROR_CODES = new Map(ERROR_KINDS.map((kind, code) => [kind, code]));
const KNOWN_TOPICS = new Set(Object.keys(RECORD_TYPES));
const RECORD_DATA_HEAD = '{"data":[';
const DATUM_KEY_HEAD = '{"key":';
const DATUM_VALUE_HEAD = ',"value":';
const DATUM_TAIL_AND_COMMA = '},';
const CREATED_AT_KEY = '"createdAt":"';

/** The state index of a batch: Int32 triples, grown as needed, kept across batches. */
class StateBuffer implements StateIndex {
  values = new Int32Array(3 * 4096);
  length = 0;

  push(field: number, start: number, end: number): void {
    if (this.length + 3 > this.values.length) this.room();
    this.values[this.length++] = field;
    this.values[this.length++] = start;
    this.values[this.length++] = end;
  }

  room(): void {
    const values = new Int32Array(this.values.length * 2);
    values.set(this.values);
    this.values = values;
  }
}

/**
 * The replies of a batch, written back to back into one buffer kept across batches: one allocation
 * per batch (the copy that is transferred) instead of one per reply plus the packing.
 */
class ReplyBuffer {
  bytes = new Uint8Array(64 * 1024);
  length = 0;

  /** The ack of the envelope whose spans (in src) readEnvelopeSpans put in `spans`. */
  ackSpans(src: Uint8Array, spans: Int32Array): void {
    const txidStart = spans[ENVELOPE_SPAN.TXID]!;
    const txidEnd = spans[ENVELOPE_SPAN.TXID + 1]!;
    const topicStart = spans[ENVELOPE_SPAN.TOPIC]!;
    const topicEnd = spans[ENVELOPE_SPAN.TOPIC + 1]!;
    // At least ackByteLength of these lengths: the head, then two NUL-terminated padded vectors.
    this.reserve(128 + txidEnd - txidStart + topicEnd - topicStart);
    this.length = writeAckFromSpans(this.bytes, this.length, src, txidStart, txidEnd, topicStart, topicEnd);
  }

  error(txid: Uint8Array): void {
    const reply = writeErrorReply(txid);
    this.reserve(reply.byteLength);
    this.bytes.set(reply, this.length);
    this.length += reply.byteLength;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.byteLength) return;
    let size = this.bytes.byteLength * 2;
    while (size < this.length + n) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.bytes.subarray(0, this.length));
    this.bytes = bytes;
  }
}

/** The samples of a batch (SAMPLE_VALUES per V record with datums), grown as needed, kept across batches. */
class SampleBuffer {
  values = new Float64Array(SAMPLE_VALUES * 256);
  /** Records written. */
  count = 0;
  private readonly sample = new SignalSample();

  /** The followed signals of the record whose text ends at `end` in `bytes` and datums are state[from, to). */
  add(bytes: Uint8Array, state: Int32Array, from: number, to: number, end: number): number {
    readSampleFromBytes(bytes, state, from, to, end, this.sample).writeRow(this.values, this.row());
    return ++this.count;
  }

  /** The same, from the values the transcoder gathered as it wrote the record (DATUM_VALUES). */
  addFromDatumValues(datums: DatumValueList, bytes: Uint8Array, end: number): number {
    writeSampleRowFromDatumValues(datums, bytes, end, this.values, this.row());
    return ++this.count;
  }

  private row(): number {
    const at = this.count * SAMPLE_VALUES;
    if (at + SAMPLE_VALUES > this.values.length) {
      const values = new Float64Array(this.values.length * 2);
      values.set(this.values);
      this.values = values;
    }
    return at;
  }
}

// decodeBatch runs to completion one batch at a time, so one of each serves every batch of a thread.
const REPLIES = new ReplyBuffer();
const SINK = new JsonSink();
const NORMALISED = new JsonSink(16 * 1024);
const STATE = new StateBuffer();
const SAMPLES = new SampleBuffer();
/** The followed signals' values of the record being transcoded (see DatumValues). */
const DATUM_VALUES = new DatumValueList();
/** The batch reads samples: the transcoder gathers DATUM_VALUES (null: it does not). */
let datumValues: DatumValueList | null = null;
/** The frame just decoded went through the transcoder with datumValues gathered. */
let gathered = false;
/** The created_at ms the transcoder gave the frame just decoded (TranscodeInfo.createdAtMs); NaN: none. */
let transcodedCreatedAtMs = Number.NaN;
/** The batch's table, written here and copied into the result (grown as needed, kept across batches). */
let TABLE = new Int32Array(FRAME_SLOTS * 256);
const NO_INTERNAL_ERRORS: readonly string[] = Object.freeze([]);
const INFO: TranscodeInfo = { signals: 0, createdAtStart: -1, createdAtEnd: -1, createdAtMs: NaN, rewrites: 0, recordStart: -1, isResend: false, valueRewrites: [] };
/** The VIN's field number in each record type (the normalised protobuf replaces it). */
const VIN_FIELD = new Map(Object.entries(RECORD_TYPES).map(([topic, type]) => [topic, SCHEMA_ROOT.lookupType(type).fields.vin!.id]));
/**
 * The frame just decoded went through the transcoder, and what it rewrote besides the VIN are datum
 * Values (INFO.valueRewrites): its normalised protobuf is the car's bytes patched (see replaceVinInto).
 */
let patchable = false;
const DATUM_FIELDS: DatumFields = (() => {
  const field = (type: string, name: string): number => SCHEMA_ROOT.lookupType(type).fields[name]!.id;
  return {
    data: field(RECORD_TYPES.V!, 'data'),
    value: field('telemetry.vehicle_data.Datum', 'value'),
    stringValue: field('telemetry.vehicle_data.Value', 'stringValue'),
    locationValue: field('telemetry.vehicle_data.Value', 'locationValue'),
    latitude: field('telemetry.vehicle_data.LocationValue', 'latitude'),
    longitude: field('telemetry.vehicle_data.LocationValue', 'longitude'),
  };
})();
const TRANSCODER = buildTranscoder(SCHEMA_ROOT, SINK, { maxEntries: PAYLOAD_LIMITS.maxEntries, topics: { ...RECORD_TYPES } });

/**
 * Frames whose payload left the transcoder's common path and went through protobufjs (see transcoder.ts),
 * normalised records encoded again by protobufjs instead of patched from the car's bytes, and record
 * JSONs of rows decoded values only made on demand on this thread (valuesOnlyRecordJson).
 */
export const transcoderStats = { fallbacks: 0, reencoded: 0, recordJsonOnDemand: 0 };

/**
 * Decode one batch of frames: envelope -> topic -> protobuf wire bytes -> canonical JSON bytes (with
 * the reference normalisations) inside the dashboard message, and the reply each frame will get. Runs
 * in a decode worker; pure so it is tested without threads. Every frame yields exactly one row and one
 * reply, whatever its bytes. `smallSpares`: the caller (the main thread's inline path, recycling) hands
 * small results back (offerInlineResultBuffer), so a small one is taken from those spares or made in
 * one size class; else it is exactly its size.
 */
export function decodeBatch(task: DecodeTask, smallSpares = false): DecodeResult {
  const frames = framesView(task.frames);
  const count = task.vins.length;
  const slots = count * FRAME_SLOTS;
  if (TABLE.length < slots) TABLE = new Int32Array(Math.max(slots, 2 * TABLE.length));
  const table = TABLE;
  // A loop, not fill(): a lone frame's row is a few dozen slots, and the builtin's entry cost more.
  for (let s = 0; s < slots; s++) table[s] = 0;
  REPLIES.length = 0;
  SINK.n = 0;
  STATE.length = 0;
  SAMPLES.count = 0;
  NORMALISED.n = 0;
  const normalise = task.normalise === true;
  const samples = task.samples !== false;
  datumValues = samples ? DATUM_VALUES : null;
  const watched = task.watched;
  let internalErrors: string[] | null = null;
  for (let i = 0; i < count; i++) {
    const row = i * FRAME_SLOTS;
    // Where the buffers stood before the frame, as plain numbers: a frame that throws loses what it wrote.
    const sinkMark = SINK.n;
    const stateMark = STATE.length;
    const repliesMark = REPLIES.length;
    const normalisedMark = NORMALISED.n;
    const samplesMark = SAMPLES.count;
    try {
      const level = watched === undefined ? TEXT_LEVEL.DASHBOARD_MESSAGE : watched[i]!;
      // Values only needs the samples read here: the history reads a record without them from its text.
      valuesOnly = level === TEXT_LEVEL.VALUES_ONLY && samples;
      withDashboardMessage = level !== TEXT_LEVEL.RECORD_JSON && level !== TEXT_LEVEL.VALUES_ONLY;
      table[row + SLOT.DASHBOARD] = withDashboardMessage ? TEXT_LEVEL.DASHBOARD_MESSAGE : valuesOnly ? TEXT_LEVEL.VALUES_ONLY : TEXT_LEVEL.RECORD_JSON;
      decodeFrame(frames, task.offsets[i]!, task.offsets[i + 1]!, task.vins[i]!, task.receivedAt[i]!, table, row);
      if (table[row + SLOT.CREATED_AT_START]! >= 0) writeCreatedAtMs(table, row);
      // The recent history's values, read here from the bytes rather than from the text on the main thread.
      if (samples && table[row + SLOT.STATE_END]! > table[row + SLOT.STATE_START]! && table[row + SLOT.KIND] === KIND_RECORD) {
        table[row + SLOT.SAMPLE] = gathered
          ? SAMPLES.addFromDatumValues(DATUM_VALUES, SINK.bytes, table[row + SLOT.MESSAGE_END]!)
          : SAMPLES.add(SINK.bytes, STATE.values, table[row + SLOT.STATE_START]! * 3, table[row + SLOT.STATE_END]! * 3, table[row + SLOT.MESSAGE_END]!);
      }
      table[row + SLOT.NORMALISED_START] = -1;
      if (normalise && table[row + SLOT.KIND] === KIND_RECORD) normaliseRecord(frames, table, row, task.vins[i]!);
    } catch (error) {
      // Every verdict on a frame's bytes is returned, not thrown: this is a bug of ours. The frame loses
      // what it wrote and gets the error reply, as a frame that killed its worker does: an ack would
      // claim a record nobody stored, and no reply would have the car resend the same bytes into the
      // same bug until its buffer gives up. The rest of the batch is decoded as usual.
      SINK.n = sinkMark;
      STATE.length = stateMark;
      REPLIES.length = repliesMark;
      NORMALISED.n = normalisedMark;
      SAMPLES.count = samplesMark;
      (internalErrors ??= []).push(error instanceof Error ? (error.stack ?? error.message) : String(error));
      internalFailure(frames.subarray(task.offsets[i], task.offsets[i + 1]), table, row);
    }
  }
  // The batch's one allocation: its sections copied back to back into one buffer (see DecodeResult). A
  // big one is a result buffer the main thread handed back once nothing read it any more (DecodePool's
  // recycling, offerResultBuffers) when one is big enough, else new in a size class such a buffer can
  // serve later: fresh memory each batch was ~0.8 µs of page faults per record (BENCHMARKS.md).
  const tableBytes = slots * 4;
  const stateAt = tableBytes;
  const repliesAt = stateAt + STATE.length * 4;
  const textAt = repliesAt + REPLIES.length;
  const normalisedAt = textAt + SINK.n;
  const samplesAt = align8(normalisedAt + NORMALISED.n);
  // Not zeroed first (calloc's memset of the whole result was a tenth of a µs per record): every byte
  // is written below, the few padding bytes before the samples included.
  const end = samplesAt + SAMPLES.count * SAMPLE_VALUES * 8;
  const bytes = resultBytes(end, smallSpares);
  const buffer = resultBuffer;
  resultBuffer = NO_RESULT;
  for (let at = normalisedAt + NORMALISED.n; at < samplesAt; at++) bytes[at] = 0;
  bytes.set(TABLE_BYTES.of(table).subarray(0, tableBytes));
  if (STATE.length > 0) bytes.set(STATE_BYTES.of(STATE.values).subarray(0, STATE.length * 4), stateAt);
  if (REPLIES.length > 0) bytes.set(REPLIES.bytes.subarray(0, REPLIES.length), repliesAt);
  if (SINK.n > 0) bytes.set(SINK.bytes.subarray(0, SINK.n), textAt);
  if (NORMALISED.n > 0) bytes.set(NORMALISED.bytes.subarray(0, NORMALISED.n), normalisedAt);
  if (SAMPLES.count > 0) bytes.set(SAMPLES_BYTES.of(SAMPLES.values).subarray(0, SAMPLES.count * SAMPLE_VALUES * 8), samplesAt);
  return { buffer, count, stateAt, repliesAt, textAt, normalisedAt, samplesAt, end, internalErrors: internalErrors ?? NO_INTERNAL_ERRORS };
}

/** Results from this size on come in size classes and may be recycled by the workers. */
export const RECYCLED_RESULT_MIN_BYTES = 64 * 1024;
/**
 * Smaller results are at least this big (one class for a lone frame's few KB), so a spare from any
 * earlier small batch serves the next one on the main thread (offerInlineResultBuffer).
 */
export const SMALL_RESULT_BYTES = 4 * 1024;
/**
 * Small result buffers the main thread keeps: a lone batch's comes back at the pool's next flush (the
 * recent history copies what it keeps), later when a dashboard subscription holds it: a few, bounded.
 */
const MAX_SPARE_SMALL_RESULTS = 64;
/** Small result buffers every holder let go of on this thread, newest last (offerInlineResultBuffer). */
const SPARE_SMALL_RESULTS: ArrayBuffer[] = [];
/**
 * Their byte lengths, read once when offered: an ArrayBuffer's byteLength getter is a builtin optimised
 * code reaches through the generic LoadIC (Builtins_LoadIC in a lone frame's profile).
 */
const SPARE_SMALL_CAPACITIES: number[] = [];
const NO_RESULT = new ArrayBuffer(0);
/** The buffer of the Uint8Array resultBytes returned last (its `.buffer` is a builtin behind the generic LoadIC). */
let resultBuffer: ArrayBuffer = NO_RESULT;
/** Handed-back result buffers this thread keeps (a few batches' worth: one per batch in flight, roughly). */
const MAX_SPARE_RESULTS = 6;
/** Result buffers handed back by the main thread, oldest first (offerResultBuffers). */
const SPARE_RESULTS: ArrayBuffer[] = [];

/**
 * Result buffers the main thread is done with (transferred back to this thread: no other thread can
 * read them any more), kept for the next batches' results. Beyond a few, the oldest are let go.
 */
export function offerResultBuffers(buffers: readonly ArrayBuffer[]): void {
  for (const buffer of buffers) {
    if (buffer instanceof ArrayBuffer && buffer.byteLength >= RECYCLED_RESULT_MIN_BYTES) keepSpareResult(buffer);
  }
}

/** A big result buffer kept for the next big results; beyond a few, the oldest is let go. */
function keepSpareResult(buffer: ArrayBuffer): void {
  if (SPARE_RESULTS.length >= MAX_SPARE_RESULTS) SPARE_RESULTS.shift();
  SPARE_RESULTS.push(buffer);
}

/** Spare result buffers held (tests). */
export function spareResultBuffers(): number {
  return SPARE_RESULTS.length;
}

/**
 * A result buffer of a batch decoded on this thread (DecodePool's inline path) that every holder let go
 * of: the next inline batches' results are written into it instead of a new buffer each (malloc, a new
 * ArrayBuffer and its finalisation by the GC per lone frame; BENCHMARKS.md, engineer U). Big ones go
 * where a worker's handed-back buffers go.
 */
export function offerInlineResultBuffer(buffer: ArrayBuffer): void {
  const size = buffer.byteLength;
  if (size >= RECYCLED_RESULT_MIN_BYTES) {
    keepSpareResult(buffer);
  } else if (size >= SMALL_RESULT_BYTES && SPARE_SMALL_RESULTS.length < MAX_SPARE_SMALL_RESULTS) {
    SPARE_SMALL_RESULTS.push(buffer);
    SPARE_SMALL_CAPACITIES.push(size);
  }
}

/** Spare small result buffers held on this thread (tests). */
export function spareSmallResultBuffers(): number {
  return SPARE_SMALL_RESULTS.length;
}

/**
 * `size` bytes for a batch's result: the newest spare that holds them without wasting more than three
 * quarters of itself, else a new buffer rounded up to an eighth of the next power of two (so a buffer
 * made for one batch serves the similar batches after it). A small result is exact, or with
 * `smallSpares` the newest of the last few small spares that holds it, else SMALL_RESULT_BYTES. Not
 * zeroed: decodeBatch writes every byte up to `size`.
 */
function resultBytes(size: number, smallSpares: boolean): Uint8Array {
  if (size < RECYCLED_RESULT_MIN_BYTES) {
    if (!smallSpares) return freshResultBytes(size, size);
    // The newest first (its lines are the likeliest still cached); a spare too small stays for a smaller
    // batch, one far too big (an inline burst's) for a bigger one.
    const spares = SPARE_SMALL_RESULTS;
    for (let s = spares.length - 1; s >= 0 && s >= spares.length - 4; s--) {
      const capacity = SPARE_SMALL_CAPACITIES[s]!;
      if (capacity >= size && (capacity <= SMALL_RESULT_BYTES || capacity <= 4 * size)) {
        const spare = spares[s]!;
        // pop, not `length = s`: an array's length setter is a call into C++ (JSArray::SetLength).
        if (s === spares.length - 1) {
          spares.pop();
          SPARE_SMALL_CAPACITIES.pop();
        } else {
          spares.splice(s, 1);
          SPARE_SMALL_CAPACITIES.splice(s, 1);
        }
        resultBuffer = spare;
        return new Uint8Array(spare, 0, size);
      }
    }
    return freshResultBytes(size <= SMALL_RESULT_BYTES ? SMALL_RESULT_BYTES : resultSizeClass(size), size);
  }
  for (let s = SPARE_RESULTS.length - 1; s >= 0; s--) {
    const spare = SPARE_RESULTS[s]!;
    if (spare.byteLength >= size && spare.byteLength <= 4 * size) {
      SPARE_RESULTS.splice(s, 1);
      resultBuffer = spare;
      return new Uint8Array(spare, 0, size);
    }
  }
  return freshResultBytes(resultSizeClass(size), size);
}

/** A new buffer of `capacity` bytes, not zeroed (calloc's memset of a whole result cost more than writing it). */
function freshResultBytes(capacity: number, size: number): Uint8Array {
  const bytes = Buffer.allocUnsafeSlow(capacity);
  resultBuffer = bytes.buffer as ArrayBuffer;
  return bytes.subarray(0, size);
}

/** `size` rounded up to a multiple of an eighth of the smallest power of two >= size. */
export function resultSizeClass(size: number): number {
  const step = Math.max(8, (size <= 1 ? 1 : 2 ** (32 - Math.clz32(size - 1))) / 8);
  return Math.ceil(size / step) * step;
}

/**
 * A byte view of one of the batch's scratch arrays (TABLE, STATE.values, SAMPLES.values), made when the
 * array is new (grown) and kept: `.buffer` of a typed array is a C++ builtin that optimised code reaches
 * through the generic LoadIC, three of them per batch before (BENCHMARKS.md, engineer S).
 */
class ByteView {
  private array: Int32Array | Float64Array | null = null;
  private bytes: Uint8Array = new Uint8Array(0);

  of(array: Int32Array | Float64Array): Uint8Array {
    if (array !== this.array) {
      this.array = array;
      this.bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    }
    return this.bytes;
  }
}
const TABLE_BYTES = new ByteView();
const STATE_BYTES = new ByteView();
const SAMPLES_BYTES = new ByteView();

// Inline batches reuse one frames buffer (DecodePool's reuseInlineFrames): the same view of it then
// keeps the transcoder's DataView of the wire bytes too, instead of two new objects per lone frame.
// Identity alone decides: a SharedArrayBuffer made without maxByteLength never changes its length (and
// its byteLength getter is a C++ builtin reached through the generic LoadIC).
let lastFramesBuffer: SharedArrayBuffer | null = null;
let lastFramesView: Uint8Array = new Uint8Array(0);
function framesView(buffer: SharedArrayBuffer): Uint8Array {
  if (buffer !== lastFramesBuffer) {
    lastFramesBuffer = buffer;
    lastFramesView = new Uint8Array(buffer);
  }
  return lastFramesView;
}

/** The record's created_at as epoch ms, parsed here rather than on the main thread (SLOT.CREATED_AT_MS_HI). */
function writeCreatedAtMs(table: Int32Array, row: number): void {
  // The transcoder's own reading of the Timestamp it wrote, when it wrote the record and had one.
  const ms = Number.isNaN(transcodedCreatedAtMs) ? createdAtMsOf(SINK.bytes, table[row + SLOT.CREATED_AT_START]!, table[row + SLOT.CREATED_AT_END]!) : transcodedCreatedAtMs;
  const hi = Math.floor(ms / 4294967296);
  table[row + SLOT.CREATED_AT_MS_HI] = hi;
  table[row + SLOT.CREATED_AT_MS_LO] = ms - hi * 4294967296;
}

/**
 * sampleTime of the RFC 3339 text bytes[start, end), read from the bytes for the forms the canonical
 * writer gives every record (`YYYY-MM-DDTHH:MM:SSZ`, or with 3, 6 or 9 fraction digits, of which
 * Date.parse keeps milliseconds; year 100 or later, day 1-31: V8's Date.parse rolls a day past the
 * month's end over exactly as Date.UTC does); anything else goes through sampleTime itself.
 */
export function createdAtMsOf(bytes: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (
    (length === 20 || ((length === 24 || length === 27 || length === 30) && bytes[start + 19] === 0x2e)) &&
    bytes[start + 4] === 0x2d && bytes[start + 7] === 0x2d && bytes[start + 10] === 0x54 &&
    bytes[start + 13] === 0x3a && bytes[start + 16] === 0x3a && bytes[end - 1] === 0x5a
  ) {
    const year = digitsAt(bytes, start, 4);
    const month = digitsAt(bytes, start + 5, 2);
    const day = digitsAt(bytes, start + 8, 2);
    const hour = digitsAt(bytes, start + 11, 2);
    const minute = digitsAt(bytes, start + 14, 2);
    const second = digitsAt(bytes, start + 17, 2);
    const ms = length === 20 ? 0 : length === 24 || digitsAt(bytes, start + 23, length - 24) >= 0 ? digitsAt(bytes, start + 20, 3) : -1;
    if (year >= 100 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59 && ms >= 0) {
      return Date.UTC(year, month - 1, day, hour, minute, second, ms);
    }
  }
  return sampleTime(latin1.decode(bytes.subarray(start, end)));
}

/** The decimal number of `count` ASCII digits at bytes[at]; -1 when one is not a digit. */
function digitsAt(bytes: Uint8Array, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = bytes[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** The row and reply of a frame whose decoding threw something that is not a verdict (see decodeBatch). */
function internalFailure(frame: Uint8Array, table: Int32Array, row: number): void {
  table.fill(0, row, row + FRAME_SLOTS);
  table[row + SLOT.TXID_START] = -1;
  table[row + SLOT.TOPIC_START] = -1;
  table[row + SLOT.CREATED_AT_START] = -1;
  table[row + SLOT.CREATED_AT_END] = -1;
  table[row + SLOT.NORMALISED_START] = -1;
  let txid: Uint8Array = EMPTY;
  try {
    const envelope = readEnvelope(frame);
    txid = envelope.txid;
    setSpan(table, row + SLOT.TXID_START, envelope.txid);
    setSpan(table, row + SLOT.TOPIC_START, envelope.topic);
  } catch {
    // The envelope did not even read: the error reply goes out with an empty txid.
  }
  REPLIES.error(txid);
  finish(table, row, KIND_ERROR, 'internal');
}

/** The record re-encoded normalised (see encodeNormalised), for a bus that stores protobuf bodies. */
function normaliseRecord(frames: Uint8Array, table: Int32Array, row: number, vin: string): void {
  const topic = topicText(frames.subarray(table[row + SLOT.TOPIC_START], table[row + SLOT.TOPIC_END]));
  if (!KNOWN_TOPICS.has(topic)) return;
  const payloadStart = table[row + SLOT.PAYLOAD_START]!;
  const payloadEnd = table[row + SLOT.PAYLOAD_END]!;
  const start = NORMALISED.n;
  // The common case is the car's bytes patched (the VIN, rewritten datums); anything else rewritten
  // (alert millisecond times) or an unusual top level is decoded and encoded again.
  const vinJson = vinJsonOf(vin);
  if (!patchable || vinJson.nonAscii || !replaceVinInto(NORMALISED, frames, payloadStart, payloadEnd, VIN_FIELD.get(topic)!, vinRawOf(vin), INFO.valueRewrites, DATUM_FIELDS)) {
    transcoderStats.reencoded++;
    const bytes = encodeNormalised(topic, frames.subarray(payloadStart, payloadEnd), vin);
    if (bytes === null) return;
    NORMALISED.reserve(bytes.length);
    NORMALISED.bytes.set(bytes, NORMALISED.n);
    NORMALISED.n += bytes.length;
  }
  table[row + SLOT.NORMALISED_START] = start;
  table[row + SLOT.NORMALISED_END] = NORMALISED.n;
}

/** The envelope spans of the frame being decoded (see readEnvelopeSpans). */
const SPANS = new Int32Array(ENVELOPE_SPAN_COUNT);

function decodeFrame(frames: Uint8Array, start: number, end: number, vin: string, receivedAt: number, table: Int32Array, row: number): void {
  table[row + SLOT.TXID_START] = -1;
  table[row + SLOT.TOPIC_START] = -1;
  table[row + SLOT.CREATED_AT_START] = -1;
  table[row + SLOT.CREATED_AT_END] = -1;
  gathered = false;
  transcodedCreatedAtMs = NaN;
  try {
    readEnvelopeSpans(frames, start, end, SPANS);
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    // Address the error reply to the txid when it was readable before the damage; otherwise empty.
    const txid = error.txid;
    REPLIES.error(txid ?? EMPTY);
    if (txid !== null) setSpan(table, row + SLOT.TXID_START, txid);
    return finish(table, row, KIND_ERROR, `envelope_${error.kind}`);
  }
  table[row + SLOT.TXID_START] = SPANS[ENVELOPE_SPAN.TXID]!;
  table[row + SLOT.TXID_END] = SPANS[ENVELOPE_SPAN.TXID + 1]!;
  const topicStart = SPANS[ENVELOPE_SPAN.TOPIC]!;
  const topicEnd = SPANS[ENVELOPE_SPAN.TOPIC + 1]!;
  table[row + SLOT.TOPIC_START] = topicStart;
  table[row + SLOT.TOPIC_END] = topicEnd;

  if (SPANS[ENVELOPE_SPAN.MESSAGE_TYPE] !== MESSAGE_TYPE_STREAM || SPANS[ENVELOPE_SPAN.STREAM] !== 1) {
    REPLIES.ackSpans(frames, SPANS);
    return finish(table, row, KIND_ACK_ONLY, '');
  }

  const payloadStart = SPANS[ENVELOPE_SPAN.PAYLOAD]!;
  const payloadEnd = SPANS[ENVELOPE_SPAN.PAYLOAD + 1]!;
  table[row + SLOT.PAYLOAD_START] = payloadStart;
  table[row + SLOT.PAYLOAD_END] = payloadEnd;
  const topic = topicEnd - topicStart === 1 && frames[topicStart] === 0x56 ? 'V' : latin1.decode(frames.subarray(topicStart, topicEnd));
  // Values only is for V records (the state and samples are theirs); any other is written whole.
  const vo = valuesOnly && topic === 'V';
  if (valuesOnly && !vo) table[row + SLOT.DASHBOARD] = TEXT_LEVEL.RECORD_JSON;
  const messageStart = SINK.n;
  const stateMark = STATE.length;
  SINK.nonAscii = false;
  table[row + SLOT.MESSAGE_START] = messageStart;
  table[row + SLOT.STATE_START] = stateMark / 3;

  // 'V' is known without a Set lookup (nearly every frame).
  if (topic !== 'V' && !KNOWN_TOPICS.has(topic)) {
    // Opaque: the bytes pass through, the dashboard gets a null record.
    writeHead(vin, topic, receivedAt, false);
    table[row + SLOT.RECORD_START] = table[row + SLOT.RECORD_END] = SINK.n;
    if (withDashboardMessage) SINK.ascii('null}');
  } else if (transcode(topic, frames, payloadStart, payloadEnd, vin, receivedAt, table, row, vo)) {
    patchable = INFO.rewrites === INFO.valueRewrites.length;
  } else {
    patchable = false;
    // protobufjs's path writes the record JSON: the row says so (rare; the on-demand text is for the transcoder's rows).
    if (vo) table[row + SLOT.DASHBOARD] = TEXT_LEVEL.RECORD_JSON;
    SINK.n = messageStart;
    STATE.length = stateMark;
    SINK.nonAscii = false;
    transcoderStats.fallbacks++;
    const kind = viaProtobufjs(topic, frames.subarray(payloadStart, payloadEnd), vin, receivedAt, table, row);
    if (kind !== null) {
      SINK.n = messageStart;
      STATE.length = stateMark;
      table[row + SLOT.MESSAGE_START] = 0;
      table[row + SLOT.STATE_START] = 0;
      REPLIES.error(frames.subarray(SPANS[ENVELOPE_SPAN.TXID], SPANS[ENVELOPE_SPAN.TXID + 1]));
      return finish(table, row, KIND_ERROR, kind);
    }
  }
  table[row + SLOT.MESSAGE_END] = SINK.n;
  table[row + SLOT.STATE_END] = STATE.length / 3;
  table[row + SLOT.NON_ASCII] = SINK.nonAscii ? 1 : 0;
  REPLIES.ackSpans(frames, SPANS);
  finish(table, row, KIND_RECORD, '');
}

/** The common path: the generated transcoder. False when the record left it (nothing is kept then). */
function transcode(topic: string, frames: Uint8Array, start: number, end: number, vin: string, receivedAt: number, table: Int32Array, row: number, vo: boolean): boolean {
  headVin = vin;
  headTopic = topic;
  headReceivedAt = receivedAt;
  // Values only writes no VIN and no head: the VIN's JSON is not made (a fleet's frames come from many
  // VINs, so it is rarely the last one's) and the resend flag is read from INFO (no call back per record).
  const vinJson = vo ? NO_VIN_JSON : vinJsonOf(vin);
  if (!TRANSCODER.run(topic, frames, start, end, vinJson.words, STATE, INFO, vo ? null : writeRecordHead, datumValues, vo)) return false;
  // The record JSON holds the VIN (wl: no flag kept): a non-ASCII one makes the row's text UTF-8 (the
  // dashboard message's head says so too, but a record JSON alone has no head).
  if (vinJson.nonAscii) SINK.nonAscii = true;
  gathered = datumValues !== null;
  transcodedCreatedAtMs = INFO.createdAtMs;
  table[row + SLOT.RECORD_START] = INFO.recordStart;
  table[row + SLOT.RECORD_END] = SINK.n;
  table[row + SLOT.SIGNALS] = INFO.signals;
  table[row + SLOT.CREATED_AT_START] = INFO.createdAtStart;
  table[row + SLOT.CREATED_AT_END] = INFO.createdAtEnd;
  table[row + SLOT.IS_RESEND] = INFO.isResend ? 1 : 0;
  writeTail();
  return true;
}

const ON_DEMAND_INFO: TranscodeInfo = { signals: 0, createdAtStart: -1, createdAtEnd: -1, createdAtMs: NaN, rewrites: 0, recordStart: -1, isResend: false, valueRewrites: [] };
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The record JSON of a V record decoded values only (TEXT_LEVEL.VALUES_ONLY), made now from its payload
 * (`frames`[start, end), as the car sent it) by the transcoder that decoded it, for the certificate
 * VIN: the same text the record JSON level writes. On the main thread, while the payload is valid (the
 * record's publish, or DecodedRecord.hold). Not while decodeBatch runs (they share the sink).
 */
export function valuesOnlyRecordJson(frames: Uint8Array, start: number, end: number, vin: string): string | null {
  transcoderStats.recordJsonOnDemand++;
  const mark = SINK.n;
  const nonAscii = SINK.nonAscii;
  SINK.nonAscii = false;
  try {
    const vinJson = vinJsonOf(vin);
    if (TRANSCODER.run('V', frames, start, end, vinJson.words, null, ON_DEMAND_INFO, null, null, false)) {
      const bytes = SINK.bytes.subarray(ON_DEMAND_INFO.recordStart, SINK.n);
      return SINK.nonAscii || vinJson.nonAscii ? utf8.decode(bytes) : latin1.decode(bytes);
    }
    // A row is values only only when the transcoder wrote it; protobufjs's path answers the same should it not now.
    return decodeRecord('V', frames.subarray(start, end), vin).json;
  } finally {
    SINK.n = mark;
    SINK.nonAscii = nonAscii;
  }
}

// The frame transcode() is writing, for writeRecordHead (a module function: no closure per frame).
let headVin = '';
let headTopic = '';
let headReceivedAt = 0;

/** The transcoder's RecordHead: the dashboard message head, now that the record's resend flag is known. */
function writeRecordHead(isResend: boolean): void {
  writeHead(headVin, headTopic, headReceivedAt, isResend);
}

/**
 * The rare path: protobufjs + the canonical writer (decodeRecord), which also gives the verdict of a
 * malformed payload. Returns the error kind, or null when the record was written.
 */
function viaProtobufjs(topic: string, payload: Uint8Array, vin: string, receivedAt: number, table: Int32Array, row: number): string | null {
  let record;
  try {
    record = decodeRecord(topic, payload, vin);
  } catch (error) {
    if (error instanceof PayloadError) return `payload_${error.kind}`;
    throw error;
  }
  const json = record.json ?? 'null';
  writeHead(vin, topic, receivedAt, record.isResend);
  const recordStart = SINK.n;
  SINK.text(json);
  table[row + SLOT.RECORD_START] = recordStart;
  table[row + SLOT.RECORD_END] = SINK.n;
  table[row + SLOT.SIGNALS] = record.signals;
  table[row + SLOT.IS_RESEND] = record.isResend ? 1 : 0;
  if (record.createdAt !== null) {
    // The top-level created_at is the last unescaped "createdAt":" of every record type's JSON.
    const at = recordStart + Buffer.byteLength(json.slice(0, json.lastIndexOf(CREATED_AT_KEY) + CREATED_AT_KEY.length));
    table[row + SLOT.CREATED_AT_START] = at;
    table[row + SLOT.CREATED_AT_END] = at + record.createdAt.length;
  }
  if (record.state !== null) {
    // The canonical writer lays a V record out as {"data":[{"key":K,"value":V},...],... (K the quoted
    // Field name, or the bare number of an unknown one), so positions follow from the byte lengths.
    let cursor = recordStart + RECORD_DATA_HEAD.length;
    for (const { field, value } of record.state) {
      const known = FIELD_NUMBERS.get(field);
      const keyLength = known === undefined ? field.length : field.length + 2;
      const valueStart = cursor + DATUM_KEY_HEAD.length + keyLength + DATUM_VALUE_HEAD.length;
      const valueEnd = valueStart + Buffer.byteLength(value);
      STATE.push(known ?? Number(field), valueStart, valueEnd);
      cursor = valueEnd + DATUM_TAIL_AND_COMMA.length;
    }
  }
  writeTail();
  return null;
}

function finish(table: Int32Array, row: number, kind: number, errorKind: string): void {
  table[row + SLOT.KIND] = kind;
  // No error, nearly every frame: code 0 without a Map lookup (a cold one cost a lone frame ~0.2 µs, BENCHMARKS.md, engineer D, session 9).
  table[row + SLOT.ERROR_KIND] = errorKind === '' ? 0 : (ERROR_CODES.get(errorKind) ?? ERROR_CODES.get('internal')!);
  table[row + SLOT.REPLY_END] = REPLIES.length;
}

/** A view's [start, end) in the batch's frames buffer, in two adjacent slots. */
function setSpan(table: Int32Array, slot: number, view: Uint8Array): void {
  table[slot] = view.byteOffset;
  table[slot + 1] = view.byteOffset + view.byteLength;
}

function topicText(bytes: Uint8Array): string {
  return bytes.length === 1 && bytes[0] === 0x56 ? 'V' : latin1.decode(bytes);
}

interface VinJson {
  /** The VIN as JSON text, UTF-8, in toWords' layout (written by word stores, not a byte loop). */
  words: Int32Array;
  nonAscii: boolean;
}

/**
 * The VIN of the frame being decoded, as JSON text. No cache per VIN: a car's entry outlived its
 * frames in every thread that decoded one (external memory per idle car), and a bounded cache cleared
 * itself over and over once a fleet had more cars than its bound. A plain VIN (printable ASCII, no
 * quote or backslash, as certificates give) is packed into one scratch array of words, a few dozen ns
 * (it is written twice, head and record: word stores, not two byte loops); it is read only while the
 * frame is decoded. A car's frames in a row reuse it.
 */
const VIN_MAX_PLAIN = 256;
const PLAIN_VIN_JSON: VinJson = { words: new Int32Array(1 + ((VIN_MAX_PLAIN + 2 + 3) >> 2)), nonAscii: false };
let lastVin = '';
let lastVinJson: VinJson | null = null;
/** What a values-only record is given for the VIN it does not write. */
const NO_VIN_JSON: VinJson = { words: toWords(''), nonAscii: false };
function vinJsonOf(vin: string): VinJson {
  if (vin === lastVin && lastVinJson !== null) return lastVinJson;
  lastVin = vin;
  lastVinJson = plainVinJson(vin) ?? escapedVinJson(vin);
  return lastVinJson;
}

function plainVinJson(vin: string): VinJson | null {
  const length = vin.length;
  if (length > VIN_MAX_PLAIN) return null;
  const words = PLAIN_VIN_JSON.words;
  // Character k of the JSON text is byte k & 3 of word 1 + (k >> 2): the quote, the VIN, the quote.
  let word = 0x22;
  let at = 1;
  for (let i = 0; i < length; i++) {
    const c = vin.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return null;
    const k = i + 1;
    word |= c << (8 * (k & 3));
    if ((k & 3) === 3) {
      words[at++] = word;
      word = 0;
    }
  }
  words[at] = word | (0x22 << (8 * ((length + 1) & 3)));
  words[0] = length + 2;
  return PLAIN_VIN_JSON;
}

function escapedVinJson(vin: string): VinJson {
  const json = JSON.stringify(vin);
  return { words: bytesToWords(new TextEncoder().encode(json)), nonAscii: /[^\x00-\x7f]/.test(json) };
}

/** The VIN's own bytes for the normalised protobuf (latin1: used only when the VIN is ASCII). */
const VIN_RAW = new Uint8Array(VIN_MAX_PLAIN);
/** VIN_RAW's views by length, made once (a view per frame was an allocation per normalised record). */
const VIN_RAW_VIEWS: Array<Uint8Array | undefined> = [];
function vinRawOf(vin: string): Uint8Array {
  const length = vin.length;
  if (length > VIN_MAX_PLAIN) return Buffer.from(vin, 'latin1');
  for (let i = 0; i < length; i++) VIN_RAW[i] = vin.charCodeAt(i);
  return (VIN_RAW_VIEWS[length] ??= VIN_RAW.subarray(0, length));
}

/**
 * writeRecordMessageHead's bytes for V records around the VIN and the receivedAt text (rendered once
 * with marks in their places): per record only those two change. The framing stays defined there.
 */
const V_HEAD = ((): { beforeVin: Int32Array; beforeReceivedAt: Int32Array; plain: Int32Array; resend: Int32Array } => {
  const vinMark = '\u0002';
  const receivedAtMark = '\u0001'.repeat(24);
  const scratch = new JsonSink(1024);
  const render = (isResend: boolean): string[] => {
    scratch.n = 0;
    writeRecordMessageHead(scratch, toWords(vinMark), 'V', receivedAtMark, isResend);
    const text = latin1.decode(scratch.bytes.subarray(0, scratch.n));
    const vinAt = text.indexOf(vinMark);
    const at = text.lastIndexOf(receivedAtMark);
    if (vinAt < 0 || at < vinAt) throw new Error('record message head: the VIN must come before receivedAt');
    return [text.slice(0, vinAt), text.slice(vinAt + 1, at), text.slice(at + receivedAtMark.length)];
  };
  const [beforeVin, beforeReceivedAt, plain] = render(false) as [string, string, string];
  const resendParts = render(true);
  if (resendParts[0] !== beforeVin || resendParts[1] !== beforeReceivedAt) throw new Error('record message head: the resend flag changed what comes before receivedAt');
  return { beforeVin: toWords(beforeVin), beforeReceivedAt: toWords(beforeReceivedAt), plain: toWords(plain), resend: toWords(resendParts[2]!) };
})();

/** The frame being decoded has a dashboard watching its VIN: write the message around its record. */
let withDashboardMessage = true;
/** Nothing reads the frame's record text (TEXT_LEVEL.VALUES_ONLY, samples read here): a V record is written values only. */
let valuesOnly = false;

/** The dashboard message's closing brace, when there is a message. */
function writeTail(): void {
  if (withDashboardMessage) SINK.byte(RECORD_MESSAGE_TAIL);
}

let lastReceivedAt = Number.NaN;
/** lastReceivedAt's ISO text, made when first needed ('' until then: only topics other than V need it). */
let lastReceivedAtText = '';
/** lastReceivedAt's ISO text as words (toWords' layout), rewritten in place; false: not written. */
const RECEIVED_AT_WORDS = new Int32Array(1 + 7);
let receivedAtInWords = false;

/** toISOString of receivedAt (an instant: NaN throws the RangeError it always did). */
function receivedAtText(): string {
  if (lastReceivedAtText === '') lastReceivedAtText = new Date(lastReceivedAt).toISOString();
  return lastReceivedAtText;
}

/** Milliseconds of 10000-01-01T00:00:00Z: before it toISOString writes a four-digit year. */
const YEAR_10000_MS = 253402300800000;
/** Digit pairs 00-99 as two character codes in one number (tens << 8 | units). */
const PAIRS = Uint16Array.from({ length: 100 }, (_, n) => ((48 + Math.floor(n / 10)) << 8) | (48 + (n % 10)));

/**
 * new Date(ms).toISOString() as words (toWords' layout) without the Date, its C++ builtin or the string:
 * a lone frame has a receivedAt of its own, so this ran once per frame in the sparse regime. Whole ms
 * from 1970 to 9999 only (the text is then `YYYY-MM-DDTHH:mm:ss.sssZ`, 24 characters); false otherwise.
 */
function isoWordsInto(words: Int32Array, ms: number): boolean {
  if (!(ms >= 0 && ms < YEAR_10000_MS) || Math.floor(ms) !== ms) return false;
  const days = Math.floor(ms / 86400000);
  let rest = ms - days * 86400000;
  const ymd = civilYmd(days);
  const year = Math.floor(ymd / 10000);
  const month = Math.floor(ymd / 100) % 100;
  const day = ymd % 100;
  const hour = Math.floor(rest / 3600000);
  rest -= hour * 3600000;
  const minute = Math.floor(rest / 60000);
  rest -= minute * 60000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  const century = Math.floor(year / 100);
  const yy = PAIRS[century]!, yu = PAIRS[year - century * 100]!, mo = PAIRS[month]!, dd = PAIRS[day]!;
  const hh = PAIRS[hour]!, mi = PAIRS[minute]!, ss = PAIRS[second]!, m3 = PAIRS[Math.floor(milli / 10)]!;
  // Characters c0..c3 of a word are its bytes from the lowest (see toWords).
  const word = (c0: number, c1: number, c2: number, c3: number): number => c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
  words[0] = 24;
  words[1] = word(yy >> 8, yy & 255, yu >> 8, yu & 255); // YYYY
  words[2] = word(45, mo >> 8, mo & 255, 45); // -MM-
  words[3] = word(dd >> 8, dd & 255, 84, hh >> 8); // DDTh
  words[4] = word(hh & 255, 58, mi >> 8, mi & 255); // h:mm
  words[5] = word(58, ss >> 8, ss & 255, 46); // :ss.
  words[6] = word(m3 >> 8, m3 & 255, 48 + (milli % 10), 90); // sssZ
  words[7] = 0;
  return true;
}

/** The dashboard `record` message up to its record: `...,"record":`. */
function writeHead(vin: string, topic: string, receivedAt: number, isResend: boolean): void {
  // Nobody watches this VIN: the record costs no dashboard bytes (the hub builds the message should a
  // dashboard subscribe before the record reaches it; see dashboardMessageOf).
  if (!withDashboardMessage) return;
  // Frames of a batch mostly arrived within the same few milliseconds.
  if (receivedAt !== lastReceivedAt) {
    lastReceivedAtText = '';
    receivedAtInWords = isoWordsInto(RECEIVED_AT_WORDS, receivedAt);
    if (!receivedAtInWords) {
      const text = new Date(receivedAt).toISOString();
      lastReceivedAtText = text;
      if (text.length <= 28) {
        wordsInto(RECEIVED_AT_WORDS, text);
        receivedAtInWords = true;
      }
    }
    // Set once the text is known: a receivedAt that threw is not taken as written by the next frame.
    lastReceivedAt = receivedAt;
  }
  const vinJson = vinJsonOf(vin);
  if (vinJson.nonAscii) {
    SINK.nonAscii = true;
  } else if (topic === 'V' && receivedAtInWords) {
    SINK.words(V_HEAD.beforeVin);
    SINK.words(vinJson.words);
    SINK.words(V_HEAD.beforeReceivedAt);
    SINK.words(RECEIVED_AT_WORDS);
    SINK.words(isResend ? V_HEAD.resend : V_HEAD.plain);
    return;
  }
  writeRecordMessageHead(SINK, vinJson.words, topic, receivedAtText(), isResend);
}

/** toWords(text) written into `words` (room for 4 * (words.length - 1) characters), no allocation. */
function wordsInto(words: Int32Array, text: string): void {
  const length = Math.min(text.length, 4 * (words.length - 1));
  words.fill(0);
  words[0] = length;
  for (let i = 0; i < length; i++) words[1 + (i >> 2)]! |= (text.charCodeAt(i) & 0x7f) << (8 * (i & 3));
}

/**
 * The main thread's half as one FrameOutcome per row (tests, the fuzz oracle, tools). The hot path
 * reads the rows by index from a DecodedBatch instead (DecodePool.deliver), making no object per frame.
 * Call it once per result: the state offsets are rebased in place (the buffer was transferred to this
 * thread). `vins`: the task's, for the record JSON of rows decoded values only (made on demand).
 */
export function receiveOutcomes(result: DecodeResult, frames: SharedArrayBuffer | ArrayBuffer, vins?: readonly string[]): FrameOutcome[] {
  const batch = new DecodedBatch(result, frames);
  const outcomes = new Array<FrameOutcome>(batch.count);
  for (let i = 0; i < batch.count; i++) outcomes[i] = batch.outcome(i, vins?.[i]);
  return outcomes;
}

/** The name of a state triple's Field number, as decodeRecord's state entries give it. */
export function stateFieldName(fieldNumber: number): string {
  return FIELD_NAMES[fieldNumber] ?? String(fieldNumber);
}
