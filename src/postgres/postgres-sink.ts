import pg from 'pg';
import type { Logger } from 'pino';
import type { BusRecord, RecordBus } from '../bus/record-bus.js';
import type { ChargingSession, Trip } from '../history/car-activity.js';
import type { PostgresMetrics } from './postgres-metrics.js';
import { valueRows, type ValueRow } from './record-values.js';
import { migrate } from './schema.js';

export interface PostgresSinkOptions {
  url: string;
  batchRows: number;
  flushMs: number;
  queueMaxRows: number;
  metrics: PostgresMetrics;
  logger: Logger;
}

type ActivityRow = { kind: 'trip'; vin: string; trip: Trip } | { kind: 'charge'; vin: string; session: ChargingSession };

const MAX_BACKOFF_MS = 30_000;
/** Records turned into rows per event-loop turn (each is one JSON.parse). */
const RECORDS_PER_TURN = 200;
/** Finished trips and charges held while the database is away (a handful per car per day). */
const MAX_ACTIVITY_ROWS = 100_000;

const INSERT_VALUES = `
  INSERT INTO telemetry_values (vehicle_id, signal_id, at, num, txt)
  SELECT v, s, to_timestamp(t / 1000.0), n, x
  FROM unnest($1::int[], $2::smallint[], $3::float8[], $4::float8[], $5::text[]) AS u(v, s, t, n, x)
  ON CONFLICT DO NOTHING`;

/**
 * Long-term storage in PostgreSQL, fed from the record bus as a subscriber. The bus hands a record
 * over and moves on (the car's ack never waits for the database); the record is turned into value
 * rows on the next turn and queued. A writer sends full batches (or whatever waited `flushMs`) with
 * one multi-row INSERT each. When the database is down or refuses, the batch stays at the head of the
 * queue and is retried with backoff; the queue is bounded, and past its bound the oldest rows are
 * dropped and counted (and logged), so an outage costs memory only up to a known limit.
 */
export class PostgresSink {
  private readonly pool: pg.Pool;
  private readonly chunks: ValueRow[][] = [];
  private queued = 0;
  private readonly activity: ActivityRow[] = [];
  private incoming: BusRecord[] = [];
  private scheduled = false;
  private writing = false;
  private migrated = false;
  private retryAt = 0;
  private backoffMs = 500;
  private oldestAt = 0;
  private droppedSinceLog = 0;
  private readonly vehicleIds = new Map<string, number>();
  private readonly signalIds = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly options: PostgresSinkOptions) {
    this.pool = new pg.Pool({ connectionString: options.url, max: 2, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000 });
    // An idle connection dropped by a database restart must not take the process down.
    this.pool.on('error', (error) => options.logger.warn({ err: redact(error) }, 'postgres_idle_connection_error'));
    options.metrics.up.set(0);
  }

  start(bus: RecordBus): void {
    this.unsubscribe ??= bus.subscribe((record) => {
      if (record.topic !== 'V' || record.recordJson === null) return;
      this.incoming.push(record);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.take());
      }
    });
    this.timer ??= setInterval(() => void this.write(false), Math.max(10, Math.floor(this.options.flushMs / 2)));
    this.timer.unref();
  }

  tripEnded(vin: string, trip: Trip): void {
    this.addActivity({ kind: 'trip', vin, trip });
  }

  chargeEnded(vin: string, session: ChargingSession): void {
    this.addActivity({ kind: 'charge', vin, session });
  }

  /** Values waiting to be written. */
  get pending(): number {
    return this.queued + this.incomingRows();
  }

  /** Write everything queued now (tests, shutdown); resolves false when the database did not take it all. */
  async flush(): Promise<boolean> {
    this.take(true);
    this.retryAt = 0;
    await this.write(true);
    return this.queued === 0 && this.activity.length === 0;
  }

  /** Stop following the bus, try to write what is queued within `graceMs`, close the connections. */
  async stop(graceMs = 5000): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && !(await this.flush())) await new Promise((resolve) => setTimeout(resolve, 200));
    if (this.queued > 0 || this.activity.length > 0) {
      this.options.logger.error({ values: this.queued, tripsAndCharges: this.activity.length }, 'postgres_unwritten_at_stop');
    }
    await this.pool.end().catch(() => undefined);
  }

  private incomingRows(): number {
    return this.incoming.length;
  }

  private addActivity(row: ActivityRow): void {
    if (this.activity.length >= MAX_ACTIVITY_ROWS) {
      this.activity.shift();
      this.options.metrics.rowsDropped.inc();
    }
    this.activity.push(row);
  }

  /** Records -> value rows, into the bounded queue of batches. */
  private take(all = false): void {
    this.scheduled = false;
    if (this.incoming.length === 0) return;
    // A bounded slice per turn, so turning records into rows never holds the event loop (and acks) for long.
    let records = this.incoming;
    if (!all && records.length > RECORDS_PER_TURN) {
      records = this.incoming.slice(0, RECORDS_PER_TURN);
      this.incoming = this.incoming.slice(RECORDS_PER_TURN);
      this.scheduled = true;
      setImmediate(() => this.take());
    } else {
      this.incoming = [];
    }
    const { batchRows } = this.options;
    for (const record of records) {
      let chunk = this.chunks[this.chunks.length - 1];
      if (chunk === undefined || chunk.length >= batchRows) {
        chunk = [];
        this.chunks.push(chunk);
        if (this.chunks.length === 1) this.oldestAt = Date.now();
      }
      try {
        this.queued += valueRows(record, chunk);
      } catch (error) {
        this.options.logger.warn({ vin: record.vin, err: error }, 'postgres_record_unreadable');
      }
    }
    this.dropOverflow();
    this.options.metrics.queueRows.set(this.queued);
    if (this.chunks.length > 1 || (this.chunks[0]?.length ?? 0) >= batchRows) void this.write(false);
  }

  private dropOverflow(): void {
    let dropped = 0;
    while (this.queued > this.options.queueMaxRows && this.chunks.length > 1) {
      // The head batch may be in flight: drop the oldest batch that is not.
      const index = this.writing ? 1 : 0;
      const [chunk = []] = this.chunks.splice(index, 1);
      this.queued -= chunk.length;
      dropped += chunk.length;
    }
    if (dropped === 0) return;
    this.options.metrics.rowsDropped.inc(dropped);
    this.droppedSinceLog += dropped;
    this.options.logger.error({ dropped, droppedSinceLastWrite: this.droppedSinceLog, queueMaxRows: this.options.queueMaxRows }, 'postgres_queue_full_values_dropped');
  }

  private async write(force: boolean): Promise<void> {
    if (this.writing || Date.now() < this.retryAt) return;
    this.writing = true;
    try {
      while (this.activity.length > 0 || this.chunks.length > 0) {
        const head = this.chunks[0];
        const due = force || this.activity.length > 0 || this.chunks.length > 1 || (head !== undefined && (head.length >= this.options.batchRows || Date.now() - this.oldestAt >= this.options.flushMs));
        if (!due) break;
        if (!this.migrated) {
          const client = await this.pool.connect();
          try {
            const applied = await migrate(client);
            if (applied.length > 0) this.options.logger.info({ applied }, 'postgres_migrated');
          } finally {
            client.release();
          }
          this.migrated = true;
        }
        if (this.activity.length > 0) {
          await this.writeActivity(this.activity.slice(0, 500));
          continue;
        }
        // The head may also be the chunk new records are appended to while this write is under way:
        // write and remove exactly the rows taken now, so rows that arrive meanwhile stay queued.
        if (head === undefined) break;
        const taken = head.length;
        if (taken > 0) {
          const started = performance.now();
          await this.writeValues(head.slice(0, taken));
          this.options.metrics.batchDuration.observe((performance.now() - started) / 1000);
          this.options.metrics.rowsWritten.inc({ table: 'telemetry_values' }, taken);
        }
        if (head.length === taken) this.chunks.shift();
        else head.splice(0, taken);
        this.queued -= taken;
        this.oldestAt = Date.now();
        this.options.metrics.queueRows.set(this.queued);
      }
      if (this.backoffMs > 500 || this.droppedSinceLog > 0) {
        this.options.logger.info({ droppedWhileDown: this.droppedSinceLog }, 'postgres_writing_again');
      }
      this.backoffMs = 500;
      this.droppedSinceLog = 0;
      this.options.metrics.up.set(1);
    } catch (error) {
      this.options.metrics.writeErrors.inc();
      this.options.metrics.up.set(0);
      this.options.logger.warn({ err: redact(error), queued: this.queued, retryInMs: this.backoffMs }, 'postgres_write_failed');
      this.retryAt = Date.now() + this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      // Ids cached from before may belong to a database that was replaced.
      this.vehicleIds.clear();
      this.signalIds.clear();
    } finally {
      this.writing = false;
    }
  }

  private async writeValues(rows: ValueRow[]): Promise<void> {
    await this.resolveIds(rows.map((row) => row[0]), rows.map((row) => row[1]));
    const vehicle: number[] = [];
    const signal: number[] = [];
    const at: number[] = [];
    const num: Array<number | null> = [];
    const txt: Array<string | null> = [];
    for (const row of rows) {
      vehicle.push(this.vehicleIds.get(row[0])!);
      signal.push(this.signalIds.get(row[1])!);
      at.push(row[2]);
      num.push(row[3]);
      txt.push(row[4]);
    }
    await this.pool.query(INSERT_VALUES, [vehicle, signal, at, num, txt]);
  }

  private async writeActivity(rows: ActivityRow[]): Promise<void> {
    await this.resolveIds(rows.map((row) => row.vin), []);
    const trips = rows.filter((row): row is Extract<ActivityRow, { kind: 'trip' }> => row.kind === 'trip');
    const charges = rows.filter((row): row is Extract<ActivityRow, { kind: 'charge' }> => row.kind === 'charge');
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      for (const { vin, trip } of trips) {
        await client.query(
          `INSERT INTO trips (vehicle_id, start_at, end_at, distance_km, energy_used_kwh, efficiency_wh_per_km, max_speed_kmh, start_soc, end_soc,
             start_latitude, start_longitude, end_latitude, end_longitude, track)
           VALUES ($1, to_timestamp($2 / 1000.0), to_timestamp($3 / 1000.0), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT DO NOTHING`,
          [
            this.vehicleIds.get(vin), trip.startAt, trip.endAt, trip.distanceKm, trip.energyUsedKwh, trip.efficiencyWhPerKm, trip.maxSpeedKmh,
            trip.startSoc, trip.endSoc, trip.startPlace?.latitude ?? null, trip.startPlace?.longitude ?? null,
            trip.endPlace?.latitude ?? null, trip.endPlace?.longitude ?? null, trip.track,
          ],
        );
      }
      for (const { vin, session } of charges) {
        await client.query(
          `INSERT INTO charges (vehicle_id, start_at, end_at, energy_added_kwh, peak_power_kw, average_power_kw, current, start_soc, end_soc, latitude, longitude)
           VALUES ($1, to_timestamp($2 / 1000.0), to_timestamp($3 / 1000.0), $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT DO NOTHING`,
          [
            this.vehicleIds.get(vin), session.startAt, session.endAt, session.energyAddedKwh, session.peakPowerKw, session.averagePowerKw,
            session.current, session.startSoc, session.endSoc, session.place?.latitude ?? null, session.place?.longitude ?? null,
          ],
        );
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    this.activity.splice(0, rows.length);
    if (trips.length > 0) this.options.metrics.rowsWritten.inc({ table: 'trips' }, trips.length);
    if (charges.length > 0) this.options.metrics.rowsWritten.inc({ table: 'charges' }, charges.length);
  }

  /** Small integer keys for VINs and signal names, created on first sight and cached. */
  private async resolveIds(vins: string[], signals: string[]): Promise<void> {
    const newVins = [...new Set(vins.filter((vin) => !this.vehicleIds.has(vin)))];
    if (newVins.length > 0) {
      await this.pool.query('INSERT INTO vehicles (vin) SELECT unnest($1::text[]) ON CONFLICT (vin) DO NOTHING', [newVins]);
      const result = await this.pool.query<{ id: number; vin: string }>('SELECT id, vin FROM vehicles WHERE vin = ANY($1::text[])', [newVins]);
      for (const row of result.rows) this.vehicleIds.set(row.vin, row.id);
    }
    const newSignals = [...new Set(signals.filter((name) => !this.signalIds.has(name)))];
    if (newSignals.length > 0) {
      await this.pool.query('INSERT INTO signals (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING', [newSignals]);
      const result = await this.pool.query<{ id: number; name: string }>('SELECT id, name FROM signals WHERE name = ANY($1::text[])', [newSignals]);
      for (const row of result.rows) this.signalIds.set(row.name, row.id);
    }
  }
}

/** pg errors can quote the connection string's parts; keep only what helps and holds no secret. */
function redact(error: unknown): { message: string; code?: string } {
  const e = error as { message?: string; code?: string };
  const message = String(e?.message ?? error).replace(/postgres(ql)?:\/\/[^\s]+/g, 'postgres://[redacted]');
  return { message, ...(e?.code !== undefined ? { code: e.code } : {}) };
}
