// Runs frames through the real decode path (decodeBatch, the function the decode workers run) and checks
// every promise the server makes a car about a frame, whatever its bytes: exactly one reply, the reply
// is a readable envelope, its kind matches the outcome, it is addressed to the frame's txid and topic,
// and a record really is what the frame carried.
import { decodeBatch, receiveOutcomes } from '../../../src/decode/decode-batch.js';
import { resultReplies, type DecodeResult, type FrameOutcome } from '../../../src/decode/decode-task.js';
import {
  INCORRECT_MESSAGE_FORMAT,
  MESSAGE_TYPE_STREAM,
  MESSAGE_TYPE_STREAM_ACK,
  readEnvelope,
  type Envelope,
} from '../../../src/protocol/envelope.js';
import { packFrames } from '../../helpers/decode-task.js';

export const FUZZ_VIN = '5YJ3E7EB0LF000001';
/** An ack is a 60-byte head plus two padded vectors; an error reply 104 plus one: never much more than the frame. */
const REPLY_OVERHEAD_BYTES = 112;

const latin1 = new TextDecoder('latin1');

export class OracleViolation extends Error {
  override readonly name = 'OracleViolation';
  constructor(message: string, readonly frame: Uint8Array) {
    super(message);
  }
}

export interface BatchVerdict {
  outcomes: FrameOutcome[];
  replies: Uint8Array[];
  elapsedMs: number;
}

/** Runs frames through decodeBatch, packed the way DecodePool packs them. */
export function runBatch(frames: readonly Uint8Array[], vin = FUZZ_VIN): { result: DecodeResult; shared: SharedArrayBuffer; elapsedMs: number } {
  const task = packFrames(frames, vin, Date.now());
  const started = performance.now();
  const result = decodeBatch(task);
  return { result, shared: task.frames, elapsedMs: performance.now() - started };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function readFrame(frame: Uint8Array): Envelope | null {
  try {
    return readEnvelope(frame);
  } catch {
    return null;
  }
}

/** Decodes the frames as one batch and throws OracleViolation at the first broken promise. */
export function checkBatch(frames: readonly Uint8Array[], vin = FUZZ_VIN): BatchVerdict {
  const { result, shared, elapsedMs } = runBatch(frames, vin);
  // What the main thread makes of what crossed (record JSON and state as views of the dashboard message).
  const outcomes = receiveOutcomes(result, shared);
  const repliesBuffer = resultReplies(result);
  if (outcomes.length !== frames.length) {
    throw new OracleViolation(`${frames.length} frames gave ${outcomes.length} outcomes`, frames[0]!);
  }
  const replies: Uint8Array[] = [];
  let expectedStart = 0;
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i]!;
    const outcome = outcomes[i]!;
    const fail = (why: string): never => {
      throw new OracleViolation(`frame ${i} (${frame.length} bytes, outcome ${outcome.kind}/${outcome.errorKind}): ${why}`, frame);
    };
    if (outcome.replyStart !== expectedStart || outcome.replyEnd <= outcome.replyStart) fail('replies are not one per frame, back to back');
    expectedStart = outcome.replyEnd;
    const replyBytes = repliesBuffer.subarray(outcome.replyStart, outcome.replyEnd);
    replies.push(replyBytes);
    if (replyBytes.length > frame.length + REPLY_OVERHEAD_BYTES) fail(`reply of ${replyBytes.length} bytes is larger than the frame allows`);

    let reply: Envelope;
    try {
      reply = readEnvelope(replyBytes);
    } catch (error) {
      return fail(`reply does not parse: ${(error as Error).message}`);
    }
    const replyTxid = latin1.decode(reply.txid);
    const replyTopic = latin1.decode(reply.topic);
    if (replyTxid !== outcome.txid) fail(`reply txid ${JSON.stringify(replyTxid)} is not the outcome's ${JSON.stringify(outcome.txid)}`);

    const envelope = readFrame(frame);
    if (outcome.kind === 'error') {
      if (reply.messageType !== MESSAGE_TYPE_STREAM || reply.stream === null) fail('error outcome without an error reply');
      if (latin1.decode(reply.stream!.payload) !== INCORRECT_MESSAGE_FORMAT) fail('error reply text is wrong');
      if (replyTopic !== '') fail('error reply carries a topic');
      if (outcome.errorKind === null) fail('error outcome without a kind');
      if (envelope === null && !outcome.errorKind!.startsWith('envelope_')) fail('unreadable envelope reported as something else');
      if (envelope !== null && !same(reply.txid, envelope.txid)) fail('error reply not addressed to the frame txid');
      continue;
    }

    if (reply.messageType !== MESSAGE_TYPE_STREAM_ACK) fail(`${outcome.kind} outcome answered with message type ${reply.messageType}`);
    if (envelope === null) return fail('an unreadable envelope was acked');
    if (!same(reply.txid, envelope.txid) || !same(reply.topic, envelope.topic)) fail('ack not addressed to the frame txid and topic');
    if (replyTopic !== outcome.topic) fail('ack topic is not the outcome topic');
    const isStream = envelope.messageType === MESSAGE_TYPE_STREAM && envelope.stream !== null;
    if (outcome.kind === 'ack_only' && isStream) fail('a stream message was acked without being decoded');
    if (outcome.kind === 'record') {
      if (!isStream) fail('a record came out of a non-stream message');
      const payload = frame.subarray(outcome.payloadStart - offsetOf(frames, i), outcome.payloadEnd - offsetOf(frames, i));
      if (!same(payload, envelope.stream!.payload)) fail('record payload range is not the frame payload');
      if (outcome.recordJson !== null) {
        let record: { vin?: unknown };
        try {
          record = JSON.parse(outcome.recordJson) as { vin?: unknown };
        } catch {
          return fail('record JSON does not parse');
        }
        if (['V', 'alerts', 'errors', 'connectivity'].includes(outcome.topic) && record.vin !== vin) {
          fail(`record VIN ${String(record.vin)} is not the certificate VIN`);
        }
      }
      try {
        JSON.parse(outcome.dashboardMessage ?? '');
      } catch {
        fail('dashboard message does not parse');
      }
      const state = outcome.state ?? new Uint32Array(0);
      for (let s = 0; s < state.length; s += 3) {
        try {
          JSON.parse(outcome.dashboardMessage!.slice(state[s + 1], state[s + 2]));
        } catch {
          fail(`state entry ${s / 3} is not a JSON value of the dashboard message`);
        }
      }
    }
  }
  if (expectedStart !== repliesBuffer.length) throw new OracleViolation('reply buffer holds more than the replies', frames[0]!);
  return { outcomes, replies, elapsedMs };
}

function offsetOf(frames: readonly Uint8Array[], index: number): number {
  let at = 0;
  for (let i = 0; i < index; i++) at += frames[i]!.length;
  return at;
}

/** The bounded label of an outcome, e.g. `record`, `ack_only`, `error:payload_protobuf`. */
export function outcomeLabel(outcome: FrameOutcome): string {
  return outcome.kind === 'error' ? `error:${outcome.errorKind}` : outcome.kind;
}
