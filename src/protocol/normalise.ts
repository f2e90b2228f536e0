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
