import client from 'prom-client';
import { CellHistogram, CounterCell, foldCounterCells } from '../metrics/hot-path.js';
import { LATENCY_BUCKETS, PREFIX } from '../metrics/series.js';
import { SIGNALS_PER_US_DOLLAR } from '../protocol/signal-price.js';
import { KNOWN_TOPICS } from '../protocol/topics.js';

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

/** Series owned by other stages that the actors also count. */
export interface ActorBorrowedSeries {
  /** The decode stage's (a frame whose decode outcome is an error). */
  readonly decodeErrors: client.Counter<'kind'>;
  /** The vehicle listener's (a reply withheld because the bus failed to store the record). */
  readonly repliesDropped: client.Counter<'reason'>;
}

/**
 * The per-VIN actors and their registry: records, signals and spend by topic, the bus's answer,
 * connected vehicles and the watchdog.
 */
export class ActorMetrics {
  readonly vehicleConnections: client.Gauge;
  readonly vehiclesConnected: client.Gauge;
  readonly records: client.Counter<'topic'>;
  readonly signals: client.Counter<'topic'>;
  readonly recordBytes: client.Counter<'topic'>;
  readonly signalCostDollars: client.Counter<'topic'>;
  readonly busPublishLatency: CellHistogram<'bus'>;
  readonly busPublishErrors: client.Counter<'bus'>;
  readonly staleVehicles: client.Gauge;
  readonly watchdogEvents: client.Counter<'event'>;
  readonly decodeErrors: client.Counter<'kind'>;
  readonly repliesDropped: client.Counter<'reason'>;
  private readonly topicCells = new Map<string, TopicCells>(METRIC_TOPICS.map((topic) => [topic, new TopicCells()]));

  /** Nearly every record is a V record: its cells without a Map lookup. */
  private readonly vehicleDataCells = this.topicCells.get('V')!;

  /** The cells of a topic; topics other than Tesla's four share `other`, so the label stays bounded. */
  topic(topic: string): TopicCells {
    if (topic === 'V') return this.vehicleDataCells;
    return this.topicCells.get(topic) ?? (this.topicCells.get('other') as TopicCells);
  }

  constructor(registry: client.Registry, borrowed: ActorBorrowedSeries) {
    const byTopic = (pick: (cells: TopicCells) => CounterCell) =>
      [...this.topicCells].map(([topic, cells]) => [{ topic }, pick(cells)] as const);
    const r = [registry];
    this.decodeErrors = borrowed.decodeErrors;
    this.repliesDropped = borrowed.repliesDropped;
    this.vehicleConnections = new client.Gauge({ name: `${PREFIX}vehicle_connections`, help: 'Open vehicle WebSocket connections.', registers: r });
    this.vehiclesConnected = new client.Gauge({ name: `${PREFIX}vehicles_connected`, help: 'Distinct VINs with at least one open connection.', registers: r });
    this.records = new client.Counter({ name: `${PREFIX}records_total`, help: 'Records decoded and published, by topic.', labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.records)) });
    this.signals = new client.Counter({ name: `${PREFIX}signals_total`, help: 'Signals (datums, alerts, errors) received, by topic; Tesla bills per signal.', labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.signals)) });
    this.recordBytes = new client.Counter({ name: `${PREFIX}record_payload_bytes_total`, help: 'Protobuf payload bytes of records, by topic.', labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.payloadBytes)) });
    this.busPublishLatency = new CellHistogram({ name: `${PREFIX}bus_publish_latency_seconds`, help: 'Record handed to the bus until the bus says it is safe; the in-process bus (safe once its local subscribers return) times one record in 16.', labelNames: ['bus'], buckets: LATENCY_BUCKETS, registers: r });
    this.busPublishErrors = new client.Counter({ name: `${PREFIX}bus_publish_errors_total`, help: 'Records the bus failed to store (the car is not acked and resends).', labelNames: ['bus'], registers: r });
    this.staleVehicles = new client.Gauge({ name: `${PREFIX}stale_vehicles`, help: 'Vehicles silent for longer than the watchdog threshold.', registers: r });
    this.watchdogEvents = new client.Counter({ name: `${PREFIX}watchdog_events_total`, help: 'Watchdog transitions, by event (stale, fresh).', labelNames: ['event'], registers: r });
    this.signalCostDollars = new client.Counter({ name: `${PREFIX}signal_cost_dollars_total`, help: `Estimated Tesla signal spend in US dollars at ${SIGNALS_PER_US_DOLLAR} signals per dollar.`, labelNames: ['topic'], registers: r, collect: foldCounterCells(byTopic((cells) => cells.costSignals), 1 / SIGNALS_PER_US_DOLLAR) });
    // Known label values exist from the first scrape, at 0: rate() then sees the first event.
    for (const topic of METRIC_TOPICS) {
      for (const counter of [this.records, this.signals, this.recordBytes, this.signalCostDollars]) counter.inc({ topic }, 0);
    }
  }
}
