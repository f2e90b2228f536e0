// Protobuf wire bytes -> canonical JSON bytes, without decoded message objects.
//
// At module load, one function per message type reachable from the record types is generated from the
// protobufjs reflection of proto/ (protobufjs stays the schema source and, through decodeRecord, the
// oracle: test/unit/transcoder.test.ts checks both agree on any payload). Each function reads one
// message's bytes in two passes: the first finds every known field (last occurrence wins for scalars,
// as protobufjs decodes) and counts repeated ones; the second writes the fields in declaration order
// with their canonical defaults, straight into a JsonSink. The reference normalisations are applied on
// the way: certificate VIN, Location strings, scientific-notation strings, alert millisecond times.
//
// Anything outside the common path "bails": a message field given twice (protobufjs merges those),
// a oneof given twice, groups, varints or tags longer than the schema needs, too many entries, a
// Timestamp without an RFC 3339 form, or malformed bytes. The caller then runs the protobufjs path
// (decodeRecord) for that frame, which gives the exact verdict and JSON. Real cars never hit it.
import protobuf from 'protobufjs';
import { JsonSink, toWords, validUtf8 } from './json-sink.js';
import { MAX_SECONDS, MIN_SECONDS, civilDate, floatToJson } from './canonical-json.js';
import { ALERT_MS_THRESHOLD_SECONDS, LOCATION_FIELD, parseLocationBytes, parseLocationString, rewriteScientific, type LatLon } from './normalise.js';

type Type = protobuf.Type;
type Field = protobuf.Field;

/** Thrown (never as an Error: no stack to capture) when a frame leaves the common path. */
export const BAIL = { bail: true } as const;

/** What one transcoded record reports besides its JSON. */
export interface TranscodeInfo {
  /** Datums, alerts or errors in the record; 1 for connectivity. */
  signals: number;
  /**
   * The datums whose Value the normalisation rewrote (a Location string, a scientific-notation
   * string), so the normalised protobuf can be patched instead of re-encoded; emptied by each run.
   */
  valueRewrites: ValueRewrite[];
  /** Sink positions of the top-level created_at text (without quotes); -1 when it was unset. */
  createdAtStart: number;
  createdAtEnd: number;
  /**
   * The top-level created_at as epoch ms, as Date.parse reads its text (sub-millisecond digits
   * dropped), for years from 100 on; NaN when it was unset or earlier (Date.parse reads those otherwise).
   */
  createdAtMs: number;
  /** Values the normalisation rewrote besides the VIN (Location, scientific notation, alert times). */
  rewrites: number;
  /** Sink position where the record JSON starts (after what `head` wrote); -1 before it is known. */
  recordStart: number;
  /** The record's is_resend (false for types without one), as `head` is told: set whether or not there is a head. */
  isResend: boolean;
}

/**
 * Called once per record, after the payload was read and before its JSON is written, with the
 * record's is_resend (false for types without one): the caller writes what goes before the record
 * (the dashboard message head, which names the resend flag first) without a second pass over the wire.
 */
export type RecordHead = (isResend: boolean) => void;

/**
 * A datum whose Value was rewritten: the datum's and its Value's message bytes, [datumStart, datumEnd)
 * and [valueStart, valueEnd), in the wire buffer.
 */
export interface ValueRewrite {
  datumStart: number;
  datumEnd: number;
  valueStart: number;
  valueEnd: number;
  /** The LocationValue a Location string became, or null: then `text` replaces the string. */
  location: LatLon | null;
  text: string;
}

/**
 * Where each datum's Value JSON went: triples [Field number, start, end] of sink positions, written by
 * the transcoder at `length` (which it advances by 3) after `room()` made space for one more.
 */
export interface StateIndex {
  values: Int32Array;
  length: number;
  room(): void;
}

/**
 * The followed signals' values of a V record, gathered while its Values are written (see
 * readSampleFromDatumValues): per datum whose Field `signals` marks (> 0), DATUM_VALUE_COLUMNS numbers
 * at `n` (which the transcoder advances) after `room()` made space for one more: the signal code, the
 * kind (DATUM_VALUE_KIND), two values and the Value JSON's sink position. `n` is set to 0 by each run.
 */
export interface DatumValues {
  signals: Uint8Array;
  values: Float64Array;
  n: number;
  room(): void;
}

/** Columns per datum in DatumValues.values. */
export const DATUM_VALUE_COLUMNS = 5;
/**
 * What the transcoder knew of a datum's Value as it wrote it: OTHER, read back from the JSON; NUMBER,
 * the number its JSON text reads as (double, float, int, long and boolean members; NaN when it is
 * written as a string); ENUM, an enum member's number and the member's field number; LOCATION, the
 * latitude and longitude it wrote (a locationValue, or a Location string rewritten into one).
 */
export const DATUM_VALUE_KIND = { OTHER: 0, NUMBER: 1, ENUM: 2, LOCATION: 3 } as const;

export interface TranscoderOptions {
  maxEntries: number;
  /** Full names (no leading dot) of the record types, by topic. */
  topics: Record<string, string>;
}

interface Runtime {
  sink: JsonSink;
  BAIL: typeof BAIL;
  validUtf8: typeof validUtf8;
  floatToJson: typeof floatToJson;
  /** `"YYYY-MM-DDT` of a day since the epoch, as words (see toWords). */
  dayWords: (days: number) => Int32Array;
  MIN_SECONDS: number;
  MAX_SECONDS: number;
  /** 0100-01-01T00:00:00Z in seconds: from it on Date.parse reads the year as written. */
  YEAR_100_SECONDS: number;
  parseLocationString: typeof parseLocationString;
  parseLocationBytes: typeof parseLocationBytes;
  rewriteScientific: typeof rewriteScientific;
  LOCATION_FIELD: number;
  ALERT_MS: number;
  MAX: number;
  enums: Array<(v: number) => string>;
  /** Merged message heads by enum number (see messageFunction), as words (see toWords). */
  heads: Int32Array[][];
  /** The generated code's literal texts, as words. */
  literals: Int32Array[];
  /** Each enum's JSON text by number (0..4095), as words; undefined where EN gives a bare number. */
  enumWords: Int32Array[][];
}

interface Generated {
  /** Writes the record JSON of `topic`; returns false when the record bailed (sink left past garbage). */
  /** vinJson: the certificate VIN as JSON text, UTF-8, in toWords' layout (bytesToWords; the caller notes whether it is ASCII). */
  /** head: see RecordHead; it writes through the sink (its `n`), as the transcoder's writes do. */
  /** datumValues: the followed signals' values, gathered as they are written (null: none gathered). */
  /**
   * valuesOnly: a V record is written as its datums' Value JSON back to back and its created_at text,
   * nothing else (no datum keys, brackets, VIN or flags): the state triples, datum values, created_at
   * positions, signals and verdicts are those of the whole record, the text is what they point into.
   * For a record whose text nobody reads (see DecodeTask.watched). Other record types are written whole.
   */
  run(topic: string, buf: Uint8Array, start: number, end: number, vinJson: Int32Array, state: StateIndex | null, info: TranscodeInfo, head: RecordHead | null, datumValues?: DatumValues | null, valuesOnly?: boolean): boolean;
}

const TIMESTAMP = 'google.protobuf.Timestamp';
const VIN_FIELDS = new Set([
  'telemetry.vehicle_data.Payload.vin',
  'telemetry.vehicle_alerts.VehicleAlerts.vin',
  'telemetry.vehicle_error.VehicleErrors.vin',
  'telemetry.vehicle_connectivity.VehicleConnectivity.vin',
]);
const MS_TIMESTAMPS = new Set(['telemetry.vehicle_alerts.VehicleAlert.started_at', 'telemetry.vehicle_alerts.VehicleAlert.ended_at']);
const VALUE_TYPE = 'telemetry.vehicle_data.Value';
const DATUM_TYPE = 'telemetry.vehicle_data.Datum';
const LOCATION_TYPE = 'telemetry.vehicle_data.LocationValue';

/** The field's name as proto/ spells it (protobufjs names properties in lowerCamelCase). */
function protoNameOf(field: Field): string {
  return (field as unknown as { protoName?: string }).protoName ?? field.name;
}

function jsonNameOf(field: Field): string {
  return field.jsonName ?? protobuf.util.jsonName(field.name);
}

function enumJson(e: protobuf.Enum): (v: number) => string {
  const byNumber = new Map<number, string>();
  for (const [name, num] of Object.entries(e.values)) if (!byNumber.has(num)) byNumber.set(num, JSON.stringify(name));
  const table: string[] = [];
  for (const [n, s] of byNumber) if (n >= 0 && n < 4096) table[n] = s;
  return (v) => (v >= 0 && v < table.length && table[v] !== undefined ? table[v] : byNumber.get(v) ?? String(v));
}

/**
 * Builds the transcoder for the record types of a resolved protobufjs root. Throws at build time for a
 * field type the transcoder has no rule for, so a schema change cannot silently write wrong JSON.
 */
export function buildTranscoder(root: protobuf.Root, sink: JsonSink, options: TranscoderOptions): Generated {
  const types = new Map<string, { index: number; type: Type }>();
  const enums = new Map<string, number>();
  const runtime: Runtime = {
    sink, BAIL, validUtf8, floatToJson, parseLocationString, parseLocationBytes, rewriteScientific,
    dayWords: (days) => toWords(`"${civilDate(days)}T`), MIN_SECONDS, MAX_SECONDS, YEAR_100_SECONDS: Date.UTC(100, 0, 1) / 1000,
    LOCATION_FIELD, ALERT_MS: ALERT_MS_THRESHOLD_SECONDS, MAX: options.maxEntries, enums: [], heads: [], literals: [], enumWords: [],
  };
  const enumIndex = (e: protobuf.Enum): number => {
    let i = enums.get(e.fullName);
    if (i === undefined) {
      i = runtime.enums.length;
      runtime.enums.push(enumJson(e));
      enums.set(e.fullName, i);
    }
    return i;
  };
  const functions: string[] = [];
  const heads: Array<{ en: number; open: string; close: string }> = [];
  const loneDoubles = new Map<number, LoneDouble>();
  const visit = (type: Type): number => {
    const name = type.fullName.slice(1);
    const known = types.get(name);
    if (known !== undefined) return known.index;
    const index = types.size;
    types.set(name, { index, type });
    functions.push(''); // placeholder: nested types get their own index first
    functions[index] = messageFunction(type, index, visit, enumIndex, heads, loneDoubles);
    return index;
  };
  const topicCases: string[] = [];
  for (const [topic, typeName] of Object.entries(options.topics)) {
    const index = visit(root.lookupType(typeName));
    topicCases.push(`case ${JSON.stringify(topic)}: m${index}(s, e); return true;`);
  }
  let source = `
'use strict';
var O = R.sink, BAIL = R.BAIL, MAX = R.MAX, EN = R.enums, ENW = R.enumWords, HD = R.heads, LIT = R.literals;
var B = null, BD = null, P = 0, LO = 0, HI = 0;
// The sink's bytes and write position while a record is written (O.n is brought up to date at the
// end, and around the sink's own writers): the writers below are plain stores into a local array.
var OB = null, ON = 0, OD = null;
var VIN = null, ST = null, INFO = null, DK = 0, DS = 0, DE = 0, VS = 0, VE = 0, LOCDONE = false, HK = null;
// The datum values gathered for the samples (DatumValues), and what the Value just written was (its
// kind VT and values VF[0] and VF[1]; VF[2] and VF[3]: the latitude and longitude of the last
// LocationValue written). The values are doubles: kept in a Float64Array, not in variables of this
// closure, whose every double store is a new HeapNumber and a write barrier (RecordWrite in m2's profile).
var SM = null, SMS = null, VT = 0, VF = new Float64Array(4);
// The record is written values only (see Generated.run): read by the V record's and the Datum's writers.
var VO = false;
${RUNTIME_SOURCE}
${functions.join('\n')}
return {
  run: function (topic, buf, s, e, vinJson, state, info, head, datumValues, valuesOnly) {
    wire(buf); VIN = vinJson; ST = state; INFO = info; LOCDONE = false; HK = head; VO = valuesOnly === true;
    SM = datumValues === undefined ? null : datumValues; SMS = SM === null ? null : SM.signals; if (SM !== null) SM.n = 0;
    ON = O.n;
    if (OB !== O.bytes) { OB = O.bytes; OD = new DataView(OB.buffer, OB.byteOffset, OB.byteLength); }
    info.signals = 1; info.createdAtStart = -1; info.createdAtEnd = -1; info.createdAtMs = NaN; info.rewrites = 0; info.recordStart = -1; info.isResend = false;
    // Setting an array's length is a C++ accessor call (Runtime_StoreCallbackProperty, JSArray::SetLength)
    // even when it is already 0 (~4 % of a cold lone frame's decode samples in perf). Only rewrites need it.
    if (info.valueRewrites.length !== 0) info.valueRewrites.length = 0;
    try {
      switch (topic) { ${topicCases.join(' ')} }
      return false;
    } catch (err) {
      if (err === BAIL) return false;
      throw err;
    } finally {
      O.n = ON;
      ST = null; INFO = null; HK = null; SM = null; SMS = null; VO = false;
    }
  },
};`;
  // Literal text goes out as prebuilt bytes: copying a Uint8Array beats reading a string's characters.
  // Short ones become straight-line stores of their words (no loads, one capacity check).
  const literals: Int32Array[] = [];
  source = source.replace(/\bwa\(("(?:[^"\\]|\\.)*"|'[^'\\]*')\);/g, (_call, literal: string) => {
    // `literal` is a string literal this module generated from the schema (matched here), not input.
    const words = toWords((new Function(`return ${literal};`) as () => string)());
    if (words.length > 17) {
      literals.push(words);
      return `wl(LIT[${literals.length - 1}]);`;
    }
    const stores: string[] = [];
    for (let i = 1; i < words.length; i++) stores.push(`d_.setInt32(n_${i > 1 ? ` + ${4 * (i - 1)}` : ''}, ${words[i]!}, true);`);
    const room = 4 * (words.length - 1);
    return `{ if (ON + ${room} > OB.length) gr(${room}); var n_ = ON, d_ = OD; ${stores.join(' ')} ON = n_ + ${words[0]!}; }`;
  });
  runtime.literals = literals;
  runtime.heads = heads.map(({ en, open, close }) => {
    const table: Int32Array[] = [];
    for (let n = 0; n < 4096; n++) {
      const name = runtime.enums[en]!(n);
      if (name.startsWith('"')) table[n] = toWords(open + name + close);
    }
    return table;
  });
  runtime.enumWords = runtime.enums.map((en) => {
    const table: Int32Array[] = [];
    for (let n = 0; n < 4096; n++) {
      const name = en(n);
      if (name.startsWith('"')) table[n] = toWords(name);
    }
    return table;
  });
  return (new Function('R', source) as (r: typeof runtime) => Generated)(runtime);
}

// Wire readers shared by the generated functions. They read B at P, never past `e` (the end of the
// enclosing message: protobufjs bounds nested reads the same way), and bail on anything protobufjs
// would refuse or read differently.
const RUNTIME_SOURCE = String.raw`
function tg(e) {
  if (P >= e) throw BAIL;
  var b = B[P++];
  if (b < 128) return b;
  if (P >= e) throw BAIL;
  var c = B[P++];
  if (c < 128) return (b & 127) | (c << 7);
  throw BAIL;
}
function sz(e) {
  var v = 0, shift = 0;
  for (var i = 0; i < 4; i++) {
    if (P >= e) throw BAIL;
    var b = B[P++];
    v |= (b & 127) << shift;
    if (b < 128) return v;
    shift += 7;
  }
  throw BAIL;
}
// uint32() of protobufjs: the low 32 bits of a varint of up to 10 bytes.
function rv(e) {
  var v = 0;
  for (var i = 0; i < 5; i++) {
    if (P >= e) throw BAIL;
    var b = B[P++];
    v = (v | ((b & 127) << (7 * i))) >>> 0;
    if (b < 128) return v;
  }
  for (i = 0; i < 5; i++) {
    if (P >= e) throw BAIL;
    if (B[P++] < 128) return v;
  }
  throw BAIL;
}
// bool() of protobufjs: true when any bit of a varint of up to 10 bytes is set.
function rb(e) {
  var v = 0;
  for (var i = 0; i < 10; i++) {
    if (P >= e) throw BAIL;
    var b = B[P++];
    v |= b & 127;
    if (b < 128) return v !== 0 ? 1 : 0;
  }
  throw BAIL;
}
// A 64-bit varint into LO/HI, as protobufjs's readLongVarint.
function rv64(e) {
  var lo = 0, hi = 0, b;
  for (var i = 0; i < 4; i++) {
    if (P >= e) throw BAIL;
    b = B[P++];
    lo = (lo | ((b & 127) << (7 * i))) >>> 0;
    if (b < 128) { LO = lo; HI = 0; return; }
  }
  if (P >= e) throw BAIL;
  b = B[P++];
  lo = (lo | ((b & 127) << 28)) >>> 0;
  hi = (b & 127) >> 4;
  if (b < 128) { LO = lo; HI = hi; return; }
  for (i = 0; i < 5; i++) {
    if (P >= e) throw BAIL;
    b = B[P++];
    hi = (hi | ((b & 127) << (7 * i + 3))) >>> 0;
    if (b < 128) { LO = lo; HI = hi; return; }
  }
  throw BAIL;
}
function rd(e) {
  if (P + 8 > e) throw BAIL;
  var v = BD.getFloat64(P, true);
  P += 8;
  return v;
}
function rf(e) {
  if (P + 4 > e) throw BAIL;
  var v = BD.getFloat32(P, true);
  P += 4;
  return v;
}
// The wire buffer and a DataView of it, kept while the caller passes the same buffer (a batch's frames).
function wire(buf) {
  if (B !== buf) { B = buf; BD = new DataView(buf.buffer, buf.byteOffset, buf.byteLength); }
}
// An unknown field, or a known one with another wire type: protobufjs skips both.
function sk(u, fn, e) {
  if (fn === 0) throw BAIL;
  switch (u) {
    case 0:
      for (;;) { if (P >= e) throw BAIL; if (B[P++] < 128) return; }
    case 1: if (P + 8 > e) throw BAIL; P += 8; return;
    case 2: var l = sz(e); if (P + l > e) throw BAIL; P += l; return;
    case 5: if (P + 4 > e) throw BAIL; P += 4; return;
    default: throw BAIL; // groups (rare and recursive: left to protobufjs) and invalid wire types
  }
}
// ASCII four bytes at a time (no byte of a word has its top bit set), the rest by validUtf8 from the
// first byte that is not ASCII: what precedes it is ASCII, valid whatever follows.
function str(s, e) {
  var i = s;
  while (i + 4 <= e && (BD.getInt32(i, true) & -2139062144) === 0) i += 4;
  for (; i < e; i++) {
    if (B[i] >= 128) {
      if (!R.validUtf8(B, i, e)) throw BAIL;
      return;
    }
  }
}
// ---- writers: into OB at ON, growing the sink when needed --------------------------------------
function gr(k) {
  O.n = ON;
  O.reserve(k);
  if (OB !== O.bytes) { OB = O.bytes; OD = new DataView(OB.buffer, OB.byteOffset, OB.byteLength); }
}
function wb(c) {
  if (ON >= OB.length) gr(1);
  OB[ON++] = c;
}
// Prebuilt text as words (literals, enum names, heads: see toWords).
function wl(w) {
  var l = w[0], n = ON, k = (l + 3) >> 2;
  if (n + 4 * k > OB.length) gr(4 * k);
  var d = OD;
  for (var i = 0; i < k; i++) d.setInt32(n + 4 * i, w[i + 1], true);
  ON = n + l;
}
// Text known to be ASCII.
function wa(s) {
  var l = s.length, n = ON, b = OB;
  if (n + l > b.length) { gr(l); b = OB; }
  for (var i = 0; i < l; i++) b[n + i] = s.charCodeAt(i);
  ON = n + l;
}
// Any text, and JSON strings from the payload: the sink's own writers (they keep O.nonAscii).
function wt(s) {
  O.n = ON; O.text(s); ON = O.n; gr(0);
}
function js(s, e) {
  O.n = ON; O.jsonString(B, s, e); ON = O.n; gr(0);
}
function we(k, v) {
  var b = v >= 0 && v < 4096 ? ENW[k][v] : undefined;
  if (b !== undefined) wl(b); else wa(EN[k](v));
}
var P10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
// A non-negative integer below 2^53 as decimal digits; with d > 0, a decimal point d digits from the
// right (and a leading 0 when the number has no more than d digits).
function wdig(m, d) {
  var len = 1;
  while (len < 16 && m >= P10[len]) len++;
  var end = ON + (len <= d ? d + 2 : d > 0 ? len + 1 : len), i = end - 1, k, q;
  var b = OB;
  if (m < 4294967296) {
    var x = m >>> 0;
    for (k = 0; k < d; k++) { q = (x / 10) >>> 0; b[i--] = 48 + x - q * 10; x = q; }
    if (d > 0) b[i--] = 46;
    do { q = (x / 10) >>> 0; b[i--] = 48 + x - q * 10; x = q; } while (x > 0);
  } else {
    for (k = 0; k < d; k++) { q = Math.floor(m / 10); b[i--] = 48 + m - q * 10; m = q; }
    if (d > 0) b[i--] = 46;
    do { q = Math.floor(m / 10); b[i--] = 48 + m - q * 10; m = q; } while (m > 0);
  }
  ON = end;
}
// An int32 or uint32 as JSON (String(v)).
function wi(v) {
  if (ON + 11 > OB.length) gr(11);
  if (v < 0) { OB[ON++] = 45; v = -v; }
  wdig(v, 0);
}
// A double as JSON, the same text as the canonical writer's (String(v), non-finite as strings).
// Telemetry doubles mostly have a few decimals: those are written from integer digits, a fraction of
// the cost of String(v). The shortest decimal that reads back as v is String(v)'s digits as long as
// it has at most 14 significant digits (then no other decimal of as many places reads back as v).
// m / 10^d is the correctly rounded value of the decimal m·10^-d (both exact), as parsing it gives.
function wd(v) {
  if (ON + 32 > OB.length) gr(32);
  if (v === 0) {
    if (1 / v < 0) OB[ON++] = 45;
    OB[ON++] = 48;
    return;
  }
  var a = v < 0 ? -v : v;
  if (a >= 1e-6 && a < 2e6) {
    // Below 2e6, a·1e9 < 2^51: if some decimal of at most 9 places reads back as a, m9 is that decimal
    // scaled to 9 places exactly, and it reads back too; its trailing zeros give the shortest one.
    var m9 = Math.round(a * 1e9);
    if (m9 / 1e9 !== a) { wa(dbl(v)); return; }
    // a is within half a unit of its last place of m9 / 1e9, which is never within 1e-9 below an
    // integer it does not reach: a's whole part is the decimal's.
    var whole = Math.floor(a), fraction = m9 - whole * 1e9;
    if (fraction < 0) { whole--; fraction += 1e9; }
    var f = fraction | 0, d = 9, q = 0;
    // Strip up to 8 trailing zeros in at most four steps (5, 3, 2, 1) rather than one by one.
    if (f === 0) d = 0;
    else {
      if (f % 100000 === 0) { f = (f / 100000) | 0; d -= 5; }
      if (f % 1000 === 0) { f = (f / 1000) | 0; d -= 3; }
      if (f % 100 === 0) { f = (f / 100) | 0; d -= 2; }
      if (f % 10 === 0) { f = (f / 10) | 0; d -= 1; }
    }
    if (whole * P10[d] + f > 99999999999999) { wa(dbl(v)); return; }
    if (v < 0) OB[ON++] = 45;
    wdig(whole, 0);
    if (d > 0) {
      var b = OB, n = ON;
      b[n] = 46;
      for (var k = n + d; k > n; k--) { q = (f / 10) | 0; b[k] = 48 + f - q * 10; f = q; }
      ON = n + d + 1;
    }
    return;
  }
  if (a >= 2e6 && a < 1e15) {
    for (d = 0; d <= 9; d++) {
      var sc = P10[d], m = Math.round(a * sc);
      if (m > 99999999999999) break;
      if (m / sc === a) {
        if (v < 0) OB[ON++] = 45;
        wdig(m, d);
        return;
      }
    }
  }
  wa(dbl(v));
}
// A signed 64-bit integer as protobufjs's Long.toString() writes it.
function i64(lo, hi) {
  hi = hi | 0;
  if (hi >= -2097152 && hi < 2097152) return String(hi * 4294967296 + lo);
  return ((BigInt(hi) << 32n) + BigInt(lo)).toString();
}
function dbl(v) {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  if (v === v && v !== Infinity && v !== -Infinity) return String(v);
  return v !== v ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
}
// google.protobuf.Timestamp in [s, e); ms: seconds above the threshold hold milliseconds (alerts).
function ts(s, e, ms) {
  var slo = 0, shi = 0, nanos = 0;
  P = s;
  while (P < e) {
    var t = tg(e), u = t & 7, fn = t >>> 3;
    if (fn === 1 && u === 0) { rv64(e); slo = LO; shi = HI; continue; }
    if (fn === 2 && u === 0) { nanos = rv(e) | 0; continue; }
    sk(u, fn, e);
  }
  var seconds = (shi | 0) * 4294967296 + slo;
  if (ms && seconds >= R.ALERT_MS) {
    INFO.rewrites++;
    var whole = Math.floor(seconds / 1000);
    nanos = (seconds - whole * 1000) * 1000000;
    seconds = whole;
  }
  // No RFC 3339 form (formatTimestamp refuses the same): protobufjs's path gives the verdict.
  if (seconds < R.MIN_SECONDS || seconds > R.MAX_SECONDS || nanos < 0 || nanos > 999999999) throw BAIL;
  // Epoch ms as Date.parse reads the text written below (it reads years 0-99 as 1900-1999).
  TSMS = seconds >= R.YEAR_100_SECONDS ? seconds * 1000 + Math.floor(nanos / 1000000) : NaN;
  var days = Math.floor(seconds / 86400), sod = seconds - days * 86400;
  if (days !== TSDAY) { TSDAY = days; TSDW = R.dayWords(days); }
  var at = ON + 1;
  wl(TSDW);
  if (ON + 24 > OB.length) gr(24);
  var b = OB, n = ON, h = Math.floor(sod / 3600), mi = Math.floor((sod - h * 3600) / 60), se = sod - h * 3600 - mi * 60;
  b[n] = 48 + Math.floor(h / 10); b[n + 1] = 48 + h % 10; b[n + 2] = 58;
  b[n + 3] = 48 + Math.floor(mi / 10); b[n + 4] = 48 + mi % 10; b[n + 5] = 58;
  b[n + 6] = 48 + Math.floor(se / 10); b[n + 7] = 48 + se % 10;
  n += 8;
  if (nanos !== 0) {
    // 3, 6 or 9 digits: the fewest that show the nanos exactly.
    var f = nanos, digits = 9;
    if (f % 1000000 === 0) { f = f / 1000000; digits = 3; } else if (f % 1000 === 0) { f = f / 1000; digits = 6; }
    b[n++] = 46;
    for (var k = n + digits - 1; k >= n; k--) { var q = Math.floor(f / 10); b[k] = 48 + f - q * 10; f = q; }
    n += digits;
  }
  b[n++] = 90;
  var end = n;
  b[n++] = 34;
  ON = n;
  return at * 4294967296 + end;
}
var TSDAY = NaN, TSDW = null, TSMS = NaN;
// A Value whose oneof ended on string_value: Location strings and scientific notation, as
// normaliseVehicleData rewrites them.
function vstr(s, e) {
  var text = null;
  if (DK === R.LOCATION_FIELD && !LOCDONE) {
    LOCDONE = true;
    // Read from the bytes (no string, regex match or number strings); the string's parser decides
    // what the bytes reader leaves undecided.
    var found = R.parseLocationBytes(B, s, e, LOCF), loc = null;
    if (found === 1) loc = { latitude: LOCF[0], longitude: LOCF[1] };
    else if (found !== 0) { text = utf8text(s, e); loc = R.parseLocationString(text); }
    if (loc !== null) {
      INFO.rewrites++;
      INFO.valueRewrites.push({ datumStart: DS, datumEnd: DE, valueStart: VS, valueEnd: VE, location: loc, text: '' });
      wa('{"locationValue":{"latitude":');
      wd(loc.latitude);
      wa(',"longitude":');
      wd(loc.longitude);
      wa('}}');
      VT = 3; VF[0] = loc.latitude; VF[1] = loc.longitude;
      return;
    }
  }
  // Scientific notation needs an e or E and only ASCII digits, signs and a dot.
  var sci = false;
  for (var i = s; i < e; i++) {
    var c = B[i];
    if (c === 101 || c === 69) sci = true;
    else if (c >= 128) { sci = false; break; }
  }
  if (sci) {
    if (text === null) text = utf8text(s, e);
    var rewritten = R.rewriteScientific(text);
    if (rewritten !== text) {
      INFO.rewrites++;
      INFO.valueRewrites.push({ datumStart: DS, datumEnd: DE, valueStart: VS, valueEnd: VE, location: null, text: rewritten });
      wa('{"stringValue":');
      wa(JSON.stringify(rewritten));
      wb(125);
      return;
    }
  }
  wa('{"stringValue":');
  js(s, e);
  wb(125);
}
var UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });
var LOCF = new Float64Array(2);
function utf8text(s, e) {
  var t = '';
  for (var i = s; i < e; i++) {
    if (B[i] >= 128) return t + UTF8.decode(B.slice(i, e));
    t += String.fromCharCode(B[i]);
  }
  return t;
}
`;

/** The generated function of one message type: `function m<index>(s, e)`. */
function messageFunction(
  type: Type,
  index: number,
  visit: (t: Type) => number,
  enumIndex: (e: protobuf.Enum) => number,
  runtimeHeads: Array<{ en: number; open: string; close: string }>,
  loneDoubles: Map<number, LoneDouble>,
): string {
  const typeName = type.fullName.slice(1);
  const fields = type.fieldsArray.map((f) => f.resolve());
  const decl: string[] = [];
  const scan: string[] = [];
  const after: string[] = [];
  const write: string[] = [];
  const hasOneof = fields.some((f) => f.partOf);
  // A oneof keeps one member (a second one bails), so its members share one set of variables.
  if (hasOneof) decl.push('oc = 0, on = 0, ov = 0, os = -1, oe = -1, olo = 0, ohi = 0');
  const nm = (field: Field, i: number, base: string): string => (field.partOf ? `o${base}` : `${base}${i}`);

  fields.forEach((field, i) => {
    const id = field.id;
    const full = `${typeName}.${protoNameOf(field)}`;
    const rt = field.resolvedType;
    const member = field.partOf !== null && field.partOf !== undefined;
    const setOneof = member ? `oc = ${id}; on++; ` : '';
    if (field.map) {
      const f = field as unknown as protobuf.MapField;
      if (f.keyType !== 'string' || f.type !== 'string') throw new Error(`transcoder: no rule for map ${full}`);
      decl.push(`c${i} = 0`);
      scan.push(`case ${id}: if (u !== 2) break; l = sz(e); if (P + l > e) throw BAIL; P += l; c${i}++; continue;`);
      after.push(`if (c${i} > MAX) throw BAIL;`);
      return;
    }
    if (field.repeated) {
      decl.push(`c${i} = 0`);
      if (rt instanceof protobuf.Type) {
        visit(rt);
        scan.push(`case ${id}: if (u !== 2) break; l = sz(e); if (P + l > e) throw BAIL; P += l; c${i}++; continue;`);
      } else if (rt instanceof protobuf.Enum) {
        enumIndex(rt);
        scan.push(
          `case ${id}: if (u === 2) { l = sz(e); q = P + l; if (q > e) throw BAIL; while (P < q) { rv(q); c${i}++; } continue; } if (u !== 0) break; rv(e); c${i}++; continue;`,
        );
      } else {
        throw new Error(`transcoder: no rule for repeated ${field.type} (${full})`);
      }
      after.push(`if (c${i} > MAX) throw BAIL;`);
      return;
    }
    if (rt instanceof protobuf.Type) {
      if (rt.fullName.slice(1) !== TIMESTAMP) visit(rt);
      if (!member) decl.push(`s${i} = -1, e${i} = -1, n${i} = 0`);
      scan.push(`case ${id}: if (u !== 2) break; l = sz(e); ${nm(field, i, 's')} = P; ${nm(field, i, 'e')} = P + l; if (${nm(field, i, 'e')} > e) throw BAIL; P = ${nm(field, i, 'e')}; ${member ? '' : `n${i}++; `}${setOneof}continue;`);
      if (!member) after.push(`if (n${i} > 1) throw BAIL;`);
      return;
    }
    if (rt instanceof protobuf.Enum) {
      enumIndex(rt);
      if (!member) decl.push(`${nm(field, i, 'v')} = 0`);
      scan.push(`case ${id}: if (u !== 0) break; ${nm(field, i, 'v')} = rv(e) | 0; ${setOneof}continue;`);
      return;
    }
    switch (field.type) {
      case 'string':
        if (!member) decl.push(`${nm(field, i, 's')} = 0, ${nm(field, i, 'e')} = 0`);
        scan.push(`case ${id}: if (u !== 2) break; l = sz(e); ${nm(field, i, 's')} = P; ${nm(field, i, 'e')} = P + l; if (${nm(field, i, 'e')} > e) throw BAIL; str(${nm(field, i, 's')}, ${nm(field, i, 'e')}); P = ${nm(field, i, 'e')}; ${setOneof}continue;`);
        return;
      case 'int32':
      case 'uint32':
      case 'bool':
        if (!member) decl.push(`${nm(field, i, 'v')} = 0`);
        scan.push(`case ${id}: if (u !== 0) break; ${nm(field, i, 'v')} = ${field.type === 'bool' ? 'rb' : 'rv'}(e); ${setOneof}continue;`);
        return;
      case 'int64':
        if (!member) decl.push(`${nm(field, i, 'lo')} = 0, ${nm(field, i, 'hi')} = 0`);
        scan.push(`case ${id}: if (u !== 0) break; rv64(e); ${nm(field, i, 'lo')} = LO; ${nm(field, i, 'hi')} = HI; ${setOneof}continue;`);
        return;
      case 'double':
        if (!member) decl.push(`${nm(field, i, 'v')} = 0`);
        scan.push(`case ${id}: if (u !== 1) break; ${nm(field, i, 'v')} = rd(e); ${setOneof}continue;`);
        return;
      case 'float':
        if (!member) decl.push(`${nm(field, i, 'v')} = 0`);
        scan.push(`case ${id}: if (u !== 5) break; ${nm(field, i, 'v')} = rf(e); ${setOneof}continue;`);
        return;
      default:
        throw new Error(`transcoder: no rule for field type ${field.type} (${full})`);
    }
  });
  if (hasOneof) after.push('if (on > 1) throw BAIL;');

  // ---- the write pass, in declaration order, oneofs at their first member -----------------------
  const valueOf = (field: Field, i: number): string => {
    const full = `${typeName}.${protoNameOf(field)}`;
    const rt = field.resolvedType;
    if (field.map) {
      return `wmap${index}_${i}(s, e);`;
    }
    if (field.repeated) {
      if (rt instanceof protobuf.Type) {
        const m = visit(rt);
        return `wb(91); if (c${i} > 0) { var first = true, at = s; while (at < e) { P = at; t = tg(e); u = t & 7; if (t >>> 3 === ${field.id} && u === 2) { l = sz(e); var a = P; at = a + l; if (!first) wb(44); first = false; ${loneDoubleInline(loneDoubles.get(m), false)}m${m}(a, at); } else { sk(u, t >>> 3, e); at = P; } } } wb(93);`;
      }
      const en = enumIndex(rt as protobuf.Enum);
      return `wb(91); if (c${i} > 0) { var first = true, at = s; while (at < e) { P = at; t = tg(e); u = t & 7; if (t >>> 3 === ${field.id} && (u === 2 || u === 0)) { if (u === 2) { l = sz(e); q = P + l; while (P < q) { if (!first) wb(44); first = false; we(${en}, rv(q) | 0); } } else { if (!first) wb(44); first = false; we(${en}, rv(e) | 0); } at = P; } else { sk(u, t >>> 3, e); at = P; } } } wb(93);`;
    }
    if (rt instanceof protobuf.Type) {
      if (rt.fullName.slice(1) === TIMESTAMP) {
        const ms = MS_TIMESTAMPS.has(full);
        const capture = VIN_FIELDS.has(`${typeName}.vin`) && protoNameOf(field) === 'created_at';
        return `if (${nm(field, i, 's')} >= 0) { var span = ts(${nm(field, i, 's')}, ${nm(field, i, 'e')}, ${ms}); ${capture ? 'INFO.createdAtStart = Math.floor(span / 4294967296); INFO.createdAtEnd = span % 4294967296; INFO.createdAtMs = TSMS;' : ''} } else wa('null');`;
      }
      const m = visit(rt);
      return `if (${nm(field, i, 's')} >= 0) m${m}(${nm(field, i, 's')}, ${nm(field, i, 'e')}); else wa('null');`;
    }
    if (rt instanceof protobuf.Enum) return `we(${enumIndex(rt)}, ${nm(field, i, 'v')});`;
    switch (field.type) {
      case 'string':
        if (VIN_FIELDS.has(full)) return 'wl(VIN);';
        return `js(${nm(field, i, 's')}, ${nm(field, i, 'e')});`;
      case 'int32':
        return `wi(${nm(field, i, 'v')} | 0);`;
      case 'uint32':
        return `wi(${nm(field, i, 'v')} >>> 0);`;
      case 'bool':
        return `if (${nm(field, i, 'v')} !== 0) wa('true'); else wa('false');`;
      case 'int64':
        return `wb(34); wa(i64(${nm(field, i, 'lo')}, ${nm(field, i, 'hi')})); wb(34);`;
      case 'double':
        return `wd(${nm(field, i, 'v')});`;
      default: // float
        return `wa(R.floatToJson(${nm(field, i, 'v')}));`;
    }
  };

  const isValue = typeName === VALUE_TYPE;
  const isDatum = typeName === DATUM_TYPE;
  // The Datum's head merged with a Value's `{"doubleValue":` (see lone double below): -1 when none.
  let doubleHead = -1;
  let doublePrefix = '';
  let doubleTag = 0;
  const helpers: string[] = [];
  // Literal text is merged where the layout is static: `{` with the first key, `}` after the last.
  const oneofs = [...new Set(fields.filter((f) => f.partOf).map((f) => f.partOf!))];
  const onlyOneof = oneofs.length === 1 && fields.every((f) => f.partOf === oneofs[0]);
  if (onlyOneof) {
    const cases = oneofs[0]!.fieldsArray.map((memberField) => {
      const prefix = '{' + JSON.stringify(jsonNameOf(memberField)) + ':';
      const value = isValue ? valueWithSample(memberField, valueOf(memberField, fields.indexOf(memberField))) : valueOf(memberField, fields.indexOf(memberField));
      return `case ${memberField.id}: wa(${JSON.stringify(prefix)}); ${value} wb(125); return;`;
    });
    write.push(`switch (oc) { ${cases.join(' ')} } wa('{}');`);
  } else {
    let alwaysWritten = false;
    const seenOneofs = new Set<string>();
    // A message that starts with an enum and another plain field (Datum: key, value) gets its head
    // `{"key":<name>,"value":` as one text per enum number.
    const [first, second] = fields;
    let mergedHead = false;
    if (first && second && !first.partOf && !second.partOf && !first.repeated && !second.repeated && !second.map && first.resolvedType instanceof protobuf.Enum) {
      const en = enumIndex(first.resolvedType);
      const head = runtimeHeads.length;
      const open = '{' + JSON.stringify(jsonNameOf(first)) + ':';
      const close = ',' + JSON.stringify(jsonNameOf(second)) + ':';
      runtimeHeads.push({ en, open, close });
      // A Datum's head is not written values only (VO): its Value JSON is what the state points into.
      write.push(`${isDatum ? 'if (!VO) ' : ''}{ if (HD[${head}][v0] !== undefined) wl(HD[${head}][v0]); else wa(${JSON.stringify(open)} + EN[${en}](v0) + ${JSON.stringify(close)}); }`);
      const member = isDatum ? loneDoubleMember(second) : null;
      if (member !== null) {
        doubleHead = runtimeHeads.length;
        doublePrefix = member.prefix;
        doubleTag = member.tag;
        runtimeHeads.push({ en, open, close: close + member.prefix });
        loneDoubles.set(index, { head: doubleHead, prefix: member.prefix, tag: member.tag });
      }
      mergedHead = true;
      alwaysWritten = true;
    }
    fields.forEach((field, i) => {
      if (mergedHead && i === 0) return;
      const open = write.length === 0 ? '{' : '';
      const oneof = field.partOf;
      if (oneof) {
        if (seenOneofs.has(oneof.name)) return;
        seenOneofs.add(oneof.name);
        if (open) write.push('wb(123);');
        const cases: string[] = [];
        for (const memberField of oneof.fieldsArray) {
          const prefix = JSON.stringify(jsonNameOf(memberField)) + ':';
          const comma = alwaysWritten ? `wa(${JSON.stringify(',' + prefix)});` : `if (w) wa(${JSON.stringify(',' + prefix)}); else wa(${JSON.stringify(prefix)}); w = true;`;
          cases.push(`case ${memberField.id}: ${comma} ${valueOf(memberField, fields.indexOf(memberField))} break;`);
        }
        write.push(`switch (oc) { ${cases.join(' ')} }`);
        return;
      }
      const prefix = JSON.stringify(jsonNameOf(field)) + ':';
      const comma = mergedHead && i === 1
        ? ''
        : alwaysWritten
        ? `wa(${JSON.stringify(',' + prefix)});`
        : seenOneofs.size > 0
          ? `if (w) wa(${JSON.stringify(',' + prefix)}); else wa(${JSON.stringify(prefix)}); w = true;`
          : `wa(${JSON.stringify(open + prefix)});`;
      let value = valueOf(field, i);
      if (isDatum && protoNameOf(field) === 'value') {
        const keyIndex = fields.findIndex((f) => protoNameOf(f) === 'key');
        value = `DK = v${keyIndex}; DS = s; DE = e; var vs = ON; VT = 0; ${value} ${datumBookkeeping(`v${keyIndex}`)}`;
      }
      if (field.map) helpers.push(mapWriter(field, `${index}_${i}`));
      write.push(`${comma} ${value}`);
      alwaysWritten = true;
    });
    if (write.length === 0) write.push("wa('{');");
    write.push(isDatum ? 'if (!VO) wb(125);' : 'wb(125);');
    if (typeName === LOCATION_TYPE) {
      const at = (name: string): number => fields.findIndex((f) => protoNameOf(f) === name && f.type === 'double' && !f.partOf && !f.repeated);
      if (at('latitude') < 0 || at('longitude') < 0) throw new Error('transcoder: LocationValue has no double latitude and longitude');
      write.push(`VF[2] = v${at('latitude')}; VF[3] = v${at('longitude')};`);
    }
  }
  const topCount = fields.findIndex((f) => f.repeated && f.id === 1 && f.resolvedType instanceof protobuf.Type);
  // A plain datum whose Value is its double member and nothing else (9 bytes: the tag, 8 bytes), as
  // cars send most datums: the Datum's head and the Value's `{"doubleValue":` as one text, the double
  // read and written here, the bookkeeping as the Value's own writer leaves it (VT, VF[0]) and as the
  // Datum's does after it: the same bytes as the Value's function, without its call, scan and switch.
  // No DK/DS/DE: only a Value rewritten (a string member) reads them, and its datum sets them first.
  // The Value's and the Datum's closing braces are stored together, the Value's text ending at the first.
  const loneDouble = doubleHead < 0
    ? ''
    : `if (e - s1 === 9 && B[s1] === ${doubleTag}) { var hq = HD[${doubleHead}][v0]; if (hq !== undefined) { if (VO) { wa(${JSON.stringify(doublePrefix)}); } else wl(hq); var vs = ON - ${doublePrefix.length}; var dv = BD.getFloat64(s1 + 1, true); wd(dv); VT = 1; VF[0] = dv; if (ON + 2 > OB.length) gr(2); OB[ON] = 125; OB[ON + 1] = 125; ON++; ${datumBookkeeping('v0')} if (!VO) ON++; return; } }`;
  // A datum as cars send it: its key (a one- or two-byte varint), then its value (shorter than 128
  // bytes), nothing else. Read without the scan loop; anything else takes the loop from the start.
  const datumFast = isDatum && fields.length === 2 && fields[0]!.id === 1 && fields[0]!.resolvedType instanceof protobuf.Enum && !fields[0]!.repeated &&
    fields[1]!.id === 2 && fields[1]!.resolvedType instanceof protobuf.Type && !fields[1]!.repeated && !fields[0]!.partOf && !fields[1]!.partOf
    ? `if (e - s >= 4 && B[s] === 8) { var fk = B[s + 1], fp = s + 2; if (fk >= 128) { if (B[fp] < 128) { fk = (fk & 127) | (B[fp] << 7); fp++; } else fp = e; } if (fp + 2 <= e && B[fp] === 18 && B[fp + 1] < 128 && fp + 2 + B[fp + 1] === e) { v0 = fk; s1 = fp + 2; e1 = e; n1 = 1; P = e; ${loneDouble} } }`
    : '';
  const isTop = VIN_FIELDS.has(`${typeName}.vin`);
  // A record with datums, values only (VO): its datums (each writing its Value alone) without brackets
  // or commas, then what else can fail or is read (the created_at, other messages), in the same order
  // as the whole record, so the verdicts, state triples and datum values are the same.
  const hasDatums = fields.some((f) => f.repeated && f.resolvedType instanceof protobuf.Type && f.resolvedType.fullName.slice(1) === DATUM_TYPE);
  const valuesOnly = isTop && hasDatums
    ? 'if (VO) { ' + fields.map((field, i) => {
      const rt = field.resolvedType;
      if (field.map || !(rt instanceof protobuf.Type)) return '';
      if (field.repeated) {
        const m = visit(rt);
        return `if (c${i} > 0) { var at = s; while (at < e) { P = at; t = tg(e); u = t & 7; if (t >>> 3 === ${field.id} && u === 2) { l = sz(e); var a = P; at = a + l; ${loneDoubleInline(loneDoubles.get(m), true)}m${m}(a, at); } else { sk(u, t >>> 3, e); at = P; } } }`;
      }
      return valueOf(field, i);
    }).join(' ') + ' return; }'
    : '';

  return `
function m${index}(s, e) {
  var t = 0, u = 0, l = 0, q = 0, w = false${decl.length ? ', ' + decl.join(', ') : ''};
  P = s;
  ${datumFast}
  while (P < e) {
    t = tg(e); u = t & 7;
    switch (t >>> 3) { ${scan.join('\n      ')} }
    sk(u, t >>> 3, e);
  }
  ${after.join(' ')}
  ${isTop && topCount >= 0 ? `INFO.signals = c${topCount};` : ''}
  ${isTop ? recordHead(fields) : ''}
  ${valuesOnly}
  ${isValue ? valueStringHook(fields) : ''}
  ${write.join('\n  ')}
}
${helpers.join('\n')}`;
}

/** A Datum type's lone double (see loneDouble in messageFunction): its merged head, the member's JSON prefix and tag byte. */
interface LoneDouble {
  head: number;
  prefix: string;
  tag: number;
}

/**
 * A record's datum [a, at) written where it is a lone double of a known key (the shape the Datum's
 * datumFast and loneDouble take: key varint of one or two bytes, then a Value of 9 bytes that is the
 * double member), in the record's own loop instead of a call of the Datum's function per datum; ends in
 * `else ` so any other datum still calls it. The same bytes, state triple and datum values as that
 * path: values only, the Value's text and its closing brace; else the merged head first and the
 * Datum's brace after (no DK/DS/DE, as there).
 */
function loneDoubleInline(lone: LoneDouble | undefined, valuesOnly: boolean): string {
  if (lone === undefined) return '';
  if (!valuesOnly) {
    return `var dk = 0, dp = at, hq = null; if (at - a >= 13 && B[a] === 8) { dk = B[a + 1]; dp = a + 2; if (dk >= 128) { if (B[dp] < 128) { dk = (dk & 127) | (B[dp] << 7); dp++; } else dp = at; } }` +
      ` if (dp + 11 === at && B[dp] === 18 && B[dp + 1] === 9 && B[dp + 2] === ${lone.tag} && (hq = HD[${lone.head}][dk]) !== undefined) {` +
      ` wl(hq); var vs = ON - ${lone.prefix.length}; var dv = BD.getFloat64(dp + 3, true); wd(dv); VT = 1; VF[0] = dv;` +
      ` if (ON + 2 > OB.length) gr(2); OB[ON] = 125; OB[ON + 1] = 125; ON++; ${datumBookkeeping('dk')} ON++; } else `;
  }
  return `var dk = 0, dp = at; if (at - a >= 13 && B[a] === 8) { dk = B[a + 1]; dp = a + 2; if (dk >= 128) { if (B[dp] < 128) { dk = (dk & 127) | (B[dp] << 7); dp++; } else dp = at; } }` +
    ` if (dp + 11 === at && B[dp] === 18 && B[dp + 1] === 9 && B[dp + 2] === ${lone.tag} && HD[${lone.head}][dk] !== undefined) {` +
    ` wa(${JSON.stringify(lone.prefix)}); var vs = ON - ${lone.prefix.length}; var dv = BD.getFloat64(dp + 3, true); wd(dv); VT = 1; VF[0] = dv;` +
    ` if (ON + 1 > OB.length) gr(1); OB[ON++] = 125; ${datumBookkeeping('dk')} } else `;
}

/**
 * After a datum's Value is written (from `vs` to ON, its key in `key`): its state triple, and a followed
 * Field's value as the transcoder knew it (DatumValues), so the samples need no parse.
 */
function datumBookkeeping(key: string): string {
  return `if (ST !== null) { var sl = ST.length; if (sl + 3 > ST.values.length) ST.room(); var sv = ST.values; sv[sl] = ${key}; sv[sl + 1] = vs; sv[sl + 2] = ON; ST.length = sl + 3; }` +
    ` if (SM !== null && SMS[${key}] > 0) { var sn = SM.n; if (sn + ${DATUM_VALUE_COLUMNS} > SM.values.length) SM.room(); var sw = SM.values; sw[sn] = SMS[${key}]; sw[sn + 1] = VT; sw[sn + 2] = VF[0]; sw[sn + 3] = VF[1]; sw[sn + 4] = vs; SM.n = sn + ${DATUM_VALUE_COLUMNS}; }`;
}

/**
 * The Value's double member when the Datum's value field is a Value whose members are all one oneof
 * (written `{"<member>":<value>}`) with a double_value of a one-byte tag: its tag byte and JSON prefix.
 */
function loneDoubleMember(valueField: Field): { tag: number; prefix: string } | null {
  const value = valueField.resolvedType;
  if (!(value instanceof protobuf.Type) || value.fullName.slice(1) !== VALUE_TYPE) return null;
  const fields = value.fieldsArray;
  const oneof = fields[0]?.partOf;
  if (!oneof || !fields.every((f) => f.partOf === oneof)) return null;
  const member = fields.find((f) => protoNameOf(f) === 'double_value' && f.type === 'double' && !f.repeated);
  if (member === undefined || member.id >= 16) return null;
  return { tag: (member.id << 3) | 1, prefix: '{' + JSON.stringify(jsonNameOf(member)) + ':' };
}

/**
 * A Value member's writer followed by what the samples read from it (DatumValues): the number its JSON
 * text reads as, the location it wrote, or nothing (read back from the JSON: strings, enums, others).
 */
function valueWithSample(member: Field, write: string): string {
  switch (protoNameOf(member)) {
    case 'double_value':
      if (member.type !== 'double') break;
      return `${write} VT = 1; VF[0] = ov;`;
    case 'int_value':
      if (member.type !== 'int32') break;
      return `${write} VT = 1; VF[0] = ov | 0;`;
    case 'boolean_value':
      if (member.type !== 'bool') break;
      return `${write} VT = 1; VF[0] = ov !== 0 ? 1 : 0;`;
    case 'float_value':
      // The text floatToJson writes is what the samples read: the shortest decimal of the float.
      if (member.type !== 'float') break;
      return 'var ft = R.floatToJson(ov); wa(ft); VT = 1; VF[0] = +ft;';
    case 'long_value':
      if (member.type !== 'int64') break;
      return 'var lt = i64(olo, ohi); wb(34); wa(lt); wb(34); VT = 1; VF[0] = +lt;';
    case 'location_value':
      if (member.resolvedType?.fullName.slice(1) !== LOCATION_TYPE) break;
      return `${write} VT = 3; VF[0] = VF[2]; VF[1] = VF[3];`;
  }
  if (member.resolvedType instanceof protobuf.Enum && !member.repeated) return `${write} VT = 2; VF[0] = ov; VF[1] = ${member.id};`;
  return write;
}

/** A record type's call of the caller's RecordHead, between reading the payload and writing it. */
function recordHead(fields: Field[]): string {
  const i = fields.findIndex((f) => protoNameOf(f) === 'is_resend' && f.type === 'bool' && !f.partOf && !f.repeated);
  const resend = i < 0 ? 'false' : `v${i} !== 0`;
  return `INFO.isResend = ${resend}; if (HK !== null) { var hk = HK; HK = null; O.n = ON; hk(${resend}); ON = O.n; gr(0); } INFO.recordStart = ON;`;
}

/** A Value whose oneof ended on string_value is written whole by vstr (it may become a locationValue). */
function valueStringHook(fields: Field[]): string {
  const i = fields.findIndex((f) => protoNameOf(f) === 'string_value');
  if (i < 0) throw new Error('transcoder: Value has no string_value');
  return `if (oc === ${fields[i]!.id}) { VS = s; VE = e; vstr(os, oe); return; }`;
}

/**
 * map<string, string> as protobufjs builds it (later keys win, missing key or value is "") and the
 * canonical writer writes it (keys sorted as JavaScript sorts strings). Only error payloads carry
 * maps, so this one may allocate.
 */
function mapWriter(field: Field, name: string): string {
  return `
function wmap${name}(s, e) {
  var entries = new Map(), at = s, t, u, l;
  while (at < e) {
    P = at; t = tg(e); u = t & 7;
    if (t >>> 3 === ${field.id} && u === 2) {
      l = sz(e); var es = P, ee = P + l; var ks = -1, ke = -1, vs = -1, ve = -1;
      while (P < ee) {
        var t2 = tg(ee), u2 = t2 & 7;
        if (t2 >>> 3 === 1 && u2 === 2) { l = sz(ee); ks = P; ke = P + l; if (ke > ee) throw BAIL; str(ks, ke); P = ke; continue; }
        if (t2 >>> 3 === 2 && u2 === 2) { l = sz(ee); vs = P; ve = P + l; if (ve > ee) throw BAIL; str(vs, ve); P = ve; continue; }
        sk(u2, t2 >>> 3, ee);
      }
      entries.set(ks < 0 ? '' : utf8text(ks, ke), ve < 0 ? '' : utf8text(vs, ve));
      at = ee;
    } else { sk(u, t >>> 3, e); at = P; }
  }
  if (entries.size > MAX) throw BAIL;
  var keys = Array.from(entries.keys()).sort();
  wb(123);
  for (var k = 0; k < keys.length; k++) {
    if (k > 0) wb(44);
    wt(JSON.stringify(keys[k]));
    wb(58);
    wt(JSON.stringify(entries.get(keys[k])));
  }
  wb(125);
}`;
}
