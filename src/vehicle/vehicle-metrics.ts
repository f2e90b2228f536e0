import client from 'prom-client';
import { CellHistogram, CounterCell, foldCounterCells } from '../metrics/hot-path.js';
import { LATENCY_BUCKETS, PREFIX } from '../metrics/series.js';

/** Series owned by other stages that the vehicle listener also counts. */
export interface VehicleBorrowedSeries {
  /** The decode stage's (text frames are refused here, before any decode). */
  readonly decodeErrors: client.Counter<'kind'>;
  /** The handler boundary's (src/safety/). */
  readonly handlerErrors: client.Counter<'listener' | 'handler'>;
}

/** The vehicle listener: connections, frames in, replies out and how long a reply took. */
export class VehicleMetrics {
  readonly connectionAttempts: client.Counter<'result'>;
  readonly connectionRefusals: client.Counter<'reason'>;
  readonly disconnects: client.Counter<'reason'>;
  readonly frames: client.Counter;
  readonly frameBytes: client.Counter;
  readonly framesOversize: client.Counter;
  readonly framesRateLimited: client.Counter;
  readonly replies: client.Counter<'kind'>;
  /** Also counted by the actors (a record the bus failed to store). */
  readonly repliesDropped: client.Counter<'reason'>;
  readonly ackLatency: CellHistogram<never>;
  readonly decodeErrors: client.Counter<'kind'>;
  readonly handlerErrors: client.Counter<'listener' | 'handler'>;

  /** Per-frame cells (hot-path.ts), folded into the series above at every scrape. */
  readonly framesCell = new CounterCell();
  readonly frameBytesCell = new CounterCell();
  readonly replyCells: Readonly<Record<'ack' | 'error', CounterCell>> = { ack: new CounterCell(), error: new CounterCell() };

  constructor(registry: client.Registry, borrowed: VehicleBorrowedSeries) {
    const r = [registry];
    this.decodeErrors = borrowed.decodeErrors;
    this.handlerErrors = borrowed.handlerErrors;
    this.connectionAttempts = new client.Counter({ name: `${PREFIX}vehicle_connection_attempts_total`, help: 'Vehicle upgrade attempts by result (accepted, refused).', labelNames: ['result'], registers: r });
    this.connectionRefusals = new client.Counter({ name: `${PREFIX}vehicle_connection_refusals_total`, help: 'Vehicle connections refused, by reason.', labelNames: ['reason'], registers: r });
    this.disconnects = new client.Counter({ name: `${PREFIX}vehicle_disconnects_total`, help: 'Vehicle connections closed, by reason.', labelNames: ['reason'], registers: r });
    this.frames = new client.Counter({ name: `${PREFIX}frames_received_total`, help: 'Binary frames received from vehicles.', registers: r, collect: foldCounterCells([[{}, this.framesCell]]) });
    this.frameBytes = new client.Counter({ name: `${PREFIX}frame_received_bytes_total`, help: 'Bytes of binary frames received from vehicles.', registers: r, collect: foldCounterCells([[{}, this.frameBytesCell]]) });
    this.framesOversize = new client.Counter({ name: `${PREFIX}frames_oversize_total`, help: 'Frames refused for exceeding the size limit.', registers: r });
    this.framesRateLimited = new client.Counter({ name: `${PREFIX}vehicle_frames_rate_limited_total`, help: 'Frames dropped unacked because their car connection was over VEHICLE_MAX_FRAMES_PER_SECOND.', registers: r });
    this.replies = new client.Counter({ name: `${PREFIX}replies_total`, help: 'Replies written to vehicles, by kind (ack, error).', labelNames: ['kind'], registers: r, collect: foldCounterCells([[{ kind: 'ack' }, this.replyCells.ack], [{ kind: 'error' }, this.replyCells.error]]) });
    this.repliesDropped = new client.Counter({ name: `${PREFIX}replies_dropped_total`, help: 'Replies not sent, by reason (connection_closed, bus_error, backpressure).', labelNames: ['reason'], registers: r });
    this.ackLatency = new CellHistogram({ name: `${PREFIX}ack_latency_seconds`, help: 'Frame received to reply written.', buckets: LATENCY_BUCKETS, registers: r });
    // Known label values exist from the first scrape, at 0: rate() then sees the first event.
    for (const kind of ['ack', 'error']) this.replies.inc({ kind }, 0);
    for (const result of ['accepted', 'refused']) this.connectionAttempts.inc({ result }, 0);
  }
}
