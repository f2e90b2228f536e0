import type { Logger } from 'pino';
import type { TeslaMetrics } from './tesla-metrics.js';
import { classifyTelemetryError } from './explain.js';
import type { TelemetryErrorEntry } from './fleet-api.js';

/** Distinct errors remembered; past it the memory starts over (an error may then be counted twice). */
const SEEN_ERRORS_LIMIT = 10_000;

/**
 * The errors Tesla reports for our cars (fleet_telemetry_errors), polled: each is counted and logged
 * with advice once, however many polls return it.
 */
export class ReportedErrors {
  private readonly seen = new Set<string>();

  constructor(
    private readonly o: {
      /** Where the entries come from (the partner-wide list, or per VIN). */
      fetch: () => Promise<TelemetryErrorEntry[]>;
      counter: TeslaMetrics['teslaReportedErrors'];
      logger: Logger;
    },
  ) {}

  /** Never throws: a failed poll is logged and the next one tries again. */
  async poll(): Promise<void> {
    let entries: TelemetryErrorEntry[];
    try {
      entries = await this.o.fetch();
    } catch (error) {
      this.o.logger.error({ error: (error as Error).message }, 'tesla_errors_poll_failed');
      return;
    }
    for (const entry of entries) this.report(entry);
  }

  private report(entry: TelemetryErrorEntry): void {
    // Tesla returns the same recent errors on every poll: count each once.
    const key = JSON.stringify([entry.vin, entry.name, entry.error_name, entry.error, entry.created_at, entry.txID]);
    if (this.seen.has(key)) return;
    if (this.seen.size >= SEEN_ERRORS_LIMIT) this.seen.clear();
    this.seen.add(key);
    const { kind, advice } = classifyTelemetryError(entry.error_name ? `${entry.error_name}: ${entry.error}` : entry.error);
    this.o.counter.inc();
    this.o.logger.warn({ vin: entry.vin, error: entry.error, errorName: entry.error_name, createdAt: entry.created_at, kind, advice }, 'tesla_reported_error');
  }
}
