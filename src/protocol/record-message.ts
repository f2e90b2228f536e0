import type { JsonSink } from './json-sink.js';

/**
 * The dashboard `record` message's framing, protocol-neutral bytes around a record's canonical JSON:
 * `{"type":"record","vin":V,"topic":T,"receivedAt":"R"[,"resend":true],"record":` + record JSON + `}`.
 * It lives here, under the decode stage's own imports, because the decode stage writes it in place
 * around the record JSON (one contiguous run of bytes, no copy); the dashboard stage sends it. So
 * decode imports nothing from src/dashboard (ARCHITECTURE.md "Which module may import which").
 */

/**
 * Everything before the record JSON; RECORD_MESSAGE_TAIL closes it. `vinJsonWords` is the VIN as JSON
 * text in UTF-8, in toWords' layout (bytesToWords), `receivedAtText` the ISO 8601 time (ASCII).
 */
export function writeRecordMessageHead(sink: JsonSink, vinJsonWords: Int32Array, topic: string, receivedAtText: string, isResend: boolean): void {
  sink.ascii('{"type":"record","vin":');
  sink.words(vinJsonWords);
  sink.ascii(',"topic":');
  if (topic === 'V') sink.ascii('"V"');
  else sink.text(JSON.stringify(topic));
  sink.ascii(',"receivedAt":"');
  sink.ascii(receivedAtText);
  sink.ascii(isResend ? '","resend":true,"record":' : '","record":');
}

/** The byte that closes a `record` message after its record JSON (`}`). */
export const RECORD_MESSAGE_TAIL = 0x7d;

/**
 * The same message as text, for records made outside the decode stage (connectivity, records read back
 * from NATS). VIN and topic are JSON-escaped; the record is already canonical JSON.
 */
export function dashboardRecordMessage(
  vin: string,
  topic: string,
  receivedAt: number,
  recordJson: string | null,
  isResend = false,
): string {
  return (
    '{"type":"record","vin":' + JSON.stringify(vin) +
    ',"topic":' + JSON.stringify(topic) +
    ',"receivedAt":"' + new Date(receivedAt).toISOString() +
    '"' + (isResend ? ',"resend":true' : '') +
    ',"record":' + (recordJson ?? 'null') + '}'
  );
}
