// Last-known state rules shared by the per-VIN actors and the NATS snapshot fold.

/** Whether a datum's Value JSON text says something (not `{}`, a member we cannot decode, nor `null`). */
export function isStateValue(text: string, start = 0, end = text.length): boolean {
  const length = end - start;
  if (length === 2) return text.charCodeAt(start) !== 0x7b;
  if (length === 4) return !text.startsWith('null', start);
  return length > 0;
}

/** Epoch milliseconds of an RFC 3339 sample time (sub-millisecond digits do not order samples here). */
export function sampleTime(at: string): number {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? 0 : ms;
}
