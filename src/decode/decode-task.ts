/**
 * What crosses the thread boundary between the vehicle listener and a decode worker. Frames of one
 * event-loop turn sit in one SharedArrayBuffer that both threads read (no copy, no transfer); replies
 * and the last-known state index come back packed in transferred ArrayBuffers, and outcomes as one
 * small structured clone. Each record's text crosses once, inside its dashboard message: the record
 * JSON and every state value are slices of it (V8 makes sliced strings, no copy).
 */
export interface DecodeTask {
  /** The frames of the batch, back to back (a SharedArrayBuffer: the main thread keeps reading it). */
  frames: SharedArrayBuffer;
  /** n + 1 offsets into `frames`: frame i is [offsets[i], offsets[i+1]). */
  offsets: Uint32Array;
  /** The certificate VIN of each frame's connection (identity never comes from the frame). */
  vins: string[];
  /** Epoch milliseconds each frame arrived. */
  receivedAt: Float64Array;
}

export type OutcomeKind =
  /** Decoded record: publish it, ack when the bus says it is safe. */
  | 'record'
  /** Not a stream message (no union or another type): ack once, nothing to publish. */
  | 'ack_only'
  /** Undecodable: reply with the error envelope. */
  | 'error';

export interface FrameOutcome {
  kind: OutcomeKind;
  /** txid and topic as text, for logs and the bus; '' when the envelope was unreadable. */
  txid: string;
  topic: string;
  /** The reply for this frame: [replyStart, replyEnd) of DecodeResult.replies. */
  replyStart: number;
  replyEnd: number;
  /** Why a frame got the error reply (bounded set, used as a metric label). */
  errorKind: string | null;
  /** kind === 'record' only: */
  dashboardMessage: string | null;
  /** The record's canonical JSON is dashboardMessage[recordStart, recordEnd). */
  recordStart: number;
  recordEnd: number;
  /** Set on the main thread (receiveOutcome): the slice [recordStart, recordEnd); null from the worker. */
  recordJson: string | null;
  signals: number;
  /** V records: entries [stateStart, stateEnd) of DecodeResult.state. */
  stateStart: number;
  stateEnd: number;
  /**
   * Set on the main thread (receiveOutcome), null from the worker: the record's last-known state as
   * triples [Field number, valueStart, valueEnd], the datum's Value JSON being
   * dashboardMessage[valueStart, valueEnd).
   */
  state: Uint32Array | null;
  /** RFC 3339 of the record's own created_at, when it had one. */
  createdAt: string | null;
  isResend: boolean;
  /** The protobuf payload inside the task's frames buffer: [payloadStart, payloadEnd). */
  payloadStart: number;
  payloadEnd: number;
}

export interface DecodeResult {
  replies: ArrayBuffer;
  /** Uint32 triples [Field number, valueStart, valueEnd] of every V record's datums (see FrameOutcome.state). */
  state: ArrayBuffer;
  outcomes: FrameOutcome[];
}
