import {
  EnvelopeError,
  MESSAGE_TYPE_STREAM,
  ackByteLength,
  readEnvelope,
  writeAckInto,
  writeErrorReply,
} from '../protocol/envelope.js';
import { FIELD_NAMES, PayloadError, decodeRecord, type StateEntry } from '../protocol/payload.js';
import type { DecodeResult, DecodeTask, FrameOutcome } from './decode-task.js';

const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder('latin1');
const FIELD_NUMBERS = new Map(FIELD_NAMES.map((name, number) => [name, number]));
const RECORD_DATA_HEAD = '{"data":[';
const DATUM_KEY_HEAD = '{"key":';
const DATUM_VALUE_HEAD = ',"value":';
const DATUM_TAIL_AND_COMMA = '},';

/**
 * Decode one batch of frames: envelope -> topic -> protobuf -> validate -> normalise -> canonical JSON,
 * and the reply each frame will get. Runs in a decode worker; pure so it is tested without threads.
 * Every frame yields exactly one outcome and one reply, whatever its bytes.
 */
export function decodeBatch(task: DecodeTask): DecodeResult {
  const frames = new Uint8Array(task.frames);
  const count = task.vins.length;
  const outcomes: FrameOutcome[] = new Array(count);
  const state: number[] = [];
  const replies = REPLIES;
  replies.length = 0;

  for (let i = 0; i < count; i++) {
    const start = task.offsets[i];
    const frame = frames.subarray(start, task.offsets[i + 1]);
    const replyStart = replies.length;
    const outcome = decodeFrame(frame, start, task.vins[i], task.receivedAt[i], state, replies);
    outcome.replyStart = replyStart;
    outcome.replyEnd = replies.length;
    outcomes[i] = outcome;
  }
  return { replies: replies.bytes.slice(0, replies.length).buffer, state: Uint32Array.from(state).buffer, outcomes };
}

/**
 * The replies of a batch, written back to back into one buffer kept across batches: one allocation
 * per batch (the copy that is transferred) instead of one per reply plus the packing.
 */
class ReplyBuffer {
  bytes = new Uint8Array(64 * 1024);
  length = 0;

  ack(txid: Uint8Array, topic: Uint8Array): void {
    this.reserve(ackByteLength(txid, topic));
    this.length = writeAckInto(this.bytes, this.length, txid, topic);
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

/** decodeBatch runs to completion one batch at a time, so one buffer serves every batch of a thread. */
const REPLIES = new ReplyBuffer();

/**
 * The main thread's half of an outcome: the record JSON and the state index as views of what crossed
 * (a slice of the dashboard message, a subarray of the batch's state buffer), no copies.
 */
export function receiveOutcome(outcome: FrameOutcome, state: Uint32Array): FrameOutcome {
  if (outcome.dashboardMessage !== null && outcome.recordEnd > outcome.recordStart) {
    outcome.recordJson = outcome.dashboardMessage.slice(outcome.recordStart, outcome.recordEnd);
  }
  if (outcome.stateEnd > outcome.stateStart) {
    outcome.state = state.subarray(outcome.stateStart * 3, outcome.stateEnd * 3);
  }
  return outcome;
}

/** The name of a state triple's Field number, as decodeRecord's state entries give it. */
export function stateFieldName(fieldNumber: number): string {
  return FIELD_NAMES[fieldNumber] ?? String(fieldNumber);
}

function decodeFrame(
  frame: Uint8Array,
  frameStart: number,
  vin: string,
  receivedAt: number,
  stateOut: number[],
  replies: ReplyBuffer,
): FrameOutcome {
  let envelope;
  try {
    envelope = readEnvelope(frame);
  } catch (error) {
    // Address the error reply to the txid when it was readable before the damage; otherwise empty.
    if (error instanceof EnvelopeError) {
      const txid = error.txid ?? EMPTY;
      replies.error(txid);
      return errorOutcome(latin1.decode(txid), '', `envelope_${error.kind}`);
    }
    replies.error(EMPTY);
    return errorOutcome('', '', 'envelope_unexpected');
  }
  const txid = latin1.decode(envelope.txid);
  const topic = latin1.decode(envelope.topic);

  if (envelope.messageType !== MESSAGE_TYPE_STREAM || envelope.stream === null) {
    replies.ack(envelope.txid, envelope.topic);
    return baseOutcome('ack_only', txid, topic);
  }

  const payload = envelope.stream.payload;
  let record;
  try {
    record = decodeRecord(topic, payload, vin);
  } catch (error) {
    const kind = error instanceof PayloadError ? `payload_${error.kind}` : 'payload_unexpected';
    replies.error(envelope.txid);
    return errorOutcome(txid, topic, kind);
  }

  const outcome = baseOutcome('record', txid, topic);
  outcome.signals = record.signals;
  outcome.createdAt = record.createdAt;
  outcome.isResend = record.isResend;
  outcome.payloadStart = frameStart + payload.byteOffset - frame.byteOffset;
  outcome.payloadEnd = outcome.payloadStart + payload.byteLength;
  const head = dashboardMessageHead(vin, topic, receivedAt, record.isResend);
  if (record.json === null) {
    outcome.dashboardMessage = head + 'null}';
  } else {
    outcome.dashboardMessage = head + record.json + '}';
    outcome.recordStart = head.length;
    outcome.recordEnd = head.length + record.json.length;
    if (record.state !== null) {
      outcome.stateStart = stateOut.length / 3;
      indexState(record.state, head.length, stateOut);
      outcome.stateEnd = stateOut.length / 3;
    }
  }
  replies.ack(envelope.txid, envelope.topic);
  return outcome;
}

/**
 * Where each datum's Value JSON sits in the record JSON, as triples [Field number, start, end] offset
 * by `base`. The canonical writer lays a V record out as `{"data":[{"key":K,"value":V},...],...` (data
 * is Payload field 1, key and value Datum fields 1 and 2, K the quoted Field name or the bare number
 * of an unknown one), so positions follow from the lengths alone. Searching the text instead would
 * flatten it here, once more than the clone back to the main thread already does; the unit and fuzz
 * tests check every position against decodeRecord's state.
 */
function indexState(state: StateEntry[], base: number, out: number[]): void {
  let cursor = base + RECORD_DATA_HEAD.length;
  for (let i = 0; i < state.length; i++) {
    const { field, value } = state[i];
    const known = FIELD_NUMBERS.get(field);
    const keyLength = known === undefined ? field.length : field.length + 2;
    const start = cursor + DATUM_KEY_HEAD.length + keyLength + DATUM_VALUE_HEAD.length;
    const end = start + value.length;
    out.push(known ?? Number(field), start, end);
    cursor = end + DATUM_TAIL_AND_COMMA.length;
  }
}

/**
 * The dashboard `record` message, built here once so the main thread only publishes it. VIN and topic
 * are JSON-escaped; the record is already canonical JSON text.
 */
export function dashboardRecordMessage(
  vin: string,
  topic: string,
  receivedAt: number,
  recordJson: string | null,
  isResend = false,
): string {
  return dashboardMessageHead(vin, topic, receivedAt, isResend) + (recordJson ?? 'null') + '}';
}

let lastReceivedAt = Number.NaN;
let lastReceivedAtText = '';

/** The dashboard `record` message up to its record: `...,"record":`. */
function dashboardMessageHead(vin: string, topic: string, receivedAt: number, isResend: boolean): string {
  // Frames of a batch mostly arrived within the same few milliseconds.
  if (receivedAt !== lastReceivedAt) {
    lastReceivedAt = receivedAt;
    lastReceivedAtText = new Date(receivedAt).toISOString();
  }
  return (
    '{"type":"record","vin":' + JSON.stringify(vin) +
    ',"topic":' + JSON.stringify(topic) +
    ',"receivedAt":"' + lastReceivedAtText +
    '"' + (isResend ? ',"resend":true' : '') +
    ',"record":'
  );
}

function baseOutcome(kind: FrameOutcome['kind'], txid: string, topic: string): FrameOutcome {
  return {
    kind, txid, topic,
    replyStart: 0, replyEnd: 0,
    errorKind: null,
    dashboardMessage: null, recordStart: 0, recordEnd: 0, recordJson: null,
    signals: 0, stateStart: 0, stateEnd: 0, state: null, createdAt: null, isResend: false,
    payloadStart: 0, payloadEnd: 0,
  };
}

function errorOutcome(txid: string, topic: string, errorKind: string): FrameOutcome {
  const outcome = baseOutcome('error', txid, topic);
  outcome.errorKind = errorKind;
  return outcome;
}
