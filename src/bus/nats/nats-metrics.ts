import client from 'prom-client';
import { PREFIX } from '../../metrics/series.js';

/**
 * NATS scale-out (docs/SCALE-OUT.md): JetStream publishes, the connection, other instances' records,
 * the KV state and stream replays. Registered always, so dashboards see zeros in one process.
 */
export class NatsMetrics {
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
  /** Owned by the decode stage: a stored record whose decode threw (a bug of ours). */
  readonly decodeInternalErrors: client.Counter<'stage'>;

  constructor(registry: client.Registry, borrowed: { decodeInternalErrors: client.Counter<'stage'> }) {
    this.decodeInternalErrors = borrowed.decodeInternalErrors;
    const r = [registry];
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
  }
}
