// The normalised record as protobuf without decoding it: when the transcoder changed nothing but the
// VIN (no Location string, no scientific-notation string, no millisecond alert time), the normalised
// record is the car's bytes with the top-level VIN field replaced. Decoders read the same message
// (field order does not matter in protobuf; the unknown fields stay where the car put them).

/**
 * `payload` without its top-level length-delimited fields numbered `vinField`, followed by that field
 * holding `vin` (UTF-8). Null when the top level is not plain (groups, tags or lengths longer than the
 * transcoder accepts, truncation): the caller then re-encodes through protobufjs.
 */
export function replaceVin(payload: Uint8Array, vinField: number, vin: Uint8Array): Uint8Array | null {
  const end = payload.length;
  const out = new Uint8Array(end + vin.length + 8);
  let n = 0;
  let p = 0;
  while (p < end) {
    const start = p;
    // tag: one or two bytes, as the transcoder reads it
    let tag = payload[p++]!;
    if (tag >= 0x80) {
      if (p >= end || payload[p]! >= 0x80) return null;
      tag = (tag & 0x7f) | (payload[p++]! << 7);
    }
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) return null;
    switch (wire) {
      case 0:
        for (;;) {
          if (p >= end) return null;
          if (payload[p++]! < 0x80) break;
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
          if (i === 4 || p >= end) return null;
          const b = payload[p++]!;
          length |= (b & 0x7f) << shift;
          if (b < 0x80) break;
          shift += 7;
        }
        p += length;
        break;
      }
      default:
        return null;
    }
    if (p > end) return null;
    if (field === vinField && wire === 2) continue;
    out.set(payload.subarray(start, p), n);
    n += p - start;
  }
  // tag (one or two bytes), length (at most two bytes for any VIN we accept), the VIN
  if (vin.length >= 1 << 14) return null;
  const tag = (vinField << 3) | 2;
  if (tag < 0x80) out[n++] = tag;
  else {
    out[n++] = (tag & 0x7f) | 0x80;
    out[n++] = tag >>> 7;
  }
  if (vin.length < 0x80) out[n++] = vin.length;
  else {
    out[n++] = (vin.length & 0x7f) | 0x80;
    out[n++] = vin.length >>> 7;
  }
  out.set(vin, n);
  n += vin.length;
  return out.subarray(0, n);
}
