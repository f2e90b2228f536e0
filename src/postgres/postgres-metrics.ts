import client from 'prom-client';
import { PREFIX } from '../metrics/series.js';

/** The PostgreSQL sink (DATABASE_URL): what it wrote, holds, failed to write and dropped. */
export class PostgresMetrics {
  readonly rowsWritten: client.Counter<'table'>;
  readonly rowsDropped: client.Counter;
  readonly queueRows: client.Gauge;
  readonly writeErrors: client.Counter;
  readonly batchDuration: client.Histogram;
  readonly up: client.Gauge;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.rowsWritten = new client.Counter({ name: `${PREFIX}postgres_rows_written_total`, help: 'Rows written to PostgreSQL, by table (telemetry_values, trips, charges).', labelNames: ['table'], registers: r });
    this.rowsDropped = new client.Counter({ name: `${PREFIX}postgres_rows_dropped_total`, help: 'Values dropped unwritten because the queue was full (the database was down or too slow for too long).', registers: r });
    this.queueRows = new client.Gauge({ name: `${PREFIX}postgres_queue_rows`, help: 'Values waiting to be written to PostgreSQL.', registers: r });
    this.writeErrors = new client.Counter({ name: `${PREFIX}postgres_write_errors_total`, help: 'Batches PostgreSQL refused or could not take (kept and retried).', registers: r });
    this.batchDuration = new client.Histogram({ name: `${PREFIX}postgres_batch_duration_seconds`, help: 'Time to write one batch of values.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: r });
    this.up = new client.Gauge({ name: `${PREFIX}postgres_up`, help: '1 when the last write to PostgreSQL succeeded, 0 after a failure (0 too when no database is configured).', registers: r });
    for (const table of ['telemetry_values', 'trips', 'charges']) this.rowsWritten.inc({ table }, 0);
  }
}
