import type { ScenarioResult } from '../report/result.js';
import { BenchPostgres } from '../../tools/postgres-server.js';
import type { RunContext } from './session.js';
import { runSteady, type SteadyOptions } from './steady.js';

/**
 * What the PostgreSQL sink costs: the steady scenario against ours without a database, then the same
 * run with DATABASE_URL pointing at a PostgreSQL the harness starts on loopback (Debian's server
 * binaries, a temp data directory). Afterwards the database is asked how many values it holds, and the
 * server's own counters say how many it dropped or still held at stop.
 */
export async function runPostgresComparison(ctx: RunContext, o: SteadyOptions): Promise<ScenarioResult[]> {
  const without = await runSteady(ctx, o);
  without.scenario = 'postgres';
  const db = await BenchPostgres.start();
  try {
    ctx.progress('postgres: the same steady run with the sink on');
    const cpuBefore = db.cpuSeconds();
    const began = performance.now();
    const withSink = await runSteady({ ...ctx, serverEnv: { ...ctx.serverEnv, DATABASE_URL: db.url } }, o);
    // Over the whole run (connect, warm-up, window, drain): the database's share of the machine.
    const databaseCpuCores = (db.cpuSeconds() - cpuBefore) / ((performance.now() - began) / 1000);
    withSink.scenario = 'postgres';
    withSink.server = 'ours-postgres';
    const [values = { n: '0' }] = await db.query<{ n: string }>('SELECT count(*) AS n FROM telemetry_values').catch(() => [{ n: '0' }]);
    const [span = { cars: '0' }] = await db.query<{ cars: string }>('SELECT count(*) AS cars FROM vehicles').catch(() => [{ cars: '0' }]);
    withSink.details = { ...withSink.details, valuesStored: Number(values.n), carsStored: Number(span.cars), databaseCpuCores: Math.round(databaseCpuCores * 100) / 100 };
    return [without, withSink];
  } finally {
    await db.stop();
  }
}
