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

/** The car's `Version` header when it is short printable text, otherwise ''. */
export function clientVersionFrom(version: string): string {
  return VERSION.test(version) ? version : '';
}
