import type { Logger } from 'pino';
import type { VehicleRegistry } from '../actors/vehicle-registry.js';
import type { RecordBus } from '../bus/record-bus.js';
import type { HistoryStageConfig } from '../config/types.js';
import type { HistoryMetrics } from './history-metrics.js';
import { RecentHistory } from './recent-history.js';
import type { PostgresMetrics } from '../postgres/postgres-metrics.js';
import type { PostgresSink } from '../postgres/postgres-sink.js';

export interface HistoryStage {
  readonly recent: RecentHistory | null;
  readonly sink: PostgresSink | null;
  stop(): Promise<void>;
}

/** The history stage: recent history + trips/charges (HISTORY_ENABLED), and the PostgreSQL sink (DATABASE_URL). */
export async function startHistory(
  config: HistoryStageConfig,
  deps: { bus: RecordBus; registry: VehicleRegistry; metrics: { history: HistoryMetrics; postgres: PostgresMetrics }; logger: Logger; streamBacked: boolean },
): Promise<HistoryStage> {
  const h = config.history;
  const recent = h.enabled
    ? new RecentHistory({
        windowMs: h.windowHours * 3_600_000,
        resolutionMs: h.resolutionSeconds * 1000,
        maxRowsPerCar: h.maxPointsPerCar,
        metrics: deps.metrics.history,
        logger: deps.logger,
        // With NATS, this instance counts the trips of the cars connected here; other instances count theirs.
        isLocal: deps.streamBacked ? (vin) => deps.registry.get(vin) !== undefined : undefined,
      })
    : null;
  recent?.start(deps.bus);
  // Loaded only when configured, like NATS: a server without a database never needs the client.
  const sink =
    config.postgres.url === ''
      ? null
      : new (await import('../postgres/postgres-sink.js')).PostgresSink({ ...config.postgres, metrics: deps.metrics.postgres, logger: deps.logger });
  if (sink !== null) {
    sink.start(deps.bus);
    recent?.onActivity({ tripEnded: (vin, trip) => sink.tripEnded(vin, trip), chargeEnded: (vin, session) => sink.chargeEnded(vin, session) });
  }
  return {
    recent,
    sink,
    async stop() {
      // Trips and charges that end while stopping still reach the sink.
      recent?.stop();
      await sink?.stop();
    },
  };
}
