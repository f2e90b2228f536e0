import type { Logger } from 'pino';
import type { VehicleRegistry } from '../actors/vehicle-registry.js';
import type { RecordBus } from '../bus/record-bus.js';
import type { AppConfig } from '../config/types.js';
import type { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { RecentHistory } from './recent-history.js';

export interface HistoryStage {
  readonly recent: RecentHistory | null;
  stop(): Promise<void>;
}

/** The history stage: recent history + trips/charges (HISTORY_ENABLED), and the PostgreSQL sink (DATABASE_URL). */
export async function startHistory(
  config: AppConfig,
  deps: { bus: RecordBus; registry: VehicleRegistry; metrics: TelemetryMetrics; logger: Logger; streamBacked: boolean },
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
  return {
    recent,
    async stop() {
      recent?.stop();
    },
  };
}
