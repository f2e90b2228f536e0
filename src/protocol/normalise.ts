// The normalisations the reference server applies to decoded payloads before output
// (tesla-protocol.md section 4). They work in place on protobufjs-decoded messages (property names
// as protobufjs gives them: lowerCamelCase), so nothing is copied on the hot path.
import { int64ToNumber } from './canonical-json.js';
import type { DecodedTimestamp, DecodedValue, DecodedVehicleAlerts, DecodedVehicleData, DecodedVehicleErrors } from './decoded-message.js';

/** Field number of `Location` in telemetry.vehicle_data.Field. */
export const LOCATION_FIELD = 21;

/**
 * Alerts whose started_at/ended_at seconds are at or above this (the year ~11970) were sent in
 * milliseconds by the car.
 */
export const ALERT_MS_THRESHOLD_SECONDS = 315_576_000_000;

// `(37.412374 N, 122.145867 W)`: unsigned degrees, a hemisphere letter, a comma between the two.
const LOCATION_RE = /^\(\s*(\d+(?:\.\d+)?)\s*([NS])\s*,\s*(\d+(?:\.\d+)?)\s*([EW])\s*\)$/;
// Scientific notation with a decimal point in the mantissa, as the car prints tiny floats.
const SCIENTIFIC_RE = /^[+-]?\d+\.\d+[eE][+-]?\d+$/;

export interface LatLon {
  latitude: number;
  longitude: number;
}

/**
 * Reads a Location string (`(<lat> <N|S>, <lon> <E|W>)`, S and W negative). Returns null when the
 * text does not have that shape or the degrees are out of range, so the caller leaves it as it came.
 */
export function parseLocationString(s: string): LatLon | null {
  const m = LOCATION_RE.exec(s);
  if (m === null) return null;
  const lat = Number(m[1]);
  const lon = Number(m[3]);
  if (!(lat <= 90) || !(lon <= 180)) return null;
  return { latitude: m[2] === 'S' ? -lat : lat, longitude: m[4] === 'W' ? -lon : lon };
}

/** What parseLocationBytes found: the shape and range of parseLocationString, or not, or ask it. */
export const LOCATION_BYTES = { NOT_LOCATION: 0, LOCATION: 1, UNDECIDED: -1 } as const;

/** 10^0 .. 10^22: exact doubles (the fast path's divisors). */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * parseLocationString of the UTF-8 text bytes[start, end) without making the string, the regex's
 * match or the numbers' strings (a car sends a Location string about every tenth record). LOCATION:
 * `out[0]` and `out[1]` are the latitude and longitude parseLocationString gives; NOT_LOCATION: it
 * gives null; UNDECIDED (a non-ASCII byte, which \s may match; a number with more than 2^53 as its
 * digits or more than 22 decimals): ask parseLocationString. A number is its digits as an integer
 * divided by a power of ten, both exact: one correctly rounded division, the double Number() reads.
 */
export function parseLocationBytes(bytes: Uint8Array, start: number, end: number, out: Float64Array): number {
  for (let i = start; i < end; i++) if (bytes[i]! >= 0x80) return LOCATION_BYTES.UNDECIDED;
  let p = start;
  if (p >= end || bytes[p] !== 0x28) return LOCATION_BYTES.NOT_LOCATION; // (
  p = skipSpaces(bytes, p + 1, end);
  p = readDegrees(bytes, p, end, out, 0);
  if (p < 0) return p === -1 ? LOCATION_BYTES.NOT_LOCATION : LOCATION_BYTES.UNDECIDED;
  p = skipSpaces(bytes, p, end);
  const ns = p < end ? bytes[p]! : 0;
  if (ns !== 0x4e && ns !== 0x53) return LOCATION_BYTES.NOT_LOCATION; // N S
  p = skipSpaces(bytes, p + 1, end);
  if (p >= end || bytes[p] !== 0x2c) return LOCATION_BYTES.NOT_LOCATION; // ,
  p = skipSpaces(bytes, p + 1, end);
  p = readDegrees(bytes, p, end, out, 1);
  if (p < 0) return p === -1 ? LOCATION_BYTES.NOT_LOCATION : LOCATION_BYTES.UNDECIDED;
  p = skipSpaces(bytes, p, end);
  const ew = p < end ? bytes[p]! : 0;
  if (ew !== 0x45 && ew !== 0x57) return LOCATION_BYTES.NOT_LOCATION; // E W
  p = skipSpaces(bytes, p + 1, end);
  if (p !== end - 1 || bytes[p] !== 0x29) return LOCATION_BYTES.NOT_LOCATION; // ) and nothing after
  const lat = out[0]!;
  const lon = out[1]!;
  if (!(lat <= 90) || !(lon <= 180)) return LOCATION_BYTES.NOT_LOCATION;
  out[0] = ns === 0x53 ? -lat : lat;
  out[1] = ew === 0x57 ? -lon : lon;
  return LOCATION_BYTES.LOCATION;
}

/** Past the ASCII characters \s matches (tab, LF, VT, FF, CR, space). */
function skipSpaces(bytes: Uint8Array, p: number, end: number): number {
  while (p < end) {
    const c = bytes[p]!;
    if (c !== 0x20 && (c < 0x09 || c > 0x0d)) break;
    p++;
  }
  return p;
}

/**
 * `\d+(?:\.\d+)?` at p, its Number() into out[at]: the position after it; -1 when there is no such
 * number there; -2 when it is beyond the exact fast path.
 */
function readDegrees(bytes: Uint8Array, p: number, end: number, out: Float64Array, at: number): number {
  let m = 0;
  let digits = 0;
  while (p < end && bytes[p]! - 0x30 >= 0 && bytes[p]! - 0x30 <= 9) {
    m = m * 10 + (bytes[p]! - 0x30);
    digits++;
    p++;
  }
  if (digits === 0) return -1;
  let decimals = 0;
  // A dot belongs to the number only with a digit after it (else the regex's match fails at the dot).
  if (p + 1 < end && bytes[p] === 0x2e && bytes[p + 1]! - 0x30 >= 0 && bytes[p + 1]! - 0x30 <= 9) {
    p++;
    while (p < end && bytes[p]! - 0x30 >= 0 && bytes[p]! - 0x30 <= 9) {
      m = m * 10 + (bytes[p]! - 0x30);
      decimals++;
      p++;
    }
  }
  // Below 2^53 every partial m above was exact too.
  if (m > 9007199254740991 || decimals > 22) return -2;
  out[at] = decimals === 0 ? m : m / EXACT_POWERS_OF_TEN[decimals]!;
  return p;
}

/**
 * Rewrites a number in scientific notation with a decimal point (`1.1920928955078125e-05`) as a
 * fixed 5-decimal string (`0.00001`). Other strings, and values that do not fit a double, are
 * returned unchanged. Rounding is half-to-even on the exact binary value, as C's and Go's `%.5f` do;
 * JavaScript's toFixed would round exact ties away from zero instead.
 */
export function rewriteScientific(s: string): string {
  if (!SCIENTIFIC_RE.test(s)) return s;
  const x = Number(s);
  if (!Number.isFinite(x)) return s;
  const abs = Math.abs(x);
  if (abs >= 1e21) {
    // toFixed switches to exponent notation from 1e21 on; such doubles are integers, exact in BigInt.
    return `${x < 0 ? '-' : ''}${BigInt(abs).toString()}.00000`;
  }
  let fixed = x.toFixed(5);
  // An exact tie is a value (2k+1)/200000; scaling such a value by 2e5 gives that odd integer exactly,
  // so the cheap test never misses one, and the exact check below weeds out near-misses. For values
  // this size the exact binary expansion shows any remainder within 25 digits.
  const twice = abs * 2e5;
  if (Number.isInteger(twice) && twice % 2 === 1) {
    const exact = abs.toFixed(25);
    const dot = exact.indexOf('.');
    if (/^0*$/.test(exact.slice(dot + 7))) {
      const down = exact.slice(0, dot + 6);
      if ((down.charCodeAt(down.length - 1) - 48) % 2 === 0) fixed = `${x < 0 ? '-' : ''}${down}`;
    }
  }
  return fixed;
}

/**
 * V payloads: VIN from the certificate, the first string Location as a LocationValue, and
 * scientific-notation strings as fixed decimals. `makeLocation` builds the replacement Value so the
 * message stays a protobufjs instance (its oneof bookkeeping then stays right).
 */
export function normaliseVehicleData(payload: DecodedVehicleData, vin: string, makeLocation: (loc: LatLon) => DecodedValue): void {
  payload.vin = vin;
  const data = payload.data;
  let locationDone = false;
  for (let i = 0; i < data.length; i++) {
    const datum = data[i]!;
    const value = datum.value;
    if (value == null) continue;
    const str = value.stringValue;
    if (typeof str !== 'string' || !Object.prototype.hasOwnProperty.call(value, 'stringValue')) continue;
    if (!locationDone && datum.key === LOCATION_FIELD) {
      locationDone = true;
      const loc = parseLocationString(str);
      if (loc !== null) {
        datum.value = makeLocation(loc);
        continue;
      }
    }
    const rewritten = rewriteScientific(str);
    if (rewritten !== str) value.stringValue = rewritten;
  }
}

/** Converts a Timestamp whose seconds really hold milliseconds, in place. */
function fixMillisecondTimestamp(ts: DecodedTimestamp | null | undefined): void {
  if (ts == null) return;
  const secs = int64ToNumber(ts.seconds);
  if (secs < ALERT_MS_THRESHOLD_SECONDS) return;
  const seconds = Math.floor(secs / 1000);
  ts.seconds = seconds;
  // Any nanos the car put next to a millisecond count cannot be placed; the millisecond part wins.
  ts.nanos = (secs - seconds * 1000) * 1_000_000;
}

export function normaliseVehicleAlerts(payload: DecodedVehicleAlerts, vin: string): void {
  payload.vin = vin;
  const alerts = payload.alerts;
  for (let i = 0; i < alerts.length; i++) {
    fixMillisecondTimestamp(alerts[i]!.startedAt);
    fixMillisecondTimestamp(alerts[i]!.endedAt);
  }
}

export function normaliseVehicleErrors(payload: DecodedVehicleErrors, vin: string): void {
  payload.vin = vin;
}
