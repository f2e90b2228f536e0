import type { ChargingSession, Trip } from './car-activity.js';
import type { HistoryAnswer } from './recent-history.js';
import { CHARGING_NAMES, GEAR_NAMES } from './signal-sample.js';

/** Rows one `history` answer carries at most (about 0.5 MB of JSON at 13 columns). */
export const MAX_HISTORY_POINTS = 5000;
export const DEFAULT_HISTORY_POINTS = 1000;

export interface HistoryRequest {
  type: 'history';
  vin: string;
  /** Epoch ms; null = the start of the kept window. */
  from: number | null;
  /** Epoch ms; null = now. */
  to: number | null;
  maxPoints: number;
}

export interface TripRequest {
  type: 'trip';
  vin: string;
  id: string;
}

/** Problems in a history/trip request, as [error code, message]; the dashboard protocol turns them into errors. */
export class HistoryRequestProblem extends Error {
  constructor(
    readonly code: 'malformed_message' | 'invalid_range',
    message: string,
  ) {
    super(message);
  }
}

export function parseHistoryRequest(message: Record<string, unknown>, parseTime: (value: unknown) => number): HistoryRequest {
  if (typeof message.vin !== 'string') throw new HistoryRequestProblem('malformed_message', '"history" needs "vin"');
  const time = (value: unknown, name: string): number | null => {
    if (value === undefined || value === null) return null;
    try {
      return parseTime(value);
    } catch {
      throw new HistoryRequestProblem('invalid_range', `"${name}" is an RFC 3339 time such as "2026-11-28T10:00:00Z"`);
    }
  };
  const from = time(message.from, 'from');
  const to = time(message.to, 'to');
  if (from !== null && to !== null && from > to) throw new HistoryRequestProblem('invalid_range', '"from" is after "to"');
  let maxPoints = DEFAULT_HISTORY_POINTS;
  if (message.maxPoints !== undefined) {
    if (typeof message.maxPoints !== 'number' || !Number.isInteger(message.maxPoints) || message.maxPoints < 2 || message.maxPoints > MAX_HISTORY_POINTS) {
      throw new HistoryRequestProblem('invalid_range', `"maxPoints" is an integer from 2 to ${MAX_HISTORY_POINTS}`);
    }
    maxPoints = message.maxPoints;
  }
  return { type: 'history', vin: message.vin.toUpperCase(), from, to, maxPoints };
}

export function parseTripRequest(message: Record<string, unknown>): TripRequest {
  if (typeof message.vin !== 'string' || typeof message.id !== 'string' || message.id.length > 64) {
    throw new HistoryRequestProblem('malformed_message', '"trip" needs "vin" and the trip\'s "id"');
  }
  return { type: 'trip', vin: message.vin.toUpperCase(), id: message.id };
}

/**
 * The answer to `history`: columnar series (one array per signal, `t` in epoch seconds, null where
 * unknown) plus the trips and charging sessions in the range, without their tracks.
 */
export function recentHistoryMessage(answer: HistoryAnswer): string {
  return JSON.stringify({
    type: 'recent_history',
    vin: answer.vin,
    from: new Date(answer.from).toISOString(),
    to: new Date(answer.to).toISOString(),
    gears: GEAR_NAMES,
    chargingStates: CHARGING_NAMES,
    t: answer.series.t,
    series: answer.series.columns,
    trips: answer.trips.map(tripSummary),
    charges: answer.charges.map(chargeJson),
    driving: answer.driving,
    charging: answer.charging,
  });
}

export function tripMessage(vin: string, trip: Trip): string {
  return JSON.stringify({ type: 'trip', vin, trip: { ...tripSummary(trip), track: trip.track } });
}

function tripSummary(trip: Trip): Record<string, unknown> {
  const { track: _track, startAt, endAt, ...figures } = trip;
  return { ...figures, startAt: new Date(startAt).toISOString(), endAt: new Date(endAt).toISOString() };
}

function chargeJson(session: ChargingSession): Record<string, unknown> {
  return { ...session, startAt: new Date(session.startAt).toISOString(), endAt: new Date(session.endAt).toISOString() };
}
