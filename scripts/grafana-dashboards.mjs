#!/usr/bin/env node
// Writes the Grafana dashboards in grafana/dashboards/ from the panel list below, so every panel has the
// same datasource, layout rules and units:   node scripts/grafana-dashboards.mjs
// With --check it compares instead and exits 1 when a dashboard file is stale.
// What each panel answers is explained in docs/GRAFANA.md (a unit test checks every title is there).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const OUT_DIR = fileURLToPath(new URL('../grafana/dashboards/', import.meta.url));
/** Matches the uid in grafana/provisioning/datasources/prometheus.yaml. */
const DATASOURCE = { type: 'prometheus', uid: 'fleet-telemetry-prometheus' };
/** Matches the uid in grafana/provisioning/datasources/postgres.yaml (the DATABASE_URL database). */
const POSTGRES = { type: 'grafana-postgresql-datasource', uid: 'fleet-telemetry-postgres' };
const RATE = '$__rate_interval';

function target(expr, legendFormat, extra = {}) {
  return { expr, legendFormat, ...extra };
}

function timeseries(title, description, targets, unit, extra = {}) {
  return { kind: 'timeseries', title, description, targets, unit, ...extra };
}

function stat(title, description, targets, unit, extra = {}) {
  return { kind: 'stat', title, description, targets, unit, ...extra };
}

function heatmap(title, description, targets, unit) {
  return { kind: 'heatmap', title, description, targets, unit };
}

function row(title, panels) {
  return { title, panels };
}

const p = (name) => `fleet_telemetry_${name}`;
const rateBy = (labels, name) => `sum by (${labels}) (rate(${p(name)}[${RATE}]))`;
const quantile = (q, name, by = 'le') => `histogram_quantile(${q}, sum by (${by}) (rate(${p(name)}_bucket[${RATE}])))`;

const serverHealth = {
  uid: 'fleet-telemetry-server-health',
  title: 'Fleet Telemetry / Server health',
  description: 'Is the telemetry server healthy: connections, throughput, latency, errors, resources.',
  rows: [
    row('Vehicles', [
      stat('Vehicle connections', 'Open vehicle WebSockets (a car may hold two: wifi and cellular).', [target(`sum(${p('vehicle_connections')})`, 'connections')], 'short'),
      stat('VINs online', 'Distinct cars with at least one open connection.', [target(`sum(${p('vehicles_connected')})`, 'VINs')], 'short'),
      stat('Estimated signal spend (time range)', 'Signals received over the selected time range, priced at 150,000 signals per US dollar.', [target(`sum(increase(${p('signal_cost_dollars_total')}[$__range]))`, 'US$')], 'currencyUSD'),
      stat('Estimated spend rate (per day)', 'Current signal rate, priced and projected over 24 hours.', [target(`sum(rate(${p('signal_cost_dollars_total')}[${RATE}])) * 86400`, 'US$/day')], 'currencyUSD'),
      timeseries('Connects and disconnects', 'Connection attempts by result and closed connections by reason, per second.', [
        target(rateBy('result', 'vehicle_connection_attempts_total'), 'connect {{result}}'),
        target(rateBy('reason', 'vehicle_disconnects_total'), 'disconnect {{reason}}'),
      ], 'ops'),
      timeseries('Refusals by reason', 'Connections refused before the WebSocket opened, by reason (no certificate, unknown issuer, refused EKU, ...).', [
        target(rateBy('reason', 'vehicle_connection_refusals_total'), '{{reason}}'),
      ], 'ops'),
    ]),
    row('Throughput', [
      timeseries('Records/s by topic', 'Records decoded and published per second, by topic.', [target(rateBy('topic', 'records_total'), '{{topic}}')], 'ops'),
      timeseries('Signals/s by topic', 'Signals (datums, alerts, errors) per second, by topic: what Tesla bills.', [target(rateBy('topic', 'signals_total'), '{{topic}}')], 'ops'),
      timeseries('Estimated spend rate by topic', 'Signal spend per hour at the published price, by topic.', [target(`${rateBy('topic', 'signal_cost_dollars_total')} * 3600`, '{{topic}}')], 'currencyUSD'),
      timeseries('Inbound bytes/s', 'Frame bytes received from cars, and the protobuf payload bytes inside them by topic.', [
        target(`sum(rate(${p('frame_received_bytes_total')}[${RATE}]))`, 'frames'),
        target(rateBy('topic', 'record_payload_bytes_total'), 'payload {{topic}}'),
      ], 'Bps'),
    ]),
    row('Latency', [
      timeseries('Ack latency p50/p95/p99', 'Frame received to reply written, as the car sees it (minus the network).', [
        target(quantile(0.5, 'ack_latency_seconds'), 'p50'),
        target(quantile(0.95, 'ack_latency_seconds'), 'p95'),
        target(quantile(0.99, 'ack_latency_seconds'), 'p99'),
      ], 's'),
      heatmap('Ack latency heatmap', 'Acks per latency bucket over time: shows bimodal latency that percentiles hide.', [
        target(`sum by (le) (increase(${p('ack_latency_seconds_bucket')}[${RATE}]))`, '{{le}}', { format: 'heatmap' }),
      ], 's'),
      timeseries('Decode batch latency p50/p99', 'A decode batch submitted to its results back on the main thread.', [
        target(quantile(0.5, 'decode_batch_latency_seconds'), 'p50'),
        target(quantile(0.99, 'decode_batch_latency_seconds'), 'p99'),
      ], 's'),
      timeseries('Bus publish latency p99', 'Record handed to the bus until the bus says it is stored, by bus.', [
        target(quantile(0.99, 'bus_publish_latency_seconds', 'le, bus'), '{{bus}} p99'),
      ], 's'),
    ]),
    row('Errors', [
      timeseries('Decode errors by kind', 'Frames that could not be decoded, and decode tasks lost to failing workers, per second.', [
        target(rateBy('kind', 'decode_errors_total'), '{{kind}}'),
        target(rateBy('kind', 'decode_worker_failures_total'), 'worker {{kind}}'),
      ], 'ops'),
      timeseries('Replies and dropped replies', 'Replies written to cars by kind, replies not sent by reason, and frames over the size limit.', [
        target(rateBy('kind', 'replies_total'), 'reply {{kind}}'),
        target(rateBy('reason', 'replies_dropped_total'), 'dropped {{reason}}'),
        target(`sum(rate(${p('frames_oversize_total')}[${RATE}]))`, 'oversize frames'),
      ], 'ops'),
      timeseries('Bus publish errors', 'Records a bus failed to store (their cars are not acked and resend), by bus.', [
        target(rateBy('bus', 'bus_publish_errors_total'), '{{bus}}'),
      ], 'ops'),
    ]),
    row('Decode pool', [
      timeseries('Worker pool load', 'Decode worker batches in flight per worker thread (1 = every worker busy; above 1, batches wait in a worker\'s port), and the share of workers with a batch posted, averaged over the scrapes.', [
        // Little's law: batch-seconds per second is the average number of batches in flight.
        target(`sum(rate(${p('decode_worker_busy_seconds_total')}[${RATE}])) / clamp_min(sum(${p('decode_workers')}), 1)`, 'batches in flight per worker'),
        target(`max(avg_over_time(${p('decode_pool_utilisation_ratio')}[${RATE}]))`, 'workers with a batch posted'),
      ], 'percentunit'),
      timeseries('Worker pool queue depth', 'Decode batches waiting for a free worker.', [
        target(`sum(${p('decode_queue_depth')})`, 'queued batches'),
      ], 'short'),
      timeseries('Frames per decode batch', 'Average frames per batch: higher means the pool is amortising load.', [
        target(`sum(rate(${p('decode_batch_frames_sum')}[${RATE}])) / sum(rate(${p('decode_batch_frames_count')}[${RATE}]))`, 'frames/batch'),
      ], 'short'),
    ]),
    row('Dashboards', [
      timeseries('Dashboards connected', 'Open dashboard WebSockets.', [target(`sum(${p('dashboards_connected')})`, 'dashboards')], 'short'),
      timeseries('Dashboard messages/s', 'Messages written to dashboards per second.', [target(`sum(rate(${p('dashboard_messages_sent_total')}[${RATE}]))`, 'messages')], 'ops'),
      timeseries('Dashboard drops and auth failures', 'Dashboards closed by the server and refused at authentication, by reason.', [
        target(rateBy('reason', 'dashboards_dropped_total'), 'dropped {{reason}}'),
        target(rateBy('reason', 'dashboard_auth_failures_total'), 'auth failed {{reason}}'),
      ], 'ops'),
    ]),
    row('Process', [
      timeseries('Event-loop lag', 'How late the main thread runs timers: every frame waits this long on top of its work.', [
        target(`max(${p('nodejs_eventloop_lag_p50_seconds')})`, 'p50'),
        target(`max(${p('nodejs_eventloop_lag_p99_seconds')})`, 'p99'),
        target(`max(${p('nodejs_eventloop_lag_max_seconds')})`, 'max'),
      ], 's'),
      timeseries('Memory', 'Resident memory of the process, and the V8 heap in use and reserved.', [
        target(`sum(${p('process_resident_memory_bytes')})`, 'resident'),
        target(`sum(${p('nodejs_heap_size_used_bytes')})`, 'heap used'),
        target(`sum(${p('nodejs_heap_size_total_bytes')})`, 'heap total'),
        target(`sum(${p('nodejs_external_memory_bytes')})`, 'external'),
      ], 'bytes'),
      timeseries('CPU', 'CPU time used per second (1 = one full core), user and system, all threads of the process.', [
        target(`sum(rate(${p('process_cpu_user_seconds_total')}[${RATE}]))`, 'user'),
        target(`sum(rate(${p('process_cpu_system_seconds_total')}[${RATE}]))`, 'system'),
      ], 'percentunit'),
      timeseries('Garbage collection time', 'Share of time spent in garbage collection, by kind.', [
        target(`sum by (kind) (rate(${p('nodejs_gc_duration_seconds_sum')}[${RATE}]))`, '{{kind}}'),
      ], 'percentunit'),
    ]),
    row('History and PostgreSQL', [
      timeseries('History memory', 'Bytes the recent history holds in memory (typed-array rows and trip tracks), and the cars it holds.', [
        target(`sum(${p('history_memory_bytes')})`, 'bytes held'),
      ], 'bytes'),
      timeseries('PostgreSQL writes', 'Values and trips/charges written to PostgreSQL per second, values dropped (queue full) and batches that failed (kept and retried).', [
        target(rateBy('table', 'postgres_rows_written_total'), 'written {{table}}'),
        target(`sum(rate(${p('postgres_rows_dropped_total')}[${RATE}]))`, 'dropped'),
        target(`sum(rate(${p('postgres_write_errors_total')}[${RATE}]))`, 'failed batches'),
      ], 'ops'),
      timeseries('PostgreSQL queue', 'Values waiting to be written; it grows while the database is down or slow, up to POSTGRES_QUEUE_MAX_ROWS.', [
        target(`sum(${p('postgres_queue_rows')})`, 'queued values'),
      ], 'short'),
    ]),
  ],
};

const fleetActivity = {
  uid: 'fleet-telemetry-fleet-activity',
  title: 'Fleet Telemetry / Fleet activity',
  description: 'What the fleet is doing: who is silent, what is streaming, what Tesla says.',
  rows: [
    row('Cars', [
      stat('Stale cars', 'Cars silent for longer than the watchdog threshold (WATCHDOG_STALE_AFTER_SECONDS).', [target(`sum(${p('stale_vehicles')})`, 'stale')], 'short'),
      stat('VINs online', 'Distinct cars with at least one open connection.', [target(`sum(${p('vehicles_connected')})`, 'online')], 'short'),
      timeseries('Online and stale cars', 'Cars online next to cars the watchdog considers silent.', [
        target(`sum(${p('vehicles_connected')})`, 'online'),
        target(`sum(${p('stale_vehicles')})`, 'stale'),
      ], 'short'),
      timeseries('Watchdog events', 'Cars going stale and coming back, per interval.', [
        target(`sum by (event) (increase(${p('watchdog_events_total')}[${RATE}]))`, '{{event}}'),
      ], 'short'),
    ]),
    row('Streams', [
      timeseries('Per-topic record rates', 'Records per second by topic: vehicle data (V), alerts, errors, connectivity.', [target(rateBy('topic', 'records_total'), '{{topic}}')], 'ops'),
      timeseries('Signals per online car', 'Signals per second divided by cars online: a jump means a configuration change or a chatty car.', [
        target(`sum(rate(${p('signals_total')}[${RATE}])) / clamp_min(sum(${p('vehicles_connected')}), 1)`, 'signals/s per car'),
      ], 'ops'),
      timeseries('Vehicle alerts and errors', 'Alert and error records the cars send (not server errors), per second.', [
        target(`sum by (topic) (rate(${p('records_total')}{topic=~"alerts|errors"}[${RATE}]))`, '{{topic}}'),
      ], 'ops'),
    ]),
    row('Tesla', [
      timeseries('Tesla-reported errors', 'Errors Tesla reports for this server (fleet_telemetry_errors endpoint), per interval.', [
        target(`sum(increase(${p('tesla_reported_errors_total')}[${RATE}]))`, 'reported errors'),
      ], 'short'),
      timeseries('Config pushes', 'Fleet telemetry configuration pushes to Tesla, by result, per interval.', [
        target(`sum by (result) (increase(${p('config_pushes_total')}[${RATE}]))`, '{{result}}'),
      ], 'short'),
      timeseries('Tesla API calls', 'Calls to the Tesla Fleet API per second, by endpoint and status class.', [
        target(rateBy('endpoint, status_class', 'tesla_api_calls_total'), '{{endpoint}} {{status_class}}'),
      ], 'ops'),
    ]),
    row('Trips and charging', [
      timeseries('Trips and charging sessions', 'Trips (gear out of P until P) and charging sessions that ended, per interval, AC and DC apart.', [
        target(`sum(increase(${p('trips_total')}[${RATE}]))`, 'trips'),
        target(`sum by (current) (increase(${p('charging_sessions_total')}[${RATE}]))`, 'charges {{current}}'),
      ], 'short'),
      timeseries('Energy used and charged', 'Pack energy used by ended trips and energy added by ended charging sessions, kWh per interval.', [
        target(`sum(increase(${p('trip_energy_kwh_total')}[${RATE}]))`, 'used driving'),
        target(`sum by (current) (increase(${p('charging_energy_kwh_total')}[${RATE}]))`, 'charged {{current}}'),
      ], 'kwatth'),
    ]),
  ],
};

/** Grafana's dashboard JSON model: rows 24 units wide, panels laid out left to right. */
function render(definition) {
  const panels = [];
  let id = 1;
  let y = 0;
  for (const section of definition.rows) {
    panels.push({ id: id++, type: 'row', title: section.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    const stats = section.panels.filter((panel) => panel.kind === 'stat');
    const charts = section.panels.filter((panel) => panel.kind !== 'stat');
    if (stats.length > 0) {
      const width = Math.floor(24 / stats.length);
      stats.forEach((panel, i) => panels.push(renderPanel(panel, id++, { h: 4, w: width, x: i * width, y }, definition.datasource)));
      y += 4;
    }
    charts.forEach((panel, i) => {
      const wide = panel.kind === 'table';
      panels.push(renderPanel(panel, id++, { h: wide ? 10 : 8, w: 12, x: (i % 2) * 12, y: y + Math.floor(i / 2) * (wide ? 10 : 8) }, definition.datasource));
    });
    y += Math.ceil(charts.length / 2) * (charts.some((panel) => panel.kind === 'table') ? 10 : 8);
  }
  return {
    uid: definition.uid,
    title: definition.title,
    description: definition.description,
    tags: ['fleet-telemetry'],
    editable: true,
    graphTooltip: 1,
    refresh: definition.refresh ?? '10s',
    schemaVersion: 39,
    version: 1,
    time: definition.time ?? { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    annotations: { list: [] },
    templating: { list: definition.variables ?? [] },
    links: [],
    panels,
  };
}

function renderPanel(panel, id, gridPos, datasource = DATASOURCE) {
  const targets = panel.targets.map((t, i) => t.rawSql !== undefined ? {
    datasource,
    refId: String.fromCharCode(65 + i),
    rawSql: t.rawSql,
    format: t.format,
    rawQuery: true,
    editorMode: 'code',
  } : ({
    datasource: DATASOURCE,
    refId: String.fromCharCode(65 + i),
    expr: t.expr,
    legendFormat: t.legendFormat,
    range: true,
    ...(t.format ? { format: t.format } : {}),
  }));
  const base = { id, type: panel.kind, title: panel.title, description: panel.description, datasource, gridPos, targets };
  if (panel.kind === 'table') {
    return {
      ...base,
      fieldConfig: { defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' } } }, overrides: [] },
      options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } },
    };
  }
  if (panel.kind === 'stat') {
    return {
      ...base,
      fieldConfig: { defaults: { unit: panel.unit, decimals: panel.unit === 'currencyUSD' ? 2 : undefined, color: { mode: 'thresholds' }, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] } }, overrides: [] },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', textMode: 'auto', orientation: 'auto', justifyMode: 'auto' },
    };
  }
  if (panel.kind === 'heatmap') {
    return {
      ...base,
      fieldConfig: { defaults: {}, overrides: [] },
      options: {
        calculate: false,
        cellGap: 1,
        color: { mode: 'scheme', scheme: 'Oranges', steps: 64, exponent: 0.5, fill: 'dark-orange', scale: 'exponential', reverse: false },
        yAxis: { axisPlacement: 'left', unit: panel.unit },
        rowsFrame: { layout: 'auto' },
        tooltip: { mode: 'single', yHistogram: true, showColorScale: false },
        legend: { show: true },
        filterValues: { le: 1e-9 },
      },
    };
  }
  return {
    ...base,
    fieldConfig: {
      defaults: {
        unit: panel.unit,
        ...(panel.max !== undefined ? { max: panel.max, min: 0 } : { min: 0 }),
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: false },
      },
      overrides: [],
    },
    options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

function sql(rawSql, format = 'time_series') {
  return { rawSql: rawSql.replace(/\s+/g, ' ').trim(), format };
}

function table(title, description, targets) {
  return { kind: 'table', title, description, targets };
}

/** Values of one signal of the chosen car, for SQL panels: JOINs on the small integer keys. */
const carSignal = (names) => `FROM telemetry_values v JOIN vehicles c ON c.id = v.vehicle_id JOIN signals s ON s.id = v.signal_id
  WHERE c.vin = '$vin' AND s.name IN (${names.map((name) => `'${name}'`).join(', ')}) AND $__timeFilter(v.at)`;
const carTrips = `FROM trips t JOIN vehicles c ON c.id = t.vehicle_id WHERE c.vin = '$vin' AND $__timeFilter(t.end_at)`;
const carCharges = `FROM charges g JOIN vehicles c ON c.id = g.vehicle_id WHERE c.vin = '$vin' AND $__timeFilter(g.end_at)`;

const carHistory = {
  uid: 'fleet-telemetry-car-history',
  title: 'Fleet Telemetry / Car history',
  description: 'One car over days and months, from the PostgreSQL sink (DATABASE_URL): battery, range, trips, charges, efficiency.',
  datasource: POSTGRES,
  refresh: '1m',
  time: { from: 'now-7d', to: 'now' },
  variables: [
    {
      name: 'vin',
      label: 'Car',
      type: 'query',
      datasource: POSTGRES,
      query: 'SELECT vin FROM vehicles ORDER BY vin',
      definition: 'SELECT vin FROM vehicles ORDER BY vin',
      refresh: 1,
      includeAll: false,
      multi: false,
      sort: 1,
    },
  ],
  rows: [
    row('Summary', [
      stat('Distance driven', 'Kilometres of the trips that ended in the time range.', [sql(`SELECT coalesce(sum(t.distance_km), 0) AS "km" ${carTrips}`, 'table')], 'lengthkm'),
      stat('Energy used driving', 'Pack energy of those trips (cars that send PackVoltage and PackCurrent).', [sql(`SELECT coalesce(sum(t.energy_used_kwh), 0) AS "kWh" ${carTrips}`, 'table')], 'kwatth'),
      stat('Energy charged', 'Energy added by the charging sessions that ended in the time range.', [sql(`SELECT coalesce(sum(g.energy_added_kwh), 0) AS "kWh" ${carCharges}`, 'table')], 'kwatth'),
      stat('Average efficiency', 'Energy used per kilometre over those trips.', [sql(`SELECT sum(t.energy_used_kwh) * 1000 / nullif(sum(t.distance_km), 0) AS "Wh/km" ${carTrips}`, 'table')], 'none'),
    ]),
    row('Battery', [
      timeseries('Battery level and range', 'State of charge (%) and estimated range (mi), averaged per interval.', [
        sql(`SELECT $__timeGroupAlias(v.at, $__interval), avg(v.num) FILTER (WHERE s.name = 'Soc') AS "Battery %", avg(v.num) FILTER (WHERE s.name = 'EstBatteryRange') AS "Range mi" ${carSignal(['Soc', 'EstBatteryRange'])} GROUP BY 1 ORDER BY 1`),
      ], 'none'),
      timeseries('Speed', 'Highest speed (mph) per interval.', [
        sql(`SELECT $__timeGroupAlias(v.at, $__interval), max(v.num) AS "Speed mph" ${carSignal(['VehicleSpeed'])} GROUP BY 1 ORDER BY 1`),
      ], 'none'),
    ]),
    row('Trips', [
      table('Trips', 'Every trip (gear out of P until P again) in the time range, newest first.', [
        sql(`SELECT t.start_at AS "Start", t.end_at AS "End", round((extract(epoch FROM t.end_at - t.start_at) / 60)::numeric, 1) AS "Minutes",
          round(t.distance_km::numeric, 1) AS "km", round(t.energy_used_kwh::numeric, 2) AS "kWh", round(t.efficiency_wh_per_km::numeric) AS "Wh/km",
          round(t.max_speed_kmh::numeric) AS "Max km/h", round(t.start_soc::numeric) AS "Start %", round(t.end_soc::numeric) AS "End %" ${carTrips} ORDER BY t.start_at DESC LIMIT 500`, 'table'),
      ]),
      timeseries('Efficiency per trip', 'Wh per km of each trip, at the time it ended.', [
        sql(`SELECT t.end_at AS "time", t.efficiency_wh_per_km AS "Wh/km" ${carTrips} AND t.efficiency_wh_per_km IS NOT NULL ORDER BY 1`),
      ], 'none'),
      timeseries('Distance per day', 'Kilometres driven per day.', [
        sql(`SELECT date_trunc('day', t.end_at) AS "time", sum(t.distance_km) AS "km" ${carTrips} GROUP BY 1 ORDER BY 1`),
      ], 'lengthkm'),
    ]),
    row('Charging', [
      table('Charging sessions', 'Every charging session in the time range, newest first.', [
        sql(`SELECT g.start_at AS "Start", g.end_at AS "End", g.current AS "Current", round(g.energy_added_kwh::numeric, 2) AS "kWh",
          round(g.peak_power_kw::numeric, 1) AS "Peak kW", round(g.average_power_kw::numeric, 1) AS "Average kW",
          round(g.start_soc::numeric) AS "Start %", round(g.end_soc::numeric) AS "End %" ${carCharges} ORDER BY g.start_at DESC LIMIT 500`, 'table'),
      ]),
      timeseries('Energy charged per day', 'kWh added per day, AC and DC.', [
        sql(`SELECT date_trunc('day', g.end_at) AS "time", sum(g.energy_added_kwh) FILTER (WHERE g.current = 'AC') AS "AC", sum(g.energy_added_kwh) FILTER (WHERE g.current = 'DC') AS "DC" ${carCharges} GROUP BY 1 ORDER BY 1`),
      ], 'kwatth'),
    ]),
  ],
};

const files = {
  'server-health.json': render(serverHealth),
  'fleet-activity.json': render(fleetActivity),
  'car-history.json': render(carHistory),
};

let stale = false;
for (const [name, dashboard] of Object.entries(files)) {
  const path = `${OUT_DIR}${name}`;
  const text = `${JSON.stringify(dashboard, null, 2)}\n`;
  if (process.argv.includes('--check')) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) {
      process.stderr.write(`grafana-dashboards: grafana/dashboards/${name} is stale; run: node scripts/grafana-dashboards.mjs\n`);
      stale = true;
    }
  } else {
    mkdirSync(OUT_DIR, { recursive: true });
    writeFileSync(path, text);
  }
}
process.exit(stale ? 1 : 0);
