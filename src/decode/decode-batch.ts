import {
  EnvelopeError,
  MESSAGE_TYPE_STREAM,
  readEnvelope,
  writeAck,
  writeErrorReply,
} from '../protocol/envelope.js';
import { PayloadError, decodeRecord } from '../protocol/payload.js';
import type { DecodeResult, DecodeTask, FrameOutcome } from './decode-task.js';

const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder('latin1');

/**
 * Decode one batch of frames: envelope -> topic -> protobuf -> validate -> normalise -> canonical JSON,
 * and the reply each frame will get. Runs in a decode worker; pure so it is tested without threads.
 * Every frame yields exactly one outcome and one reply, whatever its bytes.
 */
export function decodeBatch(task: DecodeTask): DecodeResult {
  const frames = new Uint8Array(task.frames);
  const count = task.vins.length;
  const outcomes: FrameOutcome[] = new Array(count);
  const replies: Uint8Array[] = new Array(count);
  let repliesLength = 0;

  for (let i = 0; i < count; i++) {
    const start = task.offsets[i];
    const frame = frames.subarray(start, task.offsets[i + 1]);
    const { outcome, reply } = decodeFrame(frame, start, task.vins[i], task.receivedAt[i]);
    outcome.replyStart = repliesLength;
    repliesLength += reply.byteLength;
    outcome.replyEnd = repliesLength;
    outcomes[i] = outcome;
    replies[i] = reply;
  }

  const packed = new Uint8Array(repliesLength);
  for (let i = 0, at = 0; i < count; i++) {
    packed.set(replies[i], at);
    at += replies[i].byteLength;
  }
  return { replies: packed.buffer, outcomes };
}

function decodeFrame(
  frame: Uint8Array,
  frameStart: number,
  vin: string,
  receivedAt: number,
): { outcome: FrameOutcome; reply: Uint8Array } {
  let envelope;
  try {
    envelope = readEnvelope(frame);
  } catch (error) {
    // Address the error reply to the txid when it was readable before the damage; otherwise empty.
    if (error instanceof EnvelopeError) {
      const txid = error.txid ?? EMPTY;
      return { outcome: errorOutcome(latin1.decode(txid), '', `envelope_${error.kind}`), reply: writeErrorReply(txid) };
    }
    return { outcome: errorOutcome('', '', 'envelope_unexpected'), reply: writeErrorReply(EMPTY) };
  }
  const txid = latin1.decode(envelope.txid);
  const topic = latin1.decode(envelope.topic);

  if (envelope.messageType !== MESSAGE_TYPE_STREAM || envelope.stream === null) {
    return { outcome: baseOutcome('ack_only', txid, topic), reply: writeAck(envelope.txid, envelope.topic) };
  }

  const payload = envelope.stream.payload;
  let record;
  try {
    record = decodeRecord(topic, payload, vin);
  } catch (error) {
    const kind = error instanceof PayloadError ? `payload_${error.kind}` : 'payload_unexpected';
    return { outcome: errorOutcome(txid, topic, kind), reply: writeErrorReply(envelope.txid) };
  }

  const outcome = baseOutcome('record', txid, topic);
  outcome.recordJson = record.json;
  outcome.signals = record.signals;
  outcome.createdAt = record.createdAt;
  outcome.isResend = record.isResend;
  outcome.payloadStart = frameStart + payload.byteOffset - frame.byteOffset;
  outcome.payloadEnd = outcome.payloadStart + payload.byteLength;
  if (record.state !== null) {
    const state: string[] = new Array(record.state.length * 2);
    for (let i = 0; i < record.state.length; i++) {
      state[2 * i] = record.state[i].field;
      state[2 * i + 1] = record.state[i].value;
    }
    outcome.state = state;
  }
  outcome.dashboardMessage = dashboardRecordMessage(vin, topic, receivedAt, record.json, record.isResend);
  return { outcome, reply: writeAck(envelope.txid, envelope.topic) };
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
  return (
    '{"type":"record","vin":' + JSON.stringify(vin) +
    ',"topic":' + JSON.stringify(topic) +
    ',"receivedAt":"' + new Date(receivedAt).toISOString() +
    '"' + (isResend ? ',"resend":true' : '') +
    ',"record":' + (recordJson ?? 'null') + '}'
  );
}

function baseOutcome(kind: FrameOutcome['kind'], txid: string, topic: string): FrameOutcome {
  return {
    kind, txid, topic,
    replyStart: 0, replyEnd: 0,
    errorKind: null,
    recordJson: null, dashboardMessage: null,
    signals: 0, state: null, createdAt: null, isResend: false,
    payloadStart: 0, payloadEnd: 0,
  };
}

function errorOutcome(txid: string, topic: string, errorKind: string): FrameOutcome {
  const outcome = baseOutcome('error', txid, topic);
  outcome.errorKind = errorKind;
  return outcome;
}
