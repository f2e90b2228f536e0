import type pg from 'pg';

/**
 * The database schema, as numbered migrations applied in order at start (each in its own transaction,
 * under an advisory lock so two instances starting together do not race). Never edit a published
 * migration: add the next one.
 *
 * Values are one narrow row per datum: car and signal as small integer keys, the time, and either a
 * number (numbers, booleans as 0/1) or text (enums, strings, structured values as JSON). The unique
 * key (car, signal, time) makes a retried batch or a resent record a no-op.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'values, trips and charges',
    sql: `
      CREATE TABLE vehicles (
        id serial PRIMARY KEY,
        vin text NOT NULL UNIQUE
      );
      CREATE TABLE signals (
        id smallserial PRIMARY KEY,
        name text NOT NULL UNIQUE
      );
      CREATE TABLE telemetry_values (
        vehicle_id integer NOT NULL REFERENCES vehicles (id),
        signal_id smallint NOT NULL REFERENCES signals (id),
        at timestamptz NOT NULL,
        num double precision,
        txt text,
        PRIMARY KEY (vehicle_id, signal_id, at)
      );
      CREATE INDEX telemetry_values_at ON telemetry_values USING brin (at);
      CREATE TABLE trips (
        vehicle_id integer NOT NULL REFERENCES vehicles (id),
        start_at timestamptz NOT NULL,
        end_at timestamptz NOT NULL,
        distance_km double precision NOT NULL,
        energy_used_kwh double precision,
        efficiency_wh_per_km double precision,
        max_speed_kmh double precision,
        start_soc double precision,
        end_soc double precision,
        start_latitude double precision,
        start_longitude double precision,
        end_latitude double precision,
        end_longitude double precision,
        track double precision[] NOT NULL,
        PRIMARY KEY (vehicle_id, start_at)
      );
      CREATE TABLE charges (
        vehicle_id integer NOT NULL REFERENCES vehicles (id),
        start_at timestamptz NOT NULL,
        end_at timestamptz NOT NULL,
        energy_added_kwh double precision NOT NULL,
        peak_power_kw double precision NOT NULL,
        average_power_kw double precision NOT NULL,
        current text NOT NULL,
        start_soc double precision,
        end_soc double precision,
        latitude double precision,
        longitude double precision,
        PRIMARY KEY (vehicle_id, start_at)
      );
    `,
  },
];

/** Any number that is not ours, so the lock does not collide with other applications' advisory locks. */
const MIGRATION_LOCK = 7_317_001;

/** Applies the migrations not yet applied; returns the versions it applied. */
export async function migrate(client: pg.ClientBase): Promise<number[]> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((row) => row.version));
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
      applied.push(migration.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
