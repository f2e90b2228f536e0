import type { BusRecord, RecordHold } from '../bus/record-bus.js';
import type { DashboardClient } from './dashboard-hub.js';
import { RecordCoverage } from './record-coverage.js';

/**
 * Where one dashboard's subscription to one VIN stands. A subscription moves forward only:
 *
 *   awaiting_snapshot -> replaying -> joining -> live
 *          |                 |           |         |
 *          +-----------------+-----------+---------+--> released
 *
 * - awaiting_snapshot: the snapshot is being read; the VIN's live records are held for this dashboard.
 * - replaying: the snapshot is out and history (`since`) is being replayed; live records are still held.
 * - joining: everything held that the dashboard lacks is out; it joins the VIN's topic at the first
 *   record its coverage does not hold (records it does hold can still arrive, see RecordCoverage).
 * - live: on the VIN's topic, where the publisher delivers every record.
 * - released: unsubscribed, closed, refused after the fact, or failed.
 * A synchronous snapshot with no history goes straight to live (snapshot and join in the same tick).
 */
export type SubscriptionState = 'awaiting_snapshot' | 'replaying' | 'joining' | 'live' | 'released';

/** What became of a record offered to a subscription that is not live yet. */
export type Offered =
  /** Kept until the snapshot (and history) are out. */
  | 'held'
  /** Dropped: the dashboard already has it. */
  | 'covered'
  /** The subscription joined the topic now: the publish that follows delivers this record. */
  | 'joined'
  /** Not kept, the hold is full: the dashboard must go (it would miss records otherwise). */
  | 'overflow'
  /** Not waiting for records (live or released): nothing to do. */
  | 'ignored';

export class VinSubscription {
  private current: SubscriptionState = 'awaiting_snapshot';
  private held: BusRecord[] = [];
  /** The holds of the held records that have one (BusRecord.hold), let go of once they are sent or dropped. */
  private holds: RecordHold[] = [];
  private coverage = RecordCoverage.none();

  constructor(
    readonly vin: string,
    readonly client: DashboardClient,
    private readonly maxHeld: number,
  ) {}

  get state(): SubscriptionState {
    return this.current;
  }

  /** Still wanted: not unsubscribed or closed while something was awaited. */
  get active(): boolean {
    return this.current !== 'released';
  }

  /** Past the snapshot but not on the topic yet: messages for the topic must be sent to it directly. */
  get joining(): boolean {
    return this.current === 'joining';
  }

  /** Synchronous snapshot, no history: sent and joined in the same tick, so nothing falls between. */
  joinWith(snapshotMessage: string): void {
    this.expect('awaiting_snapshot');
    this.client.send(snapshotMessage);
    this.goLive();
  }

  /** The snapshot is out; `coverage` is what it holds of the records held meanwhile. */
  snapshotSent(snapshotMessage: string, coverage: RecordCoverage): void {
    this.expect('awaiting_snapshot');
    this.client.send(snapshotMessage);
    this.coverage = coverage;
  }

  startReplay(): void {
    this.expect('awaiting_snapshot');
    this.current = 'replaying';
  }

  /** One replayed record, sent: the dashboard has it from now on. */
  replayed(record: BusRecord, message: string): void {
    this.expect('replaying');
    this.client.send(message);
    this.coverage.add(record);
  }

  /**
   * Snapshot and history are out: sends the held records the dashboard lacks, then joins the topic,
   * at once or (when covered records may still arrive) at the first record past the coverage.
   * Returns whether it is live now.
   */
  catchUp(messageOf: (record: BusRecord) => string): boolean {
    if (this.current !== 'awaiting_snapshot') this.expect('replaying');
    const held = this.held;
    const holds = this.holds;
    this.held = [];
    this.holds = [];
    let passedCoverage = false;
    try {
      for (const record of held) {
        if (this.coverage.covers(record)) continue;
        this.client.send(messageOf(record));
        passedCoverage = true;
      }
    } finally {
      letGoOf(holds);
    }
    // Records arrive in sequence order: once one was past the coverage, every later one is too.
    if (passedCoverage || !this.coverage.coveredMayArriveLate) {
      this.goLive();
      return true;
    }
    this.current = 'joining';
    return false;
  }

  /** A record of this VIN from the bus, before the hub publishes it to the VIN's topic. */
  offer(record: BusRecord): Offered {
    switch (this.current) {
      case 'awaiting_snapshot':
      case 'replaying':
        if (this.held.length >= this.maxHeld) return 'overflow';
        // Read after this turn (catchUp): held until then (BusRecord.hold).
        if (record.hold !== undefined) this.holds.push(record.hold());
        this.held.push(record);
        return 'held';
      case 'joining':
        if (this.coverage.covers(record)) return 'covered';
        this.goLive();
        return 'joined';
      case 'live':
      case 'released':
        return 'ignored';
    }
  }

  release(): void {
    this.current = 'released';
    const holds = this.holds;
    this.held = [];
    this.holds = [];
    letGoOf(holds);
    if (this.client.isOpen) this.client.leaveVin(this.vin);
  }

  private goLive(): void {
    this.current = 'live';
    this.client.joinVin(this.vin);
  }

  private expect(state: SubscriptionState): void {
    if (this.current !== state) throw new Error(`dashboard subscription to ${this.vin}: ${this.current}, expected ${state}`);
  }
}

/** The holds of records a subscription reads no more (once each). */
function letGoOf(holds: RecordHold[]): void {
  for (const hold of holds) hold.letGo();
}
