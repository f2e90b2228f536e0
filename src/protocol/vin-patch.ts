// The normalised record as protobuf without decoding it: the car's bytes with the top-level VIN field
// replaced and, where the transcoder rewrote a datum's Value (a Location string, a scientific-notation
// string), that datum written anew. Decoders read the same message as protobufjs's re-encoding of the
// normalised record (field order does not matter in protobuf; unknown fields stay, a rewritten datum's
// and a rewritten string's Value's included). Millisecond alert times are left to the re-encoding.
import type { JsonSink } from './json-sink.js';
import type { ValueRewrite } from './transcoder.js';

/** Field numbers of the V payload a rewritten datum is written with (from the schema). */
export interface DatumFields {
  /** Payload.data */
  data: number;
  /** Datum.value */
  value: number;
  /** Value.string_value, Value.location_value */
  stringValue: number;
  locationValue: number;
  /** LocationValue.latitude, LocationValue.longitude */
  latitude: number;
  longitude: number;
}

const NO_REWRITES: readonly ValueRewrite[] = [];

/**
 * Writes src[start, end) without its top-level length-delimited fields numbered `vinField`, followed by
 * that field holding `vin` (UTF-8), at out.n: the runs between VIN fields are copied whole; the datums
 * of `rewrites` (in wire order) are written with their new Value. False (and out.n as it was) when the
 * top level is not plain (groups, tags or lengths longer than the transcoder accepts, truncation) or a
 * rewrite does not match a top-level datum: the caller then re-encodes through protobufjs.
 */
export function replaceVinInto(
  out: JsonSink,
  src: Uint8Array,
  start: number,
  end: number,
  vinField: number,
  vin: Uint8Array,
  rewrites: readonly ValueRewrite[] = NO_REWRITES,
  fields: DatumFields | null = null,
): boolean {
  // tag (one or two bytes), length (at most two bytes for any VIN we accept), the VIN
  if (vin.length >= 1 << 14) return false;
  if (rewrites.length > 0 && fields === null) return false;
  const mark = out.n;
  // A rewritten datum grows by at most its new Value (a LocationValue: 20 bytes, or the text) plus heads.
  let room = end - start + vin.length + 8;
  for (let i = 0; i < rewrites.length; i++) room += 64 + 3 * rewrites[i]!.text.length + rewrites[i]!.datumEnd - rewrites[i]!.datumStart;
  out.reserve(room);
  const bytes = out.bytes;
  let n = mark;
  let next = 0;
  let run = start;
  let p = start;
  while (p < end) {
    const fieldStart = p;
    p = fieldEnd(src, p, end);
    if (p < 0) return false;
    const field = FIELD;
    const wire = WIRE;
    if (wire === 2 && next < rewrites.length && field === fields!.data && CONTENT === rewrites[next]!.datumStart) {
      if (p !== rewrites[next]!.datumEnd) return false;
      bytes.set(src.subarray(run, fieldStart), n);
      n = writeDatum(bytes, n + fieldStart - run, src, rewrites[next]!, fields!);
      if (n < 0) return false;
      run = p;
      next++;
    }
    if (field === vinField && wire === 2) {
      bytes.set(src.subarray(run, fieldStart), n);
      n += fieldStart - run;
      run = p;
    }
  }
  if (next !== rewrites.length) return false;
  bytes.set(src.subarray(run, end), n);
  n += end - run;
  const tag = (vinField << 3) | 2;
  if (tag < 0x80) bytes[n++] = tag;
  else {
    bytes[n++] = (tag & 0x7f) | 0x80;
    bytes[n++] = tag >>> 7;
  }
  if (vin.length < 0x80) bytes[n++] = vin.length;
  else {
    bytes[n++] = (vin.length & 0x7f) | 0x80;
    bytes[n++] = vin.length >>> 7;
  }
  bytes.set(vin, n);
  out.n = n + vin.length;
  return true;
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const TEXT = new TextEncoder();

/** A varint of a non-negative number below 2^31 (tags and lengths). */
function putVarint(bytes: Uint8Array, n: number, v: number): number {
  while (v >= 0x80) {
    bytes[n++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  bytes[n++] = v;
  return n;
}

function varintLength(v: number): number {
  let length = 1;
  while (v >= 0x80) {
    v >>>= 7;
    length++;
  }
  return length;
}

function putDouble(bytes: Uint8Array, n: number, v: number): number {
  F64[0] = v;
  for (let i = 0; i < 8; i++) bytes[n + i] = F64_BYTES[i]!;
  return n + 8;
}

/**
 * The end of the field at src[p] (tags of up to two bytes and lengths of up to four, as the transcoder
 * reads them), or -1 when it is not plain or runs past `end`. FIELD gets its number, WIRE its type,
 * CONTENT where a length-delimited field's content starts.
 */
let FIELD = 0;
let WIRE = 0;
let CONTENT = 0;
function fieldEnd(src: Uint8Array, p: number, end: number): number {
  let tag = src[p++]!;
  if (tag >= 0x80) {
    if (p >= end || src[p]! >= 0x80) return -1;
    tag = (tag & 0x7f) | (src[p++]! << 7);
  }
  FIELD = tag >>> 3;
  WIRE = tag & 7;
  if (FIELD === 0) return -1;
  switch (WIRE) {
    case 0:
      for (;;) {
        if (p >= end) return -1;
        if (src[p++]! < 0x80) break;
      }
      break;
    case 1:
      p += 8;
      break;
    case 5:
      p += 4;
      break;
    case 2: {
      let length = 0;
      let shift = 0;
      for (let i = 0; ; i++) {
        if (i === 4 || p >= end) return -1;
        const b = src[p++]!;
        length |= (b & 0x7f) << shift;
        if (b < 0x80) break;
        shift += 7;
      }
      CONTENT = p;
      p += length;
      break;
    }
    default:
      return -1;
  }
  return p > end ? -1 : p;
}

/**
 * Copies the fields of the message src[start, end) except the length-delimited ones numbered
 * `skip` to bytes[n] (bytes null: only counts); returns how many bytes that is, or -1.
 */
function copyExcept(bytes: Uint8Array | null, n: number, src: Uint8Array, start: number, end: number, skip: number): number {
  let count = 0;
  for (let p = start; p < end; ) {
    const next = fieldEnd(src, p, end);
    if (next < 0) return -1;
    if (FIELD !== skip || WIRE !== 2) {
      if (bytes !== null) bytes.set(src.subarray(p, next), n + count);
      count += next - p;
    }
    p = next;
  }
  return count;
}

/**
 * The datum field (Payload.data) with its new Value at n; returns the end, or -1. The datum keeps its
 * other fields as the car sent them (its key, unknown fields); a rewritten string keeps its Value's
 * unknown fields too, and a LocationValue is a new Value (as the reference's normalisation makes them).
 */
function writeDatum(bytes: Uint8Array, n: number, src: Uint8Array, rewrite: ValueRewrite, f: DatumFields): number {
  const text = rewrite.location === null ? TEXT.encode(rewrite.text) : null;
  const datumRest = copyExcept(null, 0, src, rewrite.datumStart, rewrite.datumEnd, f.value);
  const valueRest = text === null ? 0 : copyExcept(null, 0, src, rewrite.valueStart, rewrite.valueEnd, f.stringValue);
  if (datumRest < 0 || valueRest < 0) return -1;
  // Value: location_value { latitude, longitude } (two doubles), or its other fields and string_value.
  const inner = text === null ? varintLength((f.latitude << 3) | 1) + 8 + varintLength((f.longitude << 3) | 1) + 8 : text.length;
  const valueField = text === null ? f.locationValue : f.stringValue;
  const value = valueRest + varintLength((valueField << 3) | 2) + varintLength(inner) + inner;
  const datum = datumRest + varintLength((f.value << 3) | 2) + varintLength(value) + value;
  n = putVarint(bytes, n, (f.data << 3) | 2);
  n = putVarint(bytes, n, datum);
  n += copyExcept(bytes, n, src, rewrite.datumStart, rewrite.datumEnd, f.value);
  n = putVarint(bytes, n, (f.value << 3) | 2);
  n = putVarint(bytes, n, value);
  if (text !== null) n += copyExcept(bytes, n, src, rewrite.valueStart, rewrite.valueEnd, f.stringValue);
  n = putVarint(bytes, n, (valueField << 3) | 2);
  n = putVarint(bytes, n, inner);
  if (text !== null) {
    bytes.set(text, n);
    return n + text.length;
  }
  n = putVarint(bytes, n, (f.latitude << 3) | 1);
  n = putDouble(bytes, n, rewrite.location!.latitude);
  n = putVarint(bytes, n, (f.longitude << 3) | 1);
  return putDouble(bytes, n, rewrite.location!.longitude);
}
