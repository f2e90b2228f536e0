import type { MessagePort } from 'node:worker_threads';
/**
 * What crosses the thread boundary between the vehicle listener and a decode worker. Frames of one
 * event-loop turn sit in one SharedArrayBuffer that both threads read (no copy, no transfer); what
 * comes back is one transferred ArrayBuffer: a numeric row per frame, the last-known state index, the
 * replies and the dashboard messages as UTF-8 (DecodeResult). Each record's text crosses once, inside
 * its dashboard message: the record JSON and every state value are slices of it (V8 makes sliced strings, no copy).
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
  /**
   * Also encode each decoded record normalised, as protobuf (certificate VIN, Location, ...; unknown
   * fields kept): what a bus that stores protobuf bodies stores. Off, it costs nothing.
   */
  normalise?: boolean;
  /**
   * Per frame, the text its record gets (TEXT_LEVEL): 1 when some dashboard watches its VIN (the
   * dashboard message around the record JSON), 0 the record JSON alone, 2 its values alone when nothing
   * reads its text (a V record's datum Values and created_at: what the state, the samples and the
   * table read; the record JSON is made on demand from the payload, DecodedBatch.recordJson). Absent:
   * every frame gets its dashboard message.
   */
  watched?: Uint8Array;
  /**
   * Read the recent history's signals of each V record here (the samples section of DecodeResult);
   * absent: true. False leaves them to the history, which reads them from the text when it folds
   * (after the acks, but at ~3x the transcoder's cost: the pool asks for them inline too).
   */
  samples?: boolean;
}

/** The one piscina task a decode worker runs (workers/decode-channel.ts): it serves `port` until it closes. */
export interface DecodeChannelTask {
  port: MessagePort;
  /** The decode module (what a piscina task would name): its default export decodes each message. */
  workerFile: string;
}

/**
 * A car-frame batch as it travels on a worker's port: the columns of the DecodeTask sit in the shared
 * buffer after the frames (columnsAt, 8-byte aligned: offsets Uint32 x count+1, then receivedAt Float64
 * x count, then watched Uint8 x count), and the VINs are one string joined by '\n'. An array, not an
 * object: an object's keys are each serialised and looked up again on the other side (BENCHMARKS.md,
 * engineer X session 8: ~0.6 µs of the main thread per round trip with the answer's row), and three
 * typed arrays and a string per frame would each cost the post its own serialiser step. After the five
 * fields come result buffers of earlier batches the main thread is done with, handed back (transferred)
 * for this worker's next results (DecodePool's recycling). taskOfChannelBatch turns it back into the
 * DecodeTask the decode module takes.
 */
export type ChannelBatch = [frames: SharedArrayBuffer, count: number, columnsAt: number, vins: string, normalise: 0 | 1, ...spares: ArrayBuffer[]];
/** Where ChannelBatch's spares start. */
export const CHANNEL_BATCH_SPARES = 5;

/**
 * A DecodeResult as it crosses back: its buffer (transferred) and its section starts, then what frames
 * threw (internalErrors, usually none). An array for the reason ChannelBatch is one; decodeResultOf
 * checks it on the main thread.
 */
export type ResultRow = [buffer: ArrayBuffer, count: number, stateAt: number, repliesAt: number, textAt: number, normalisedAt: number, samplesAt: number, end: number, ...internalErrors: string[]];
/** Where ResultRow's internal errors start. */
export const RESULT_ROW_ERRORS = 8;

/** The row of a DecodeResult (the worker's side of the port). */
export function resultRowOf(result: DecodeResult): ResultRow {
  const row: ResultRow = [result.buffer, result.count, result.stateAt, result.repliesAt, result.textAt, result.normalisedAt, result.samplesAt, result.end ?? result.buffer.byteLength];
  for (const error of result.internalErrors) row.push(error);
  return row;
}

/** Bytes the columns of `count` frames take after the frames (see ChannelBatch). */
export function columnBytes(count: number): number {
  return align8(4 * (count + 1)) + 8 * count + count;
}

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** The DecodeTask whose columns are views into the batch's shared buffer (no copy). */
export function taskOfChannelBatch(batch: ChannelBatch): DecodeTask {
  const frames = batch[0];
  const count = batch[1];
  const columnsAt = batch[2];
  const receivedAtAt = columnsAt + align8(4 * (count + 1));
  return {
    frames,
    offsets: new Uint32Array(frames, columnsAt, count + 1),
    receivedAt: new Float64Array(frames, receivedAtAt, count),
    watched: new Uint8Array(frames, receivedAtAt + 8 * count, count),
    vins: count === 0 ? [] : batch[3].split('\n'),
    normalise: batch[4] === 1,
  };
}

/**
 * What a decode worker posts back per message, in the order the messages came ('ready' first, once): a
 * car-frame batch's ResultRow, a stored-record task's result, or the decoder's throw.
 */
export type ChannelAnswer = ResultRow | { result: unknown } | { failed: string } | 'ready';

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
  /** The reply for this frame: [replyStart, replyEnd) of the DecodeResult's replies. */
  replyStart: number;
  replyEnd: number;
  /** Why a frame got the error reply (bounded set, used as a metric label). */
  errorKind: string | null;
  /**
   * kind === 'record' only, and null when no dashboard watched the VIN at submit time (then the record
   * JSON is the whole text and the state offsets are positions in recordJson):
   */
  dashboardMessage: string | null;
  /** Set on the main thread with dashboardMessage: the same message as the UTF-8 bytes the worker wrote. */
  dashboardBytes?: Uint8Array;
  /** The record's canonical JSON is dashboardMessage[recordStart, recordEnd). */
  recordStart: number;
  recordEnd: number;
  /** Set on the main thread (receiveOutcomes): the slice [recordStart, recordEnd); null from the worker. */
  recordJson: string | null;
  signals: number;
  /** V records: entries [stateStart, stateEnd) of the DecodeResult's state index. */
  stateStart: number;
  stateEnd: number;
  /**
   * Set on the main thread (receiveOutcomes), null from the worker: the record's last-known state as
   * triples [Field number, valueStart, valueEnd], the datum's Value JSON being
   * dashboardMessage[valueStart, valueEnd).
   */
  state: Int32Array | null;
  /** RFC 3339 of the record's own created_at, when it had one. */
  createdAt: string | null;
  isResend: boolean;
  /** The protobuf payload inside the task's frames buffer: [payloadStart, payloadEnd). */
  payloadStart: number;
  payloadEnd: number;
  /** Set on the main thread when the task asked for it: the normalised record as protobuf. */
  normalisedPayload?: Uint8Array;
}

/**
 * What a decode worker sends back for a batch: ONE transferred ArrayBuffer holding its sections back to
 * back, their starts as a few numbers, no per-frame objects. An ArrayBuffer costs V8 far more than its
 * bytes (a backing store, external-memory accounting that drives GC), so a batch makes one, not five.
 * The sections, in this order (each ends where the next starts; an empty one takes no bytes):
 * - the table: FRAME_SLOTS Int32 per frame, indexed by SLOT, at 0;
 * - the state index: Int32 triples [Field number, valueStart, valueEnd] (positions in the text) of
 *   every V record's datums, at stateAt;
 * - the replies, back to back: frame i's is [row(i-1).REPLY_END, row(i).REPLY_END), at repliesAt;
 * - the dashboard messages (or record JSON alone) of the batch's records, UTF-8, at textAt;
 * - the normalised records as protobuf, back to back (only when the task asked for them), at
 *   normalisedAt;
 * - the samples: per V record with datums, the followed signals the recent history reads
 *   (SAMPLE_VALUES Float64 each, see SignalSample.readRow), at samplesAt (8-byte aligned), up to
 *   `end`. The history then parses no value on the main thread.
 * The main thread reads it through a DecodedBatch (or receiveOutcomes).
 */
export interface DecodeResult {
  buffer: ArrayBuffer;
  /** Frames of the batch: rows of the table. */
  count: number;
  /** Byte offsets of the sections in `buffer` (see above); stateAt is count * FRAME_SLOTS * 4. */
  stateAt: number;
  repliesAt: number;
  textAt: number;
  normalisedAt: number;
  /** Where the samples start (8-byte aligned); `end` when there are none. */
  samplesAt: number;
  /**
   * Where the result ends in `buffer`: a big result's buffer is a size class, longer than its sections
   * (so a recycled buffer serves the next batches). Absent (older results, tests): the buffer's length.
   */
  end?: number;
  /** What each frame with the error kind `internal` threw (a bug of ours), for the main thread's log. Usually empty. */
  internalErrors: readonly string[];
}

/** A DecodeResult's replies, back to back (a view of its buffer; tests and tools). */
export function resultReplies(result: DecodeResult): Uint8Array {
  return new Uint8Array(result.buffer, result.repliesAt, result.textAt - result.repliesAt);
}

/**
 * The columns of a frame's row in the DecodeResult's table. Positions in `frames` are absolute, those in
 * the text and normalised sections relative to the section's start.
 */
export const SLOT = {
  KIND: 0,
  ERROR_KIND: 1,
  REPLY_END: 2,
  /** The txid and topic inside the task's frames buffer; start -1: none readable. */
  TXID_START: 3,
  TXID_END: 4,
  TOPIC_START: 5,
  TOPIC_END: 6,
  PAYLOAD_START: 7,
  PAYLOAD_END: 8,
  /** The dashboard message in `text` (records only). */
  MESSAGE_START: 9,
  MESSAGE_END: 10,
  /** The record JSON in `text`; equal when the record has none (opaque topic). */
  RECORD_START: 11,
  RECORD_END: 12,
  /** Triples [STATE_START, STATE_END) of the DecodeResult's state index. */
  STATE_START: 13,
  STATE_END: 14,
  SIGNALS: 15,
  /** The created_at text in `text`; -1 when the record has none. */
  CREATED_AT_START: 16,
  CREATED_AT_END: 17,
  IS_RESEND: 18,
  /** 1 when the dashboard message holds a byte >= 0x80 (its offsets then need converting to characters). */
  NON_ASCII: 19,
  /** The normalised record's protobuf in `normalised`; start -1: none. */
  NORMALISED_START: 20,
  NORMALISED_END: 21,
  /**
   * What the row's text is (TEXT_LEVEL): 1 its dashboard message, 0 the record JSON alone, 2 its values
   * alone (the datums' Value JSON back to back, then the created_at text in quotes; RECORD_START and
   * RECORD_END then span them, not a record JSON).
   */
  DASHBOARD: 22,
  /**
   * The created_at as epoch ms (sampleTime of its text; 0 when it has none), in two slots: ms = HI *
   * 2^32 + (LO >>> 0). Parsed in the worker, so the main thread's state fold compares numbers.
   */
  CREATED_AT_MS_HI: 23,
  CREATED_AT_MS_LO: 24,
  /**
   * 1 + the V record's row in the samples section (its followed signals, read in the worker: see
   * DecodeResult.samplesAt); 0 when it has none.
   */
  SAMPLE: 25,
} as const;
export const FRAME_SLOTS = 26;

/**
 * What text a record gets: DecodeTask.watched per frame, SLOT.DASHBOARD per row (what was written: a
 * frame asked for VALUES_ONLY that is not a V record, or left the transcoder, gets RECORD_JSON).
 */
export const TEXT_LEVEL = { RECORD_JSON: 0, DASHBOARD_MESSAGE: 1, VALUES_ONLY: 2 } as const;

/** SLOT.KIND values: indexes of OUTCOME_KINDS. */
export const KIND_RECORD = 0;
export const KIND_ACK_ONLY = 1;
export const KIND_ERROR = 2;

export const OUTCOME_KINDS: readonly OutcomeKind[] = ['record', 'ack_only', 'error'];

/** Error kinds by code (a bounded set: they are metric labels). */
export const ERROR_KINDS: readonly string[] = [
  '',
  'envelope_too_short',
  'envelope_out_of_bounds',
  'envelope_bad_vtable',
  'payload_protobuf',
  'payload_invalid',
  /** Not a verdict on the frame: our decode code threw (a bug), counted in decode_internal_errors_total. */
  'internal',
  /** The frame's worker failed twice (threw, died or hung): set on the main thread (DecodedBatch.failed). */
  'worker_failed',
];
