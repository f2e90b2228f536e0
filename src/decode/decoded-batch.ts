// The global Buffer is an accessor (a getter call per read on the per-record path); the module's binding is not.
import { Buffer } from 'node:buffer';
import { readEnvelope, writeErrorReply } from '../protocol/envelope.js';
import {
  ERROR_KINDS,
  FRAME_SLOTS,
  KIND_ERROR,
  KIND_RECORD,
  OUTCOME_KINDS,
  SLOT,
  TEXT_LEVEL,
  type DecodeResult,
  type FrameOutcome,
} from './decode-task.js';
import { SAMPLE_VALUES } from '../history/signal-sample.js';
import { valuesOnlyRecordJson } from './decode-batch.js';

const WORKER_FAILED = ERROR_KINDS.indexOf('worker_failed');
/** Most bytes of a batch's text one latin1 string holds (DecodedBatch.makeChunk): about ten records. */
const TEXT_CHUNK = 16 * 1024;

/**
 * Buffer views of the buffers batches were read from lately, by identity: the pool reuses one frames
 * buffer for every lone frame (reuseInlineFrames) and recycles a few result buffers, so a lone batch
 * finds its views made instead of making two Buffers (a JS subclass constructor each, met cold) per
 * batch. Small buffers only, a few each: what the cache keeps alive is bounded.
 */
const VIEWS_KEPT = 4;
const VIEW_MAX_BYTES = 64 * 1024;
/** What `make` made for the last VIEWS_KEPT small buffers (`bytesOf` at most VIEW_MAX_BYTES), by the buffer's identity. */
class ViewsByBuffer<B extends ArrayBuffer | SharedArrayBuffer, V> {
  private readonly keys: Array<B | null> = [null, null, null, null];
  private readonly views: Array<V | null> = [null, null, null, null];
  private next = 0;

  constructor(
    private readonly make: (buffer: B) => V,
    private readonly bytesOf: (views: V) => number,
  ) {}

  of(buffer: B): V {
    const keys = this.keys;
    for (let k = 0; k < VIEWS_KEPT; k++) if (keys[k] === buffer) return this.views[k]!;
    const views = this.make(buffer);
    if (this.bytesOf(views) <= VIEW_MAX_BYTES) {
      const k = this.next;
      keys[k] = buffer;
      this.views[k] = views;
      this.next = (k + 1) & (VIEWS_KEPT - 1);
    }
    return views;
  }
}
// The view's length, not the buffer's byteLength (a C++ getter reached through the generic LoadIC).
const frameViews = new ViewsByBuffer((buffer: ArrayBuffer | SharedArrayBuffer) => Buffer.from(buffer), (view) => view.length);

/**
 * The views of one result buffer, each over the whole buffer, so one set serves every batch decoded
 * into it: the table (Int32 from 0), the state triples (Int32, from stateAt / 4) and the samples
 * (Float64, from samplesAt / 8) are all read through `words` and `doubles` at the section's offset.
 * Kept per recycled buffer (resultViews), a lone batch makes none of its three typed arrays (a view
 * each, made cold in the sparse regime) and no Buffer.
 */
class ResultViews {
  readonly words: Int32Array;
  private bytesView: Buffer | null = null;
  private doublesView: Float64Array | null = null;

  constructor(readonly buffer: ArrayBuffer) {
    this.words = new Int32Array(buffer, 0, buffer.byteLength >> 2);
  }

  get bytes(): Buffer {
    return (this.bytesView ??= Buffer.from(this.buffer));
  }

  get doubles(): Float64Array {
    return (this.doublesView ??= new Float64Array(this.buffer, 0, this.buffer.byteLength >> 3));
  }
}

/** ResultViews of the small result buffers read lately (the inline path's recycled ones). */
const resultViews = new ViewsByBuffer((buffer: ArrayBuffer) => new ResultViews(buffer), (views) => views.words.length << 2);

/**
 * A decoded batch on the main thread: the worker's one buffer (DecodeResult), read per frame by index. One
 * object per batch, none per frame: the actor that releases frame i asks for what it uses (its reply,
 * txid, topic, text, state triples) and nothing else is made. A frame parked for an earlier one keeps
 * the batch and its index.
 *
 * Text: a record row's text (its dashboard message, or the record JSON alone when no dashboard watched
 * the VIN) becomes one string the first time it is asked for (`text`): an ASCII row's is a slice of a
 * latin1 string of a few rows (makeChunk). A position in the row's table
 * slots and state triples, less `textBase(i)`, is a character position in that string: for an ASCII row
 * (nearly all) nothing is rewritten, the byte positions are the character positions; a row with non-ASCII
 * text has its positions rewritten in place when its text is made. The record JSON and created_at are
 * slices of it (V8 makes sliced strings, no copy). Read a row's positions as character positions only
 * after `text(i)`; the actors' state reads them as byte positions in `stateBytes(i)` instead, so a
 * record nobody reads as text makes none.
 */
export class DecodedBatch {
  readonly count: number;
  /** The worker's one buffer (DecodeResult): table, state index, replies, text, normalised records. */
  private readonly buffer: ArrayBuffer;
  private readonly table: Int32Array;
  private readonly repliesAt: number;
  private readonly textAt: number;
  private readonly normalisedAt: number;
  private readonly samplesAt: number;
  /** Where the result ends in `buffer` (a recycled or size-class buffer is longer). */
  private readonly end: number;
  /**
   * Holders of views of the result buffer (see hold): the pool's own while it delivers, then each that
   * keeps a record or a view past the turn. At 0, `recycler` gets the buffer (once).
   */
  private holds = 1;
  /** Where the buffer goes when the last holder lets go; null: it is not recycled (GC frees it). */
  private recycler: ((buffer: ArrayBuffer) => void) | null = null;
  /** The frames the batch was decoded from (payloads and txids are read from here). */
  private readonly framesBuffer: SharedArrayBuffer | ArrayBuffer;
  /** The result buffer's views (ResultViews: shared by the batches of a recycled buffer). */
  private readonly views: ResultViews;
  /** Where the state triples start in `views.words`, and the samples in `views.doubles`. */
  private readonly stateBase: number;
  private readonly samplesBase: number;
  /** Made when first needed: a batch of acks reads no txids. */
  private sourceView: Buffer | null = null;
  /**
   * Each record row's text once made (see the class comment); null until a text is made, which a
   * batch of acks and errors never does. A lone record's batch keeps its one text without an array.
   */
  private texts: Array<string | undefined> | string | null = null;
  /** The latin1 chunk ASCII rows' texts are sliced from (makeChunk): bytes [chunkStart, chunkEnd) of the text section. */
  private chunk = '';
  private chunkStart = 0;
  private chunkEnd = 0;

  constructor(result: Pick<DecodeResult, 'buffer' | 'count' | 'stateAt' | 'repliesAt' | 'textAt' | 'normalisedAt' | 'samplesAt' | 'end'>, frames: SharedArrayBuffer | ArrayBuffer) {
    this.buffer = result.buffer;
    this.count = result.count;
    this.repliesAt = result.repliesAt;
    this.textAt = result.textAt;
    this.normalisedAt = result.normalisedAt;
    this.samplesAt = result.samplesAt;
    this.end = result.end ?? result.buffer.byteLength;
    const views = resultViews.of(result.buffer);
    this.views = views;
    // The table is the buffer's first count * FRAME_SLOTS words: read through the whole buffer's view.
    this.table = views.words;
    this.stateBase = result.stateAt >> 2;
    this.samplesBase = result.samplesAt >> 3;
    this.framesBuffer = frames;
  }

  /** The whole result buffer as a Buffer (text is decoded from it at textAt). */
  private get bytes(): Buffer {
    return this.views.bytes;
  }

  /** The frames the batch was decoded from (tests, tools; the hot path reads them through the methods). */
  get frames(): Uint8Array {
    return this.source;
  }

  /** The frames as a Buffer (txids and topics are read from it as latin1). */
  private get source(): Buffer {
    return (this.sourceView ??= frameViews.of(this.framesBuffer));
  }

  /**
   * The outcome of frames whose worker failed twice (threw, died or hung): each gets the error reply,
   * addressed to its txid when its envelope reads. `offsets`: n + 1 positions of the frames in `frames`.
   */
  static failed(frames: SharedArrayBuffer | ArrayBuffer, offsets: ArrayLike<number>): DecodedBatch {
    const count = offsets.length - 1;
    const view = new Uint8Array(frames);
    const table = new Int32Array(count * FRAME_SLOTS);
    const replies: Uint8Array[] = [];
    let replyEnd = 0;
    for (let i = 0; i < count; i++) {
      const row = i * FRAME_SLOTS;
      table[row + SLOT.TXID_START] = -1;
      table[row + SLOT.TOPIC_START] = -1;
      table[row + SLOT.CREATED_AT_START] = -1;
      table[row + SLOT.NORMALISED_START] = -1;
      let txid: Uint8Array = new Uint8Array(0);
      try {
        const envelope = readEnvelope(view.subarray(offsets[i], offsets[i + 1]));
        txid = envelope.txid;
        table[row + SLOT.TXID_START] = envelope.txid.byteOffset;
        table[row + SLOT.TXID_END] = envelope.txid.byteOffset + envelope.txid.byteLength;
        table[row + SLOT.TOPIC_START] = envelope.topic.byteOffset;
        table[row + SLOT.TOPIC_END] = envelope.topic.byteOffset + envelope.topic.byteLength;
      } catch {
        // Unreadable envelope: the error reply goes out with an empty txid.
      }
      const reply = writeErrorReply(txid);
      replies.push(reply);
      replyEnd += reply.byteLength;
      table[row + SLOT.KIND] = KIND_ERROR;
      table[row + SLOT.ERROR_KIND] = WORKER_FAILED;
      table[row + SLOT.REPLY_END] = replyEnd;
    }
    // The layout a worker's result has (DecodeResult): the table, then the replies; no state, text or normalised.
    const repliesAt = table.byteLength;
    const buffer = new Uint8Array(repliesAt + replyEnd);
    buffer.set(new Uint8Array(table.buffer));
    let at = repliesAt;
    for (const reply of replies) {
      buffer.set(reply, at);
      at += reply.byteLength;
    }
    return new DecodedBatch({ buffer: buffer.buffer, count, stateAt: repliesAt, repliesAt, textAt: at, normalisedAt: at, samplesAt: buffer.byteLength }, frames);
  }

  /** KIND_RECORD, KIND_ACK_ONLY or KIND_ERROR (decode-task.ts). */
  kind(i: number): number {
    return this.table[i * FRAME_SLOTS + SLOT.KIND]!;
  }

  /** Why an error row got the error reply (a bounded set: a metric label); null for other rows. */
  errorKind(i: number): string | null {
    const row = i * FRAME_SLOTS;
    return this.table[row + SLOT.KIND] === KIND_ERROR ? (ERROR_KINDS[this.table[row + SLOT.ERROR_KIND]!] ?? 'unknown') : null;
  }

  /** The reply to send for frame i (a view into the batch's replies). */
  reply(i: number): Uint8Array {
    const start = i === 0 ? 0 : this.table[(i - 1) * FRAME_SLOTS + SLOT.REPLY_END]!;
    return new Uint8Array(this.buffer, this.repliesAt + start, this.table[i * FRAME_SLOTS + SLOT.REPLY_END]! - start);
  }

  /** The txid as text; '' when the envelope was unreadable. */
  txid(i: number): string {
    const row = i * FRAME_SLOTS;
    const start = this.table[row + SLOT.TXID_START]!;
    return start < 0 ? '' : this.source.toString('latin1', start, this.table[row + SLOT.TXID_END]);
  }

  /** The topic as text; '' when the envelope was unreadable. */
  topic(i: number): string {
    const row = i * FRAME_SLOTS;
    const start = this.table[row + SLOT.TOPIC_START]!;
    if (start < 0) return '';
    const end = this.table[row + SLOT.TOPIC_END]!;
    // Nearly every record is a V record: no string made for it.
    if (end === start + 1 && this.source[start] === 0x56) return 'V';
    return this.source.toString('latin1', start, end);
  }

  /** The record's protobuf payload as the car sent it (a view into the frames). */
  payload(i: number): Uint8Array {
    const row = i * FRAME_SLOTS;
    const start = this.table[row + SLOT.PAYLOAD_START]!;
    return new Uint8Array(this.framesBuffer, start, this.table[row + SLOT.PAYLOAD_END]! - start);
  }

  payloadBytes(i: number): number {
    const row = i * FRAME_SLOTS;
    return this.table[row + SLOT.PAYLOAD_END]! - this.table[row + SLOT.PAYLOAD_START]!;
  }

  signals(i: number): number {
    return this.table[i * FRAME_SLOTS + SLOT.SIGNALS]!;
  }

  isResend(i: number): boolean {
    return this.table[i * FRAME_SLOTS + SLOT.IS_RESEND] === 1;
  }

  /** Whether the row's text is its dashboard message (a dashboard watched the VIN at submit time). */
  hasDashboardMessage(i: number): boolean {
    return this.table[i * FRAME_SLOTS + SLOT.DASHBOARD] === 1;
  }

  /** The dashboard message as the UTF-8 bytes the worker wrote; undefined when it wrote none. */
  dashboardBytes(i: number): Uint8Array | undefined {
    const row = i * FRAME_SLOTS;
    if (this.table[row + SLOT.DASHBOARD] !== 1) return undefined;
    const start = this.table[row + SLOT.MESSAGE_START]!;
    return new Uint8Array(this.buffer, this.textAt + start, this.table[row + SLOT.MESSAGE_END]! - start);
  }

  /** The normalised record as protobuf, when the task asked for it. */
  normalisedPayload(i: number): Uint8Array | undefined {
    const row = i * FRAME_SLOTS;
    const start = this.table[row + SLOT.NORMALISED_START]!;
    return start < 0 ? undefined : new Uint8Array(this.buffer, this.normalisedAt + start, this.table[row + SLOT.NORMALISED_END]! - start);
  }

  /**
   * A record row's text: its dashboard message, or the record JSON alone (see the class comment). Made
   * once; the row's positions less textBase(i) are character positions in it from then on.
   */
  text(i: number): string {
    const texts = this.texts;
    if (texts !== null) {
      const made = typeof texts === 'string' ? texts : texts[i];
      if (made !== undefined) return made;
    }
    const table = this.table;
    const row = i * FRAME_SLOTS;
    const start = table[row + SLOT.MESSAGE_START]!;
    const end = table[row + SLOT.MESSAGE_END]!;
    let text: string;
    if (table[row + SLOT.NON_ASCII] === 1) {
      const bytes = this.bytes;
      const textAt = this.textAt;
      text = bytes.toString('utf8', textAt + start, textAt + end);
      const stateStart = this.stateBase + table[row + SLOT.STATE_START]! * 3;
      const stateEnd = this.stateBase + table[row + SLOT.STATE_END]! * 3;
      const state = stateEnd > stateStart ? table : null;
      // Byte positions become character positions (plus the row's start, as an ASCII row's are); they
      // differ only after a non-ASCII character.
      const at = (position: number): number => start + bytes.toString('utf8', textAt + start, textAt + position).length;
      for (const slot of [SLOT.RECORD_START, SLOT.RECORD_END]) table[row + slot] = at(table[row + slot]!);
      if (table[row + SLOT.CREATED_AT_START]! >= 0) {
        table[row + SLOT.CREATED_AT_START] = at(table[row + SLOT.CREATED_AT_START]!);
        table[row + SLOT.CREATED_AT_END] = at(table[row + SLOT.CREATED_AT_END]!);
      }
      for (let s = stateStart; s < stateEnd; s += 3) {
        state![s + 1] = at(state![s + 1]!);
        state![s + 2] = at(state![s + 2]!);
      }
    } else {
      // Nothing rewritten: positions less the row's start are already positions in the text. A slice
      // of the batch's latin1 chunk covering it (V8 makes a sliced string, no copy).
      if (start < this.chunkStart || end > this.chunkEnd) this.makeChunk(start, end);
      text = this.chunk.slice(start - this.chunkStart, end - this.chunkStart);
    }
    if (this.count === 1) {
      this.texts = text;
    } else {
      let made = this.texts as Array<string | undefined> | null;
      if (made === null) this.texts = made = new Array<string | undefined>(this.count);
      made[i] = text;
    }
    return text;
  }

  /**
   * The text section's bytes from `start` (relative to textAt) as one latin1 string, through `end` and on
   * up to TEXT_CHUNK bytes: the rows that follow (released next, nearly always) are slices of it, so a
   * batch makes one string per few rows instead of one per row (each Buffer.toString a call into C++, its
   * checks and an allocation). Bounded, so a row's text kept by a listener pins at most TEXT_CHUNK bytes
   * (the actors' state copies its values from the result bytes), and no string goes to the large-object
   * space. Non-ASCII rows in the chunk are not read from it (their text is decoded as UTF-8 on its own).
   */
  private makeChunk(start: number, end: number): void {
    const sectionEnd = this.normalisedAt - this.textAt;
    let chunkEnd = start + TEXT_CHUNK;
    if (chunkEnd > sectionEnd) chunkEnd = sectionEnd;
    if (chunkEnd < end) chunkEnd = end;
    this.chunk = this.bytes.toString('latin1', this.textAt + start, this.textAt + chunkEnd);
    this.chunkStart = start;
    this.chunkEnd = chunkEnd;
  }

  /**
   * The bytes row i's state values and created_at are read from without making its text (the whole
   * result buffer: a position in the row's table slots or state triples plus `textBytesAt` is a byte
   * index in it, the values as the UTF-8 the decode stage wrote); null once a non-ASCII row's text is
   * made (its positions are character positions in the text from then on). Valid during the turn, or
   * while the batch is held: read from, not kept.
   */
  stateBytes(i: number): Buffer | null {
    if (this.table[i * FRAME_SLOTS + SLOT.NON_ASCII] === 1) {
      const texts = this.texts;
      if (texts !== null && (typeof texts === 'string' || texts[i] !== undefined)) return null;
    }
    return this.bytes;
  }

  /** What stateBytes' index of a position exceeds the position by: where the text section starts. */
  get textBytesAt(): number {
    return this.textAt;
  }

  /** Whether row i has a created_at of its own (createdAt(i) is not null), without making its text. */
  hasCreatedAt(i: number): boolean {
    return this.table[i * FRAME_SLOTS + SLOT.CREATED_AT_START]! >= 0;
  }

  /** Where row i's created_at starts and ends (positions: see stateBytes); -1 when it has none. */
  createdAtStart(i: number): number {
    return this.table[i * FRAME_SLOTS + SLOT.CREATED_AT_START]!;
  }

  createdAtEnd(i: number): number {
    return this.table[i * FRAME_SLOTS + SLOT.CREATED_AT_END]!;
  }

  /** What a row's positions (table slots, state triples) exceed character positions in text(i) by. */
  textBase(i: number): number {
    return this.table[i * FRAME_SLOTS + SLOT.MESSAGE_START]!;
  }

  /** Whether row i's text is its values alone (TEXT_LEVEL.VALUES_ONLY): its record JSON is made on demand. */
  valuesOnly(i: number): boolean {
    return this.table[i * FRAME_SLOTS + SLOT.DASHBOARD] === TEXT_LEVEL.VALUES_ONLY;
  }

  /**
   * The record's canonical JSON, a slice of text(i); null for an opaque (unknown-topic) record. A row
   * decoded values only (valuesOnly(i)) has none in its text: it is made now from the payload in the
   * frames (valid while the record is published: see DecodedRecord) for `vin`, the frame's certificate
   * VIN, which such a row needs; a new string per call (DecodedRecord keeps it).
   */
  recordJson(i: number, vin?: string): string | null {
    const row = i * FRAME_SLOTS;
    if (this.table[row + SLOT.DASHBOARD] === TEXT_LEVEL.VALUES_ONLY) {
      if (vin === undefined) throw new Error('DecodedBatch.recordJson: a row decoded values only needs its VIN');
      return valuesOnlyRecordJson(this.source, this.table[row + SLOT.PAYLOAD_START]!, this.table[row + SLOT.PAYLOAD_END]!, vin);
    }
    const text = this.text(i);
    const base = this.table[row + SLOT.MESSAGE_START]!;
    const start = this.table[row + SLOT.RECORD_START]!;
    const end = this.table[row + SLOT.RECORD_END]!;
    return end > start ? text.slice(start - base, end - base) : null;
  }

  /** RFC 3339 of the record's own created_at (a slice of text(i)); null when it has none. */
  createdAt(i: number): string | null {
    const row = i * FRAME_SLOTS;
    if (this.table[row + SLOT.CREATED_AT_START]! < 0) return null;
    const text = this.text(i);
    const base = this.table[row + SLOT.MESSAGE_START]!;
    return text.slice(this.table[row + SLOT.CREATED_AT_START]! - base, this.table[row + SLOT.CREATED_AT_END]! - base);
  }

  /** The created_at as epoch ms (0 when it did not parse); only meaningful when createdAt(i) is not null. */
  createdAtMs(i: number): number {
    const row = i * FRAME_SLOTS;
    return this.table[row + SLOT.CREATED_AT_MS_HI]! * 4294967296 + (this.table[row + SLOT.CREATED_AT_MS_LO]! >>> 0);
  }

  /**
   * Where the batch's state triples are: row i's are [stateFrom(i), stateTo(i)) of it (what state(i) is a
   * view of, without making the view). An Int32 view of the whole result buffer (ResultViews), so index
   * it only through stateFrom and stateTo.
   */
  get triples(): Int32Array {
    return this.table;
  }

  /**
   * Where row i's state triples start in `triples`. Their positions less textBase(i) are positions in
   * text(i): read them after making it (a non-ASCII row's are rewritten then).
   */
  stateFrom(i: number): number {
    return this.stateBase + this.table[i * FRAME_SLOTS + SLOT.STATE_START]! * 3;
  }

  /** Where row i's state triples end in `triples`; equal to stateFrom(i) when it has none. */
  stateTo(i: number): number {
    return this.stateBase + this.table[i * FRAME_SLOTS + SLOT.STATE_END]! * 3;
  }

  /**
   * A V record's last-known state as triples [Field number, valueStart, valueEnd], the datum's Value
   * JSON being text(i)[valueStart, valueEnd) (a view into the batch's state index when the row's text
   * starts the batch's, else a rebased copy); null when none.
   */
  state(i: number): Int32Array | null {
    this.text(i);
    const row = i * FRAME_SLOTS;
    const start = this.table[row + SLOT.STATE_START]!;
    const end = this.table[row + SLOT.STATE_END]!;
    if (end <= start) return null;
    const base = this.table[row + SLOT.MESSAGE_START]!;
    const view = this.table.subarray(this.stateBase + start * 3, this.stateBase + end * 3);
    if (base === 0) return view;
    // A copy (tests, tools): the hot path reads `triples` and subtracts textBase(i) itself.
    const state = view.slice();
    for (let s = 0; s < state.length; s += 3) {
      state[s + 1]! -= base;
      state[s + 2]! -= base;
    }
    return state;
  }

  /**
   * Where every V record's followed signals are, SAMPLE_VALUES each (SignalSample.readRow): a Float64 view
   * of the whole result buffer (ResultViews, made once per buffer), so index it only from sampleAt(i).
   */
  get samples(): Float64Array {
    return this.views.doubles;
  }

  /** Where the record's followed signals start in `samples`; -1 when the worker read none. */
  sampleAt(i: number): number {
    const row = this.table[i * FRAME_SLOTS + SLOT.SAMPLE]!;
    if (row <= 0) return -1;
    const at = (row - 1) * SAMPLE_VALUES;
    // A row past the section, or a section off the 8-byte grid (a worker of another build), is not read:
    // the history then reads the text.
    return at + SAMPLE_VALUES <= (this.end - this.samplesAt) >> 3 && (this.samplesAt & 7) === 0 ? this.samplesBase + at : -1;
  }

  /**
   * Recycling (DecodePool): `recycler` gets the result buffer when the last holder lets go. Only a pool
   * whose every consumer of records says when it is done (hold / letGo) sets one; without it nothing changes.
   */
  recycleWith(recycler: (buffer: ArrayBuffer) => void): void {
    this.recycler = recycler;
  }

  /**
   * Whoever reads this batch's records, or views of its result (text not yet made, samples, dashboard
   * or normalised bytes, replies), after the turn it got them in holds the batch until done (letGo):
   * a recycled buffer is written by a worker again.
   */
  hold(): void {
    this.holds++;
  }

  letGo(): void {
    if (--this.holds > 0) return;
    const recycler = this.recycler;
    if (recycler === null) return;
    this.recycler = null;
    recycler(this.buffer);
  }

  /** Never recycle this batch's buffer (a holder that cannot say when it is done). */
  pin(): void {
    this.recycler = null;
  }

  /** Holders now (tests). */
  get holders(): number {
    return this.holds;
  }

  /**
   * Frame i as one object with every field (tests, tools; the hot path reads fields by index instead).
   * `vin`: the frame's certificate VIN, for the record JSON of a row decoded values only.
   */
  outcome(i: number, vin?: string): FrameOutcome {
    const row = i * FRAME_SLOTS;
    const kindCode = this.table[row + SLOT.KIND]!;
    const replyStart = i === 0 ? 0 : this.table[(i - 1) * FRAME_SLOTS + SLOT.REPLY_END]!;
    const outcome: FrameOutcome = {
      kind: OUTCOME_KINDS[kindCode]!,
      txid: this.txid(i),
      topic: this.topic(i),
      replyStart,
      replyEnd: this.table[row + SLOT.REPLY_END]!,
      errorKind: this.errorKind(i),
      dashboardMessage: null, recordStart: 0, recordEnd: 0, recordJson: null,
      signals: 0, stateStart: 0, stateEnd: 0, state: null, createdAt: null, isResend: false,
      payloadStart: 0, payloadEnd: 0,
    };
    if (kindCode !== KIND_RECORD) return outcome;
    const text = this.text(i);
    outcome.dashboardMessage = this.hasDashboardMessage(i) ? text : null;
    const dashboardBytes = this.dashboardBytes(i);
    if (dashboardBytes !== undefined) outcome.dashboardBytes = dashboardBytes;
    outcome.payloadStart = this.table[row + SLOT.PAYLOAD_START]!;
    outcome.payloadEnd = this.table[row + SLOT.PAYLOAD_END]!;
    outcome.signals = this.signals(i);
    outcome.isResend = this.isResend(i);
    const normalisedPayload = this.normalisedPayload(i);
    if (normalisedPayload !== undefined) outcome.normalisedPayload = normalisedPayload;
    outcome.recordJson = this.recordJson(i, vin);
    if (outcome.recordJson !== null && !this.valuesOnly(i)) {
      outcome.recordStart = this.table[row + SLOT.RECORD_START]! - this.textBase(i);
      outcome.recordEnd = this.table[row + SLOT.RECORD_END]! - this.textBase(i);
    }
    outcome.createdAt = this.createdAt(i);
    outcome.state = this.state(i);
    if (outcome.state !== null) {
      outcome.stateStart = this.table[row + SLOT.STATE_START]!;
      outcome.stateEnd = this.table[row + SLOT.STATE_END]!;
    }
    return outcome;
  }
}
