import type { VehicleSnapshot } from '../bus/record-bus.js';
import type { DashboardGrant } from './dashboard-grant.js';

/** What a client may ask for (docs/DASHBOARD-PROTOCOL.md). */
export type ClientRequest =
  | { type: 'subscribe'; vins: string[] }
  | { type: 'unsubscribe'; vins: string[] }
  | { type: 'vehicles' };

export type ErrorCode =
  | 'malformed_message'
  | 'unknown_type'
  | 'invalid_vin'
  | 'forbidden_vin'
  | 'too_many_subscriptions'
  | 'snapshot_unavailable';

export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Most VINs named in one request; a person's dashboard never needs more. */
export const MAX_VINS_PER_REQUEST = 500;

export function parseRequest(text: string): ClientRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RequestError('malformed_message', 'messages are JSON objects');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RequestError('malformed_message', 'messages are JSON objects');
  }
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'subscribe':
    case 'unsubscribe': {
      const vins = message.vins;
      if (!Array.isArray(vins) || !vins.every((vin) => typeof vin === 'string')) {
        throw new RequestError('malformed_message', `"${message.type}" needs "vins": a list of VINs`);
      }
      if (vins.length > MAX_VINS_PER_REQUEST) {
        throw new RequestError('malformed_message', `at most ${MAX_VINS_PER_REQUEST} VINs per request`);
      }
      return { type: message.type, vins: (vins as string[]).map((vin) => vin.toUpperCase()) };
    }
    case 'vehicles':
      return { type: 'vehicles' };
    default:
      throw new RequestError('unknown_type', 'known types: subscribe, unsubscribe, vehicles');
  }
}

export function errorMessage(code: ErrorCode, message: string, vin?: string): string {
  return JSON.stringify({ type: 'error', code, message, ...(vin !== undefined ? { vin } : {}) });
}

/**
 * The snapshot message. State values are already canonical JSON text, so they are spliced in rather
 * than parsed and re-serialised.
 */
export function snapshotMessage(snapshot: VehicleSnapshot): string {
  let state = '';
  for (const [field, known] of snapshot.state) {
    if (state !== '') state += ',';
    state += JSON.stringify(field) + ':{"value":' + known.value + ',"at":' + JSON.stringify(known.at) + '}';
  }
  return (
    '{"type":"snapshot","vin":' + JSON.stringify(snapshot.vin) +
    ',"connected":' + String(snapshot.connected) +
    ',"stale":' + String(snapshot.stale) +
    ',"lastSeenAt":' + (snapshot.lastSeenAt === null ? 'null' : JSON.stringify(new Date(snapshot.lastSeenAt).toISOString())) +
    ',"state":{' + state + '}}'
  );
}

export interface VehicleSummary {
  vin: string;
  connected: boolean;
  stale: boolean;
  /** Epoch ms, or null when never heard from. */
  lastSeenAt: number | null;
}

export function vehiclesMessage(vehicles: VehicleSummary[]): string {
  return JSON.stringify({ type: 'vehicles', vehicles: vehicles.map(summaryJson) });
}

export function helloMessage(grant: DashboardGrant, vehicles: VehicleSummary[]): string {
  return JSON.stringify({
    type: 'hello',
    vins: grant.describeVins(),
    expiresAt: new Date(grant.expiresAt).toISOString(),
    subject: grant.subject,
    vehicles: vehicles.map(summaryJson),
  });
}

export function watchdogMessage(vin: string, event: 'stale' | 'fresh', lastSeenAt: number): string {
  return JSON.stringify({ type: 'watchdog', vin, event, lastSeenAt: new Date(lastSeenAt).toISOString() });
}

function summaryJson(v: VehicleSummary): Record<string, unknown> {
  return {
    vin: v.vin,
    connected: v.connected,
    stale: v.stale,
    lastSeenAt: v.lastSeenAt === null ? null : new Date(v.lastSeenAt).toISOString(),
  };
}
