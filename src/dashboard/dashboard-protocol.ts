import type { BusRecord, VehicleSnapshot } from '../bus/record-bus.js';
import { dashboardRecordMessage } from '../protocol/record-message.js';
import type { DashboardGrant } from './dashboard-grant.js';
import { HistoryRequestProblem, parseHistoryRequest, parseTripRequest, type HistoryRequest, type TripRequest } from '../history/history-protocol.js';

/** What a client may ask for (docs/DASHBOARD-PROTOCOL.md). */
export type ClientRequest =
  /** `since`: epoch ms from the request's RFC 3339 time; records since then are replayed first. */
  | { type: 'subscribe'; vins: string[]; since: number | null }
  | { type: 'unsubscribe'; vins: string[] }
  | { type: 'vehicles' }
  | HistoryRequest
  | TripRequest;

export type ErrorCode =
  | 'malformed_message'
  | 'unknown_type'
  | 'invalid_vin'
  | 'forbidden_vin'
  | 'too_many_subscriptions'
  | 'snapshot_unavailable'
  | 'invalid_since'
  | 'history_unavailable'
  | 'history_failed'
  | 'too_many_replays'
  | 'invalid_range'
  | 'unknown_trip'
  | 'request_timeout';

export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** RFC 3339 date-time: date, `T` (or space), time, optional fraction, and a zone (`Z` or an offset). */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** Epoch ms of an RFC 3339 time, or a RequestError saying what is wrong with it. */
export function parseSince(value: unknown): number {
  const match = typeof value === 'string' ? RFC3339.exec(value) : null;
  if (match === null) throw new RequestError('invalid_since', '"since" is an RFC 3339 time such as "2026-11-28T10:00:00Z"');
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map(Number);
  const offsetHours = match[9] === undefined ? 0 : Number(match[9]);
  const offsetMinutes = match[10] === undefined ? 0 : Number(match[10]);
  // Date.parse rolls 2026-02-30 over to March; a date that does not exist is the client's mistake.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) {
    throw new RequestError('invalid_since', '"since" is not a real date and time');
  }
  return Date.parse((value as string).toUpperCase().replace(' ', 'T'));
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
      const upper = (vins as string[]).map((vin) => vin.toUpperCase());
      if (message.type === 'unsubscribe') return { type: 'unsubscribe', vins: upper };
      const since = message.since === undefined || message.since === null ? null : parseSince(message.since);
      return { type: 'subscribe', vins: upper, since };
    }
    case 'vehicles':
      return { type: 'vehicles' };
    case 'history':
    case 'trip':
      try {
        return message.type === 'history' ? parseHistoryRequest(message, parseSince) : parseTripRequest(message);
      } catch (error) {
        if (error instanceof HistoryRequestProblem) throw new RequestError(error.code, error.message);
        throw error;
      }
    default:
      throw new RequestError('unknown_type', 'known types: subscribe, unsubscribe, vehicles, history, trip');
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

/**
 * Ends a `since` replay: the `records` before it (after the snapshot) were history, everything after is
 * live. `truncated` when the replay stopped at the per-request limit (a gap follows: ask again later).
 */
export function historyMessage(vin: string, since: number, records: number, truncated: boolean): string {
  return JSON.stringify({ type: 'history', vin, since: new Date(since).toISOString(), records, truncated });
}

/** Earliest and latest instants a Date holds (ECMA-262: +-8.64e15 ms). */
const MAX_DATE_MS = 8.64e15;

/**
 * ISO 8601 text of an epoch-ms instant, or null when it is no instant at all: `new Date(x).toISOString()`
 * throws a RangeError for those, and a throw while greeting one dashboard must not reach uWS.
 */
export function isoTime(ms: number): string | null {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? new Date(ms).toISOString() : null;
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
    expiresAt: isoTime(grant.expiresAt),
    subject: grant.subject,
    // false: a Tesla token without `vehicle_location`; location fields are held back from this dashboard.
    location: grant.seesLocation,
    vehicles: vehicles.map(summaryJson),
  });
}

export function watchdogMessage(vin: string, event: 'stale' | 'fresh', lastSeenAt: number): string {
  return JSON.stringify({ type: 'watchdog', vin, event, lastSeenAt: isoTime(lastSeenAt) });
}

function summaryJson(v: VehicleSummary): Record<string, unknown> {
  return {
    vin: v.vin,
    connected: v.connected,
    stale: v.stale,
    lastSeenAt: v.lastSeenAt === null ? null : isoTime(v.lastSeenAt),
  };
}

// The framing itself is protocol-neutral bytes in src/protocol/record-message.ts (the decode stage writes it).
export { dashboardRecordMessage };

/**
 * The record's dashboard message: the one the decode stage wrote, or, for a record decoded while no
 * dashboard watched its VIN (an empty `dashboardMessage`), built now and kept on the record. Consumers
 * that send records to dashboards (the hub) go through this rather than reading `dashboardMessage`.
 */
export function dashboardMessageOf(record: BusRecord): string {
  if (record.dashboardMessage === '') {
    // A key "isResend" cannot appear unescaped inside a JSON string, so this finds only the payload's
    // own is_resend (true is written only when set).
    const isResend = record.recordJson !== null && record.topic === 'V' && record.recordJson.includes('"isResend":true');
    record.dashboardMessage = dashboardRecordMessage(record.vin, record.topic, record.receivedAt, record.recordJson, isResend);
  }
  return record.dashboardMessage;
}
