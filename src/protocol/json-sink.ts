// The byte buffer the transcoder writes JSON into: grown when needed, reused across frames and
// batches, so writing a record allocates nothing but the odd number's text.
import { isUtf8 } from 'node:buffer';

const utf8 = new TextEncoder();
const HEX = '0123456789abcdef';
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

export class JsonSink {
  bytes: Uint8Array;
  /** Write position. */
  n = 0;
  /** A byte >= 0x80 was written since the caller last cleared this (the text is not plain ASCII). */
  nonAscii = false;

  /** A DataView of `bytes`, for copying prebuilt text four bytes at a time (see words). */
  private view: DataView;

  constructor(capacity = 256 * 1024) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  reserve(count: number): void {
    if (this.n + count <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.n + count) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.bytes.subarray(0, this.n));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }

  /** Prebuilt ASCII text made by toWords. */
  words(w: Int32Array): void {
    const length = w[0]!;
    const count = (length + 3) >> 2;
    if (this.n + 4 * count > this.bytes.length) this.reserve(4 * count);
    const view = this.view;
    const n = this.n;
    for (let i = 0; i < count; i++) view.setInt32(n + 4 * i, w[i + 1]!, true);
    this.n = n + length;
  }

  byte(c: number): void {
    if (this.n >= this.bytes.length) this.reserve(1);
    this.bytes[this.n++] = c;
  }

  /** Bytes as they are (prebuilt literals). */
  raw(src: Uint8Array): void {
    const length = src.length;
    if (this.n + length > this.bytes.length) this.reserve(length);
    const b = this.bytes;
    let n = this.n;
    for (let i = 0; i < length; i++) b[n++] = src[i]!;
    this.n = n;
  }

  /** Text known to be ASCII (literals, numbers, names). */
  ascii(s: string): void {
    const length = s.length;
    if (this.n + length > this.bytes.length) this.reserve(length);
    const b = this.bytes;
    let n = this.n;
    for (let i = 0; i < length; i++) b[n++] = s.charCodeAt(i);
    this.n = n;
  }

  /**
   * A double as JSON, the same text as the canonical writer's (String(v), non-finite as strings).
   * Telemetry doubles mostly have a few decimals: those are written from integer digits, which is a
   * fraction of the cost of String(v); anything else goes through String(v).
   */
  double(v: number): void {
    if (v === 0) {
      this.ascii(Object.is(v, -0) ? '-0' : '0');
      return;
    }
    const abs = v < 0 ? -v : v;
    if (abs >= 1e-6 && abs < 1e15) {
      for (let d = 0; d <= 9; d++) {
        const scale = POW10[d]!;
        const m = Math.round(abs * scale);
        // At most 14 significant digits: then only one decimal of d places reads back as v, so the
        // first d that reads back gives the shortest text, which is what String(v) writes.
        if (m > 99_999_999_999_999) break;
        if (m / scale === abs) {
          this.digits(v < 0, m, d);
          return;
        }
      }
    }
    if (v !== v) this.ascii('"NaN"');
    else if (v === Infinity) this.ascii('"Infinity"');
    else if (v === -Infinity) this.ascii('"-Infinity"');
    else this.ascii(String(v));
  }

  /** `m` (an integer below 1e15) with a decimal point `d` places from the right. */
  private digits(negative: boolean, m: number, d: number): void {
    this.reserve(24);
    const b = this.bytes;
    let n = this.n;
    if (negative) b[n++] = 0x2d;
    const scale = POW10[d]!; // d <= 9: the only caller is double()
    const whole = Math.floor(m / scale);
    let fraction = m - whole * scale;
    // Whole part, most significant digit first.
    if (whole === 0) b[n++] = 0x30;
    else {
      let length = 0;
      for (let w = whole; w >= 1; w = Math.floor(w / 10)) length++;
      let w = whole;
      for (let i = n + length - 1; i >= n; i--) {
        const q = Math.floor(w / 10);
        b[i] = 0x30 + (w - q * 10);
        w = q;
      }
      n += length;
    }
    if (d > 0) {
      b[n++] = 0x2e;
      for (let i = n + d - 1; i >= n; i--) {
        const q = Math.floor(fraction / 10);
        b[i] = 0x30 + (fraction - q * 10);
        fraction = q;
      }
      n += d;
    }
    this.n = n;
  }

  /** Any text, as UTF-8. */
  text(s: string): void {
    this.reserve(s.length * 3);
    const { written } = utf8.encodeInto(s, this.bytes.subarray(this.n));
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        this.nonAscii = true;
        break;
      }
    }
    this.n += written;
  }

  /**
   * A JSON string from UTF-8 bytes already checked to be valid, escaped exactly as JSON.stringify
   * escapes the decoded text: `"`, `\` and control characters; everything else as it came.
   */
  jsonString(src: Uint8Array, start: number, end: number): void {
    // Worst case: every byte a control character (\u00XX, 6 bytes), plus the quotes.
    if (this.n + (end - start) * 6 + 2 > this.bytes.length) this.reserve((end - start) * 6 + 2);
    const b = this.bytes;
    let n = this.n;
    b[n++] = 0x22;
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
        if (c >= 0x80) this.nonAscii = true;
        b[n++] = c;
        continue;
      }
      b[n++] = 0x5c;
      switch (c) {
        case 0x22: b[n++] = 0x22; break;
        case 0x5c: b[n++] = 0x5c; break;
        case 0x08: b[n++] = 0x62; break; // b
        case 0x0c: b[n++] = 0x66; break; // f
        case 0x0a: b[n++] = 0x6e; break; // n
        case 0x0d: b[n++] = 0x72; break; // r
        case 0x09: b[n++] = 0x74; break; // t
        default:
          b[n++] = 0x75; // u00XX
          b[n++] = 0x30;
          b[n++] = 0x30;
          b[n++] = HEX.charCodeAt(c >> 4);
          b[n++] = HEX.charCodeAt(c & 15);
      }
    }
    b[n++] = 0x22;
    this.n = n;
  }
}

/**
 * ASCII text as JsonSink.words and the transcoder copy it: [byte length, then the bytes as
 * little-endian 32-bit words, the last one padded]. Four bytes per store instead of one; the padding
 * lands past the write position, where the next write goes anyway (never read: readers stop at `n`).
 */
export function toWords(text: string): Int32Array {
  const words = new Int32Array(1 + Math.ceil(text.length / 4));
  words[0] = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) throw new Error('toWords: the text must be ASCII');
    words[1 + (i >> 2)]! |= c << (8 * (i & 3));
  }
  return words;
}

/** Any bytes in toWords' layout (byte k in byte k & 3 of word 1 + (k >> 2)): UTF-8 text, say. */
export function bytesToWords(bytes: Uint8Array): Int32Array {
  const words = new Int32Array(1 + Math.ceil(bytes.length / 4));
  words[0] = bytes.length;
  for (let i = 0; i < bytes.length; i++) words[1 + (i >> 2)]! |= bytes[i]! << (8 * (i & 3));
  return words;
}

/**
 * Whether [start, end) is what protobufjs's strict string reader accepts: plain ASCII, or valid UTF-8
 * (TextDecoder with fatal: true rejects the same overlongs, surrogates and truncations).
 */
export function validUtf8(src: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (src[i]! >= 0x80) return isUtf8(src.subarray(i, end));
  }
  return true;
}
