import { assert, expect } from 'chai';
import { readFileSync } from 'node:fs';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { PostgresSink } from '../../src/postgres/postgres-sink.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';
import { TestPostgres } from '../helpers/postgres-server.js';
import { storyRecords } from '../helpers/story-records.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';

const VIN = TEST_VINS[0];

/** Grafana's PostgreSQL macros and the $vin variable, as Grafana expands them, so panels run as plain SQL. */
function grafanaSql(sql: string, vin: string, from: number, to: number): string {
  const range = `'${new Date(from).toISOString()}' AND '${new Date(to).toISOString()}'`;
  return sql
    .replace(/\$__timeGroupAlias\(([^,]+),\s*\$__interval\)/g, (_, column: string) => `to_timestamp(floor(extract(epoch FROM ${column}) / 60) * 60) AS "time"`)
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, column: string) => `${column} BETWEEN ${range}`)
    .replace(/\$vin/g, vin);
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function count(db: TestPostgres, table: string): Promise<number> {
  return Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

async function value(counter: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}): Promise<number> {
  const values = (await counter.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

describe('PostgreSQL sink (a real PostgreSQL on loopback)', function () {
  this.timeout(120_000);
  let db: TestPostgres;

  before(async () => {
    db = await TestPostgres.start();
  });
  after(async () => {
    await db?.stop();
  });

  describe('in the server', () => {
    let t: TestServer;
    let car: CarClient;
    const story = new VehicleStory({ seed: 5 });
    const start = Date.now() - 400_000;
    let sent = 0;
    /** Datums a reader expects in the database: everything but unreadable (`invalid`) readings. */
    let expectedValues = 0;

    async function drive(records: number): Promise<number[]> {
      const ackMs: number[] = [];
      for (let i = 0; i < records; i++, sent++) {
        const data = story.next();
        expectedValues += data.filter((datum) => !('invalid' in datum.value)).length;
        const frame = encodeVehicleData({ vin: VIN, createdAt: new Date(start + sent * 1000), data: data as never });
        const began = performance.now();
        expect((await car.sendRecord('V', frame)).kind).to.equal('ack');
        ackMs.push(performance.now() - began);
      }
      return ackMs;
    }

    before(async () => {
      t = await startTestServer({ env: { DATABASE_URL: db.url, POSTGRES_FLUSH_MS: '50', POSTGRES_BATCH_ROWS: '500' } });
      car = await CarClient.connect(t.carOptions(VIN));
    });
    after(async () => {
      await car?.close();
      await t?.stop();
    });

    it('creates its schema, and stores every value of every record, plus the trip and the charge', async () => {
      await drive(200);
      await waitFor('values written', async () => (await count(db, 'telemetry_values').catch(() => 0)) === expectedValues).catch(async (error: Error) => {
        throw new Error(`${error.message}: ${await count(db, 'telemetry_values').catch(() => 'no table')} of ${expectedValues} values stored, sink pending ${t.server.database?.pending}`);
      });
      await waitFor('trip and charge written', async () => (await count(db, 'trips')) === 1 && (await count(db, 'charges')) === 1);
      expect(await db.query('SELECT version, name FROM schema_migrations')).to.deep.equal([{ version: 1, name: 'values, trips and charges' }]);
      expect(await db.query('SELECT vin FROM vehicles')).to.deep.equal([{ vin: VIN }]);
      // Values keep their meaning: numbers as numbers at the car's time, enums as text.
      const first = await db.query<{ num: number; at: Date }>(
        "SELECT num, at FROM telemetry_values v JOIN signals s ON s.id = v.signal_id WHERE s.name = 'Soc' ORDER BY at LIMIT 1",
      );
      expect(first[0]!.at.getTime()).to.equal(start);
      expect(first[0]!.num).to.be.within(55, 90);
      const gears = await db.query<{ txt: string }>("SELECT DISTINCT txt FROM telemetry_values v JOIN signals s ON s.id = v.signal_id WHERE s.name = 'Gear' ORDER BY txt");
      expect(gears.map((g) => g.txt)).to.deep.equal(['ShiftStateD', 'ShiftStateP']);
      const [trip] = await db.query<{ distance_km: number; energy_used_kwh: number; points: number }>(
        'SELECT distance_km, energy_used_kwh, cardinality(track) / 3 AS points FROM trips',
      );
      assert.exists(trip);
      expect(trip.distance_km).to.be.greaterThan(0.5);
      expect(trip.energy_used_kwh).to.be.greaterThan(0);
      expect(trip.points).to.be.greaterThan(10);
      const [charge] = await db.query<{ current: string; energy_added_kwh: number }>('SELECT current, energy_added_kwh FROM charges');
      assert.exists(charge);
      expect(charge.current).to.equal('AC');
      expect(charge.energy_added_kwh).to.be.within(0.15, 0.22);
      const m = t.server.metrics.postgres;
      expect(await value(m.rowsWritten, { table: 'telemetry_values' })).to.equal(expectedValues);
      expect(await value(m.rowsDropped)).to.equal(0);
    });

    it('every panel of the Grafana "Car history" dashboard runs on this schema and finds the data', async () => {
      const dashboard = JSON.parse(readFileSync(new URL('../../../grafana/dashboards/car-history.json', import.meta.url), 'utf8')) as {
        panels: Array<{ title: string; type: string; targets?: Array<{ rawSql: string }> }>;
        templating: { list: Array<{ query: string }> };
      };
      expect((await db.query<{ vin: string }>(dashboard.templating.list[0]!.query)).map((row) => row.vin)).to.deep.equal([VIN]);
      let checked = 0;
      for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
        for (const target of panel.targets ?? []) {
          const rows = await db.query(grafanaSql(target.rawSql, VIN, start - 60_000, Date.now() + 60_000)).catch((error: Error) => {
            throw new Error(`${panel.title}: ${error.message}`);
          });
          expect(rows.length, panel.title).to.be.greaterThan(0);
          expect(Object.values(rows[0]!).some((v) => v !== null), `${panel.title} finds data`).to.equal(true);
          checked++;
        }
      }
      expect(checked).to.be.greaterThan(8);
    });

    it('a database restart mid-stream: acks never wait, and nothing acked is lost', async () => {
      await db.down();
      // The database is down: cars are acked as before, values wait in the queue.
      const ackMs = await drive(60);
      expect(Math.max(...ackMs)).to.be.below(1000);
      const m = t.server.metrics.postgres;
      await waitFor('a failed write', async () => (await value(m.writeErrors)) > 0);
      expect(t.server.database!.pending).to.be.greaterThan(0);
      await db.up();
      await drive(20);
      await waitFor('the queue written after the restart', async () => (await count(db, 'telemetry_values').catch(() => 0)) === expectedValues, 60_000);
      expect(await value(m.rowsDropped)).to.equal(0);
      expect(await value(m.up)).to.equal(1);
    });
  });

  it('keeps the rows that arrive while a batch is being written (nothing lost to an in-flight write)', async () => {
    const database = 'inflight';
    await db.query(`CREATE DATABASE ${database}`);
    const url = db.url.replace(/\/postgres$/, `/${database}`);
    const metrics = new ServerMetrics({ collectDefaults: false });
    // One open batch (batchRows far above what is sent), so records that arrive mid-write join the batch being written.
    const sink = new PostgresSink({ url, batchRows: 100_000, flushMs: 60_000, queueMaxRows: 1_000_000, metrics: metrics.postgres, logger: silentLogger() });
    const bus = new InProcessBus();
    sink.start(bus);
    const records = storyRecords(VIN, 40, Date.now() - 40_000);
    let total = 0;
    for (const record of records) total += (JSON.parse(record.recordJson!) as { data: Array<{ value: Record<string, unknown> }> }).data.filter((d) => !('invalid' in d.value)).length;
    // A slow INSERT (as on a loaded database): records keep arriving while the batch is being written.
    const pool = (sink as unknown as { pool: { query: (...args: unknown[]) => Promise<unknown> } }).pool;
    const query = pool.query.bind(pool);
    pool.query = async (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('INSERT INTO telemetry_values')) await new Promise((resolve) => setTimeout(resolve, 30));
      return query(...args);
    };
    for (const [index, record] of records.entries()) {
      bus.publish(record, () => {});
      if (index % 10 === 0) void sink.flush();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor('every value written', async () => (await sink.flush()) && sink.pending === 0);
    const client = new (await import('pg')).default.Client({ connectionString: url });
    await client.connect();
    try {
      const stored = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM telemetry_values')).rows[0]!.n);
      expect(stored).to.equal(total);
      expect(await value(metrics.postgres.rowsWritten, { table: 'telemetry_values' })).to.equal(total);
    } finally {
      await client.end();
      await sink.stop();
    }
  });

  it('past its queue bound while the database is down, drops the oldest values and counts exactly what it dropped', async () => {
    const database = 'bounded';
    await db.query(`CREATE DATABASE ${database}`);
    const url = db.url.replace(/\/postgres$/, `/${database}`);
    const metrics = new ServerMetrics({ collectDefaults: false });
    const sink = new PostgresSink({ url, batchRows: 100, flushMs: 20, queueMaxRows: 1000, metrics: metrics.postgres, logger: silentLogger() });
    const bus = new InProcessBus();
    sink.start(bus);
    const records = storyRecords(VIN, 300, Date.now() - 300_000);
    // Schema in place first, then the database goes away.
    bus.publish(records[0]!, () => {});
    expect(await sink.flush()).to.equal(true);
    await db.down();
    for (const record of records.slice(1)) bus.publish(record, () => {});
    await new Promise((resolve) => setImmediate(resolve));
    expect(await sink.flush()).to.equal(false);
    const dropped = await value(metrics.postgres.rowsDropped);
    expect(dropped).to.be.greaterThan(1000);
    expect(sink.pending).to.be.at.most(1000);
    await db.up();
    await waitFor('the rest written', () => sink.flush());
    const stored = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${database}.public.telemetry_values`).catch(async () => {
      const client = new (await import('pg')).default.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query<{ n: string }>('SELECT count(*) AS n FROM telemetry_values')).rows;
      } finally {
        await client.end();
      }
    }))[0]!.n);
    const written = await value(metrics.postgres.rowsWritten, { table: 'telemetry_values' });
    expect(stored).to.equal(written);
    // Every value is either in the database or counted as dropped.
    let total = 0;
    for (const record of records) total += (JSON.parse(record.recordJson!) as { data: Array<{ value: Record<string, unknown> }> }).data.filter((d) => !('invalid' in d.value)).length;
    expect(stored + dropped).to.equal(total);
    await sink.stop();
  });
});
