import type { Logger } from 'pino';
import type { HistoryRequest, TripRequest } from './history-protocol.js';
import { recentHistoryMessage, tripMessage } from './history-protocol.js';
import type { RecentHistory } from './recent-history.js';

export interface Refusal {
  code: 'history_failed' | 'unknown_trip';
  message: string;
}

/** A `history` request answered from the recent history: the message to send, or why not. */
export async function answerHistory(history: RecentHistory, request: HistoryRequest, logger: Logger): Promise<string | Refusal> {
  const to = request.to ?? Date.now();
  const from = request.from ?? to - history.windowMs;
  try {
    return recentHistoryMessage(await history.query(request.vin, from, to, request.maxPoints));
  } catch (error) {
    logger.warn({ vin: request.vin, err: error }, 'dashboard_recent_history_failed');
    return { code: 'history_failed', message: 'the history could not be read; try again' };
  }
}

export async function answerTrip(history: RecentHistory, request: TripRequest, logger: Logger): Promise<string | Refusal> {
  try {
    const trip = await history.trip(request.vin, request.id);
    if (trip === null) return { code: 'unknown_trip', message: 'no such trip in the recent history' };
    return tripMessage(request.vin, trip);
  } catch (error) {
    logger.warn({ vin: request.vin, err: error }, 'dashboard_trip_failed');
    return { code: 'history_failed', message: 'the history could not be read; try again' };
  }
}
