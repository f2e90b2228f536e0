import client from 'prom-client';
import { CellHistogram, CounterCell, foldCounterCells } from './hot-path.js';
import { registerNodeMetrics } from './node-metrics.js';
import { HistoryMetrics } from '../history/history-metrics.js';
import { PostgresMetrics } from '../postgres/postgres-metrics.js';
import { KNOWN_TOPICS } from '../protocol/topics.js';

/** The published price: 150,000 signals per US$1 (tesla-protocol.md section 5). */
export const SIGNALS_PER_US_DOLLAR = 150_000;

export const PREFIX = 'fleet_telemetry_';
/** Topic label values: the four Tesla topics, and `other` for whatever else a car sends. */
export const METRIC_TOPICS = [...KNOWN_TOPICS, 'other'] as const;

/** The per-record series of one topic, bound once (hot-path.ts): counting a record is four additions. */
export class TopicCells {
  readonly records = new CounterCell();
  readonly signals = new CounterCell();
  readonly payloadBytes = new CounterCell();
  /** Signals again, for the spend estimate: each fold takes its own delta. */
  readonly costSignals = new CounterCell();

  recordReceived(signals: number, payloadBytes: number): void {
    this.records.pending++;
    this.signals.pending += signals;
    this.costSignals.pending += signals;
    this.payloadBytes.pending += payloadBytes;
  }
}
/** Ack latency is frame-received -> reply-written: sub-millisecond when idle, tens of ms under load. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Every series the server exports. Labels are bounded enumerations only (topic, reason, kind, result):
 * never a VIN, txid, IP or connection id, so cardinality stays fixed however large the fleet.
 */
export class TelemetryMetrics {
  readonly registry: client.Registry;
  readonly vehicleConnections: client.Gauge;
  readonly vehiclesConnected: client.Gauge;
  readonly connectionAttempts: client.Counter<'result'>;
  readonly connectionRefusals: client.Counter<'reason'>;
  readonly disconnects: client.Counter<'reason'>;
  readonly frames: client.Counter;
  readonly frameBytes: client.Counter;
  readonly framesOversize: client.Counter;
  readonly framesRateLimited: client.Counter;
  readonly records: client.Counter<'topic'>;
  readonly signals: client.Counter<'topic'>;
  readonly recordBytes: client.Counter<'topic'>;
  readonly decodeErrors: client.Counter<'kind'>;
  readonly decodeInternalErrors: client.Counter<'stage'>;
  readonly replies: client.Counter<'kind'>;
  readonly repliesDropped: client.Counter<'reason'>;
  readonly ackLatency: CellHistogram<never>;
  readonly decodeLatency: client.Histogram;
  readonly decodeBatchFrames: client.Histogram;
  readonly decodeBatches: client.Counter<'path'>;
  readonly decodeQueueDepth: client.Gauge;
  readonly decodeUtilisation: client.Gauge;
  readonly decodeWorkers: client.Gauge;
  readonly decodeWorkerFailures: client.Counter<'kind'>;
  readonly busPublishLatency: CellHistogram<'bus'>;
  readonly busPublishErrors: client.Counter<'bus'>;
  readonly staleVehicles: client.Gauge;
  readonly watchdogEvents: client.Counter<'event'>;
  readonly signalCostDollars: client.Counter<'topic'>;
  /** NATS mode only (docs/SCALE-OUT.md); registered always so dashboards see zeros in one process. */
  readonly natsPendingPublishes: client.Gauge;
  readonly natsPublishFailures: client.Counter<'reason'>;
  readonly natsPublishDuplicates: client.Counter;
  readonly natsConnectionState: client.Gauge<'state'>;
  readonly natsConnectionEvents: client.Counter<'event'>;
  readonly natsRemoteRecords: client.Counter;
  readonly natsWatchedVehicles: client.Gauge;
  readonly natsStateWrites: client.Counter<'result'>;
  readonly replayRequests: client.Counter<'result'>;
  readonly replayRecords: client.Counter;
  readonly dashboardsConnected: client.Gauge;
  readonly dashboardMessagesSent: client.Counter;
  readonly dashboardsDropped: client.Counter<'reason'>;
  readonly dashboardAuthFailures: client.Counter<'reason'>;
  readonly dashboardRequests: client.Counter<'type' | 'result'>;
  readonly dashboardWatchedVehicles: client.Gauge;
  readonly teslaApiCalls: client.Counter<'endpoint' | 'status_class'>;
  /** Recent history, trips and charging sessions (src/history/). */
  readonly history: HistoryMetrics;
  /** The PostgreSQL sink (src/postgres/). */
  readonly postgres: PostgresMetrics;
  readonly teslaReportedErrors: client.Counter;
  readonly configPushes: client.Counter<'result'>;
  /** Sign in with Tesla and refreshing Tesla tokens (src/dashboard/tesla-login.ts, src/tesla/token-file.ts). */
  readonly teslaSignIns: client.Counter<'result'>;
  readonly teslaTokenRefreshes: client.Counter<'owner' | 'result'>;
  readonly dashboardSessions: client.Gauge;
  readonly handlerErrors: client.Counter<'listener' | 'handler'>;
  /** MQTT output (docs/HOME-ASSISTANT.md); registered always so dashboards see zeros without it. */
  readonly mqttConnected: client.Gauge;
  readonly mqttPublished: client.Counter<'kind'>;
  readonly mqttDropped: client.Counter<'reason'>;
  readonly mqttQueueDepth: client.Gauge;
  readonly mqttConnectionEvents: client.Counter<'event'>;
  /** Certificate hot reload (src/tls/). */
  readonly tlsReloads: client.Counter<'listener' | 'result'>;
  readonly tlsCertificateSecondsLeft: client.Gauge<'listener'>;
  /** Set by the certificate reloader: days left on each listener's certificate, read at scrape time. */
  certificateDaysLeft: (() => Array<[string, number]>) | null = null;

  /** Per-frame cells (hot-path.ts), folded into the series above at every scrape. */
  readonly framesCell = new CounterCell();
  readonly frameBytesCell = new CounterCell();
  readonly replyCells: Readonly<Record<'ack' | 'error', CounterCell>> = { ack: new CounterCell(), error: new CounterCell() };
  private readonly topicCells = new Map<string, TopicCells>(METRIC_TOPICS.map((topic) => [topic, new TopicCells()]));

  /** The cells of a topic; topics other than Tesla's four share `other`, so the label stays bounded. */
  topic(topic: string): TopicCells {
    return this.topicCells.get(topic) ?? (this.topicCells.get('other') as TopicCells);
  }

  constructor(options: { registry?: client.Registry; collectDefaults?: boolean; version?: string } = {}) {
    const byTopic = (pick: (cells: TopicCells) => CounterCell) =>
      [...this.topicCells].map(([topic, cells]) => [{ topic }, pick(cells)] as const);
    const registry = options.registry ?? new client.Registry();
    this.registry = registry;
    const r = [registry];
    if (options.collectDefaults !== false) {
      registerNodeMetrics(registry, PREFIX);
    }
    new client.Gauge({
      name: `${PREFIX}build_info`,
      help: 'Build information; the value is always 1.',
      labelNames: ['version', 'node_version'],
      registers: r,
    }).set({ version: options.version ?? '0.0.0', node_version: process.version }, 1);

    this.vehicleConnections = new client.Gauge({ name: `${PREFIX}vehicle_connections`, help: 'Open vehicle WebSocket connections.', registers: r });
    this.vehiclesConnected = new client.Gauge({ name: `${PREFIX}vehicles_connected`, help: 'Distinct VINs with at least one open connection.', registers: r });
    this.connectionAttempts = new client.Counter({ name: `${PREFIX}vehicle_connection_attempts_total`, help: 'Vehicle upgrade attempts by result (accepted, refused).', labelNames: ['result'], registers: r });
    this.connectionRefusals = new client.Counter({ name: `${PREFIX}vehicle_connection_refusals_total`, help: 'Vehicle connections refused, by reason.', labelNames: ['reason'], registers: r });
    this.disconnects = new client.Counter({ name: `${PREFIX}vehicle_disconnects_total`, help: 'Vehicle connections closed, by reason.', labelNames: ['reason'], registers: r });
    this.frames = new client.Counter({ name: `${PREFIX}frames_received_total`, help: 'Binary frames received from vehicles.', registers: r, collect: foldCounterCells([[{}, this.framesCell]]) });
    this.frameBytes = new client.Counter({ name: `${PREFIX}frame_received_bytes_total`, help: 'Bytes of binary frames received from vehicles.', registers: r, collect: foldCounterCells([[{}, this.frameBytesCell]]) });
    this.framesOversize = new client.Counter({ name: `${PREFIX}frames_oversize_total`, help: 'Frames refused for exceeding the size limit.', registers: r });
    this.framesRateLimited = new client.Counter({ name: `${PREFIX}vehicle_frames_rate_limited_total`, help: 'Frames dropped unacked because their car connection was over VEHICLE_MAX_FRAMES_PER_SECOND.', registers: r });
    this.records = new client.Counter({ name: `${PREFIX}records_total`, help: 'Records decoded and published, by topic.', labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.records)) });
    this.signals = new client.Counter({ name: `${PREFIX}signals_total`, help: 'Signals (datums, alerts, errors) received, by topic; Tesla bills per signal.', labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.signals)) });
    this.recordBytes = new client.Counter({ name: `${PREFIX}record_payload_bytes_total`, help: 'Protobuf payload bytes of records, by topic.', labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.payloadBytes)) });
    this.decodeErrors = new client.Counter({ name: `${PREFIX}decode_errors_total`, help: 'Frames that could not be decoded, by kind.', labelNames: ['kind'], registers: r });
    this.decodeInternalErrors = new client.Counter({ name: `${PREFIX}decode_internal_errors_total`, help: 'Decodes that threw something other than a verdict on the bytes: a bug of ours, each logged as decode_internal_error with its stack, never counted in decode_errors_total. By stage: frame (a car frame; it got the error reply, as a frame that kills its worker does) or stored (a record read back from NATS; skipped).', labelNames: ['stage'], registers: r });
    this.replies = new client.Counter({ name: `${PREFIX}replies_total`, help: 'Replies written to vehicles, by kind (ack, error).', labelNames: ['kind'], registers: r, collect: foldCounterCells([[{ kind: 'ack' }, this.replyCells.ack], [{ kind: 'error' }, this.replyCells.error]]) });
    this.repliesDropped = new client.Counter({ name: `${PREFIX}replies_dropped_total`, help: 'Replies not sent, by reason (connection_closed, bus_error, backpressure).', labelNames: ['reason'], registers: r });
    this.ackLatency = new CellHistogram({ name: `${PREFIX}ack_latency_seconds`, help: 'Frame received to reply written.', buckets: LATENCY_BUCKETS, registers: r });
    this.decodeLatency = new client.Histogram({ name: `${PREFIX}decode_batch_latency_seconds`, help: 'Decode batch submitted to results back on the main thread.', buckets: LATENCY_BUCKETS, registers: r });
    this.decodeBatchFrames = new client.Histogram({ name: `${PREFIX}decode_batch_frames`, help: 'Frames per decode batch.', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: r });
    this.decodeBatches = new client.Counter({ name: `${PREFIX}decode_batches_total`, help: 'Decode batches by where they were decoded: worker (a decode worker thread) or inline (on the main thread: a small batch while no task was running).', labelNames: ['path'], registers: r });
    this.decodeQueueDepth = new client.Gauge({ name: `${PREFIX}decode_queue_depth`, help: 'Decode batches waiting for a worker.', registers: r });
    this.decodeUtilisation = new client.Gauge({ name: `${PREFIX}decode_pool_utilisation_ratio`, help: 'Decode worker pool utilisation (0-1), as piscina reports it: averaged since the pool started.', registers: r });
    this.decodeWorkers = new client.Gauge({ name: `${PREFIX}decode_workers`, help: 'Decode worker threads configured (DECODE_WORKERS).', registers: r });
    this.decodeWorkerFailures = new client.Counter({ name: `${PREFIX}decode_worker_failures_total`, help: 'Decode tasks lost to a worker that threw, died or timed out, by kind.', labelNames: ['kind'], registers: r });
    this.busPublishLatency = new CellHistogram({ name: `${PREFIX}bus_publish_latency_seconds`, help: 'Record handed to the bus until the bus says it is safe.', labelNames: ['bus'], buckets: LATENCY_BUCKETS, registers: r });
    this.busPublishErrors = new client.Counter({ name: `${PREFIX}bus_publish_errors_total`, help: 'Records the bus failed to store (the car is not acked and resends).', labelNames: ['bus'], registers: r });
    this.staleVehicles = new client.Gauge({ name: `${PREFIX}stale_vehicles`, help: 'Vehicles silent for longer than the watchdog threshold.', registers: r });
    this.watchdogEvents = new client.Counter({ name: `${PREFIX}watchdog_events_total`, help: 'Watchdog transitions, by event (stale, fresh).', labelNames: ['event'], registers: r });
    this.signalCostDollars = new client.Counter({ name: `${PREFIX}signal_cost_dollars_total`, help: `Estimated Tesla signal spend in US dollars at ${SIGNALS_PER_US_DOLLAR} signals per dollar.`, labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.costSignals), 1 / SIGNALS_PER_US_DOLLAR) });
    this.natsPendingPublishes = new client.Gauge({ name: `${PREFIX}nats_pending_publishes`, help: 'Records sent to JetStream and not yet confirmed (their cars are not acked yet).', registers: r });
    this.natsPublishFailures = new client.Counter({ name: `${PREFIX}nats_publish_failures_total`, help: 'Records JetStream did not confirm, by reason (overloaded, timeout, error, closed); their cars are not acked.', labelNames: ['reason'], registers: r });
    this.natsPublishDuplicates = new client.Counter({ name: `${PREFIX}nats_publish_duplicates_total`, help: 'Records JetStream already held (a resend within the duplicate window); acked, stored once.', registers: r });
    this.natsConnectionState = new client.Gauge({ name: `${PREFIX}nats_connection_state`, help: 'NATS connection state: 1 for the current state (connected, reconnecting, disconnected, closed), 0 for the others.', labelNames: ['state'], registers: r });
    this.natsConnectionEvents = new client.Counter({ name: `${PREFIX}nats_connection_events_total`, help: 'NATS connection events, by event (disconnect, reconnect, error).', labelNames: ['event'], registers: r });
    this.natsRemoteRecords = new client.Counter({ name: `${PREFIX}nats_remote_records_total`, help: 'Records received from other instances for VINs watched here.', registers: r });
    this.natsWatchedVehicles = new client.Gauge({ name: `${PREFIX}nats_watched_vehicles`, help: 'VINs this instance follows on NATS for its dashboards.', registers: r });
    this.natsStateWrites = new client.Counter({ name: `${PREFIX}nats_state_writes_total`, help: 'Last-known state writes to the KV bucket, by result (ok, conflict, error).', labelNames: ['result'], registers: r });
    this.replayRequests = new client.Counter({ name: `${PREFIX}replay_requests_total`, help: 'History replays from the stream, by result (ok, error).', labelNames: ['result'], registers: r });
    this.replayRecords = new client.Counter({ name: `${PREFIX}replay_records_total`, help: 'Records replayed from the stream to dashboards.', registers: r });
    this.dashboardsConnected = new client.Gauge({ name: `${PREFIX}dashboards_connected`, help: 'Open dashboard WebSocket connections.', registers: r });
    this.dashboardMessagesSent = new client.Counter({ name: `${PREFIX}dashboard_messages_sent_total`, help: 'Messages written to dashboard WebSockets.', registers: r });
    this.dashboardsDropped = new client.Counter({ name: `${PREFIX}dashboards_dropped_total`, help: 'Dashboard connections closed by the server, by reason (e.g. slow consumer, token expired).', labelNames: ['reason'], registers: r });
    this.dashboardAuthFailures = new client.Counter({ name: `${PREFIX}dashboard_auth_failures_total`, help: 'Dashboard connections refused at authentication, by reason.', labelNames: ['reason'], registers: r });
    this.dashboardRequests = new client.Counter({ name: `${PREFIX}dashboard_requests_total`, help: 'Dashboard requests, by type (subscribe, unsubscribe, vehicles, any) and result (ok or the error code sent back).', labelNames: ['type', 'result'], registers: r });
    this.dashboardWatchedVehicles = new client.Gauge({ name: `${PREFIX}dashboard_watched_vehicles`, help: 'VINs at least one dashboard on this instance is subscribed to.', registers: r });
    this.teslaApiCalls = new client.Counter({ name: `${PREFIX}tesla_api_calls_total`, help: 'Calls to the Tesla Fleet API, by endpoint and HTTP status class (2xx, 4xx, 5xx, network_error).', labelNames: ['endpoint', 'status_class'], registers: r });
    this.teslaReportedErrors = new client.Counter({ name: `${PREFIX}tesla_reported_errors_total`, help: 'Errors Tesla reports for this server through the fleet_telemetry_errors endpoint.', registers: r });
    this.configPushes = new client.Counter({ name: `${PREFIX}config_pushes_total`, help: 'Fleet telemetry configuration pushes to Tesla, by result.', labelNames: ['result'], registers: r });
    this.teslaSignIns = new client.Counter({ name: `${PREFIX}tesla_sign_ins_total`, help: 'Sign in with Tesla attempts on the dashboard, by result (ok, or why it was refused: state_mismatch, state_replayed, no_login_cookie, access_denied, bad_code, missing_scope, tesla_unavailable, ...).', labelNames: ['result'], registers: r });
    this.teslaTokenRefreshes = new client.Counter({ name: `${PREFIX}tesla_token_refreshes_total`, help: 'Tesla access-token refreshes, by owner (server: TESLA_TOKEN_FILE, session: a dashboard session) and result (ok, revoked, failed).', labelNames: ['owner', 'result'], registers: r });
    this.dashboardSessions = new client.Gauge({ name: `${PREFIX}dashboard_sessions`, help: 'Sign in with Tesla sessions held by this instance.', registers: r });
    this.handlerErrors = new client.Counter({ name: `${PREFIX}handler_errors_total`, help: 'Exceptions caught at a socket or request handler boundary (logged; that client is answered or closed, the process carries on), by listener and handler.', labelNames: ['listener', 'handler'], registers: r });
    this.history = new HistoryMetrics(r[0]);
    this.postgres = new PostgresMetrics(r[0]);
    this.mqttConnected = new client.Gauge({ name: `${PREFIX}mqtt_connected`, help: 'MQTT output: 1 while connected to the broker, 0 otherwise.', registers: r });
    this.mqttPublished = new client.Counter({ name: `${PREFIX}mqtt_published_total`, help: 'MQTT messages the broker accepted, by kind (state, availability, discovery, event, record).', labelNames: ['kind'], registers: r });
    this.mqttDropped = new client.Counter({ name: `${PREFIX}mqtt_dropped_total`, help: 'MQTT messages not delivered, by reason (superseded by a newer value while waiting, queue_full, error, unsupported_vin).', labelNames: ['reason'], registers: r });
    this.mqttQueueDepth = new client.Gauge({ name: `${PREFIX}mqtt_queue_depth`, help: 'MQTT messages waiting for the broker (latest values plus queued events).', registers: r });
    this.mqttConnectionEvents = new client.Counter({ name: `${PREFIX}mqtt_connection_events_total`, help: 'MQTT broker connection events, by event (connect, close, error).', labelNames: ['event'], registers: r });
    this.tlsReloads = new client.Counter({ name: `${PREFIX}tls_reloads_total`, help: 'Certificate reloads by listener (vehicle, dashboard) and result (applied, refused: the old certificate stays in use).', labelNames: ['listener', 'result'], registers: r });
    const metrics = this;
    this.tlsCertificateSecondsLeft = new client.Gauge({
      name: `${PREFIX}tls_certificate_expiry_seconds`,
      help: 'Seconds until the certificate each listener (vehicle, dashboard) serves expires (divide by 86400 for days); negative once expired.',
      labelNames: ['listener'],
      registers: r,
      collect() {
        for (const [listener, days] of metrics.certificateDaysLeft?.() ?? []) this.set({ listener }, Math.round(days * 86_400));
      },
    });
    this.exportKnownSeriesAtZero();
  }

  /**
   * Series for known label values exist from the first scrape, at 0: rate() and increase() then see
   * the first event instead of treating its series as new.
   */
  private exportKnownSeriesAtZero(): void {
    for (const topic of METRIC_TOPICS) {
      for (const counter of [this.records, this.signals, this.recordBytes, this.signalCostDollars]) counter.inc({ topic }, 0);
    }
    for (const kind of ['ack', 'error']) this.replies.inc({ kind }, 0);
    for (const result of ['accepted', 'refused']) this.connectionAttempts.inc({ result }, 0);
    for (const listener of ['vehicle', 'dashboard']) for (const result of ['applied', 'refused']) this.tlsReloads.inc({ listener, result }, 0);
  }
}
