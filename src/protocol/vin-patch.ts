// The normalised record as protobuf without decoding it: when the transcoder changed nothing but the
// VIN (no Location string, no scientific-notation string, no millisecond alert time), the normalised
// record is the car's bytes with the top-level VIN field replaced. Decoders read the same message
// (field order does not matter in protobuf; the unknown fields stay where the car put them).
import type { JsonSink } from './json-sink.js';

/**
 * Writes src[start, end) without its top-level length-delimited fields numbered `vinField`, followed by
 * that field holding `vin` (UTF-8), at out.n: the runs between VIN fields are copied whole. False (and
 * out.n as it was) when the top level is not plain (groups, tags or lengths longer than the transcoder
 * accepts, truncation): the caller then re-encodes through protobufjs.
 */
export function replaceVinInto(out: JsonSink, src: Uint8Array, start: number, end: number, vinField: number, vin: Uint8Array): boolean {
  // tag (one or two bytes), length (at most two bytes for any VIN we accept), the VIN
  if (vin.length >= 1 << 14) return false;
  const mark = out.n;
  out.reserve(end - start + vin.length + 8);
  const bytes = out.bytes;
  let n = mark;
  let run = start;
  let p = start;
  while (p < end) {
    const fieldStart = p;
    // tag: one or two bytes, as the transcoder reads it
    let tag = src[p++]!;
    if (tag >= 0x80) {
      if (p >= end || src[p]! >= 0x80) return false;
      tag = (tag & 0x7f) | (src[p++]! << 7);
    }
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) return false;
    switch (wire) {
      case 0:
        for (;;) {
          if (p >= end) return false;
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
          if (i === 4 || p >= end) return false;
          const b = src[p++]!;
          length |= (b & 0x7f) << shift;
          if (b < 0x80) break;
          shift += 7;
        }
        p += length;
        break;
      }
      default:
        return false;
    }
    if (p > end) return false;
    if (field === vinField && wire === 2) {
      bytes.set(src.subarray(run, fieldStart), n);
      n += fieldStart - run;
      run = p;
    }
  }
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
