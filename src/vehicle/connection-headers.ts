// The request headers a car sends with its WebSocket upgrade (tesla-protocol.md section 1), read
// defensively: they come from the network and end up in records, logs and the NATS stream.
import { randomUUID } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Client versions look like `1.0.0` or `2024.44.25 abc123`: printable ASCII, short.
const VERSION = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/;

/** The connection id: the car's X-TXID when it is a UUID, otherwise one we make. */
export function connectionIdFrom(xTxid: string): string {
  return UUID.test(xTxid) ? xTxid.toLowerCase() : randomUUID();
}

/**
 * Header values kept for a connection's life are shared between connections instead of each holding
 * its own copy of the same few words (a fleet runs a handful of versions). Bounded in number and length
 * (these come from the network): other values are kept per connection as before.
 */
const SHARED_VALUES_MAX = 256;
const SHARED_VALUE_LENGTH_MAX = 64;
const sharedValues = new Map<string, string>();

function shared(value: string): string {
  const known = sharedValues.get(value);
  if (known !== undefined) return known;
  if (sharedValues.size < SHARED_VALUES_MAX && value.length <= SHARED_VALUE_LENGTH_MAX) sharedValues.set(value, value);
  return value;
}

/** The car's `Version` header when it is short printable text, otherwise ''. */
export function clientVersionFrom(version: string): string {
  return VERSION.test(version) ? shared(version) : '';
}

/** The car's `X-Network-Interface` header (`wifi`, `cellular`; '' when absent). */
export function networkInterfaceFrom(header: string): string {
  return header === '' ? '' : shared(header);
}
