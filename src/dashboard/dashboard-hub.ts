import type { Logger } from 'pino';
import type { BusRecord, RecordBus, SnapshotSource, VehicleSnapshot } from '../bus/record-bus.js';
import type { WatchdogEvent } from '../actors/vehicle-registry.js';
import type { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { VIN_PATTERN, type DashboardGrant } from './dashboard-grant.js';
import {
  RequestError,
  errorMessage,
  helloMessage,
  parseRequest,
  snapshotMessage,
  vehiclesMessage,
  watchdogMessage,
  type VehicleSummary,
} from './dashboard-protocol.js';

/** One dashboard connection as the hub sees it; the listener adapts a uWS socket to this. */
export interface DashboardClient {
  readonly isOpen: boolean;
  /** Best effort: the transport bounds what it buffers and drops a client that cannot keep up. */
  send(message: string): void;
  /** Join / leave the VIN's fan-out topic: from then on the publisher's messages for it reach this client. */
  joinVin(vin: string): void;
  leaveVin(vin: string): void;
  close(code: number, reason: string): void;
}

/** Fan-out: one call delivers a message, serialised once, to every client that joined the VIN. */
export interface VinPublisher {
  publish(vin: string, message: string): void;
}

/** Which cars the server knows and their connection state, for the hello and vehicles messages. */
export interface VehicleDirectory {
  summary(vin: string): VehicleSummary;
  list(limit: number): VehicleSummary[];
}

/** A snapshot source that can answer in the same tick (the local actors). */
interface SyncSnapshotSource extends SnapshotSource {
  snapshotNow(vin: string): VehicleSnapshot;
}

interface Subscription {
  vin: string;
  /** Records that arrived while an async snapshot was being fetched; null once live. */
  buffer: BusRecord[] | null;
}

export class DashboardSession {
  readonly subscriptions = new Map<string, Subscription>();
  /** Requests are handled one after another, so an unsubscribe never overtakes its subscribe. */
  queue: Promise<void> = Promise.resolve();
  closed = false;

  constructor(
    readonly client: DashboardClient,
    readonly grant: DashboardGrant,
  ) {}
}

export interface DashboardHubOptions {
  bus: RecordBus;
  snapshots: SnapshotSource;
  publisher: VinPublisher;
  directory: VehicleDirectory;
  metrics: TelemetryMetrics;
  logger: Logger;
  maxSubscriptionsPerDashboard?: number;
  /** Records held per subscription while an async snapshot is fetched; past it the dashboard is dropped. */
  maxBufferedRecords?: number;
}

/** Most cars listed in a hello / vehicles message for a `*` token. */
export const MAX_LISTED_VEHICLES = 1000;
export const CLOSE_TOO_SLOW = 4008;

/**
 * Between the bus and the dashboards. Records of a VIN go out once per VIN through the publisher (the
 * prebuilt `dashboardMessage`), and only for VINs some dashboard watches. A subscribe sends the snapshot
 * and joins the VIN's topic with nothing between them:
 *  - with a synchronous source (the local actors) both happen in the same tick, so every record is
 *    either folded into the snapshot or published after the join;
 *  - with an async source (a shared store) the hub holds the VIN's records for that dashboard while the
 *    snapshot is fetched, then sends the snapshot, the held records newer than it (receivedAt after the
 *    snapshot's lastSeenAt), and joins the topic, all in one tick.
 * The bus is asked to watch a VIN while at least one dashboard here wants it, and before the snapshot
 * is taken, so a multi-instance bus starts forwarding before the snapshot is read.
 */
export class DashboardHub {
  private readonly options: Required<DashboardHubOptions>;
  private readonly watchers = new Map<string, number>();
  private readonly awaitingSnapshot = new Map<string, Set<{ session: DashboardSession; subscription: Subscription }>>();
  private unsubscribeBus: (() => void) | null = null;
  private readonly sessions = new Set<DashboardSession>();

  constructor(options: DashboardHubOptions) {
    this.options = { maxSubscriptionsPerDashboard: 200, maxBufferedRecords: 10_000, ...options };
  }

  start(): void {
    this.unsubscribeBus ??= this.options.bus.subscribe((record) => this.onRecord(record));
  }

  stop(): void {
    this.unsubscribeBus?.();
    this.unsubscribeBus = null;
  }

  get watchedVins(): number {
    return this.watchers.size;
  }

  get dashboards(): number {
    return this.sessions.size;
  }

  /** A dashboard connected: greet it with what its token allows. */
  opened(session: DashboardSession): void {
    this.sessions.add(session);
    session.client.send(helloMessage(session.grant, this.vehiclesFor(session.grant)));
  }

  /** One text frame from a dashboard. */
  received(session: DashboardSession, text: string): Promise<void> {
    session.queue = session.queue.then(() => this.handle(session, text));
    return session.queue;
  }

  closed(session: DashboardSession): void {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session);
    for (const vin of [...session.subscriptions.keys()]) this.release(session, vin);
  }

  onWatchdog(event: WatchdogEvent): void {
    if (!this.watchers.has(event.vin)) return;
    this.options.publisher.publish(event.vin, watchdogMessage(event.vin, event.event, event.lastSeenAt));
  }

  private onRecord(record: BusRecord): void {
    if (!this.watchers.has(record.vin)) return;
    const waiting = this.awaitingSnapshot.get(record.vin);
    if (waiting !== undefined) {
      for (const { session, subscription } of waiting) {
        const buffer = subscription.buffer;
        if (buffer === null) continue;
        if (buffer.length >= this.options.maxBufferedRecords) {
          this.options.metrics.dashboardsDropped.inc({ reason: 'slow_consumer' });
          session.client.close(CLOSE_TOO_SLOW, 'too many records while the snapshot was fetched');
          continue;
        }
        buffer.push(record);
      }
    }
    this.options.publisher.publish(record.vin, record.dashboardMessage);
  }

  private async handle(session: DashboardSession, text: string): Promise<void> {
    if (session.closed) return;
    let request;
    try {
      request = parseRequest(text);
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      this.refuse(session, error.code, error.message);
      return;
    }
    switch (request.type) {
      case 'vehicles':
        session.client.send(vehiclesMessage(this.vehiclesFor(session.grant)));
        this.options.metrics.dashboardRequests.inc({ type: 'vehicles', result: 'ok' });
        return;
      case 'unsubscribe':
        for (const vin of request.vins) this.release(session, vin);
        this.options.metrics.dashboardRequests.inc({ type: 'unsubscribe', result: 'ok' });
        return;
      case 'subscribe':
        for (const vin of request.vins) {
          if (session.closed) return;
          await this.subscribe(session, vin);
        }
        return;
    }
  }

  private async subscribe(session: DashboardSession, vin: string): Promise<void> {
    if (!VIN_PATTERN.test(vin)) return this.refuse(session, 'invalid_vin', 'not a VIN', vin);
    if (session.subscriptions.has(vin)) return;
    const allowed = session.grant.allows(vin) || (await session.grant.allowsAfterRefresh(vin));
    if (session.closed) return;
    if (!allowed) return this.refuse(session, 'forbidden_vin', 'this token does not allow that VIN', vin);
    if (session.subscriptions.size >= this.options.maxSubscriptionsPerDashboard) {
      return this.refuse(session, 'too_many_subscriptions', `at most ${this.options.maxSubscriptionsPerDashboard} VINs per dashboard`, vin);
    }

    const subscription: Subscription = { vin, buffer: null };
    session.subscriptions.set(vin, subscription);
    this.watch(vin);
    const source = this.options.snapshots;
    if (isSync(source)) {
      // Same tick: the snapshot holds every record released so far, the topic every one after.
      session.client.send(snapshotMessage(source.snapshotNow(vin)));
      session.client.joinVin(vin);
      this.options.metrics.dashboardRequests.inc({ type: 'subscribe', result: 'ok' });
      return;
    }

    subscription.buffer = [];
    const entry = { session, subscription };
    let waiting = this.awaitingSnapshot.get(vin);
    if (waiting === undefined) this.awaitingSnapshot.set(vin, (waiting = new Set()));
    waiting.add(entry);
    let snapshot: VehicleSnapshot | null = null;
    try {
      snapshot = await source.snapshot(vin);
    } catch (error) {
      this.options.logger.warn({ vin, err: error }, 'dashboard_snapshot_failed');
    } finally {
      waiting.delete(entry);
      if (waiting.size === 0 && this.awaitingSnapshot.get(vin) === waiting) this.awaitingSnapshot.delete(vin);
    }
    const held = subscription.buffer;
    subscription.buffer = null;
    // Closed or unsubscribed while the snapshot was on its way: release() already undid the watch.
    if (session.closed || session.subscriptions.get(vin) !== subscription) return;
    if (snapshot === null) {
      this.release(session, vin);
      return this.refuse(session, 'snapshot_unavailable', 'the last-known state could not be read; try again', vin);
    }
    session.client.send(snapshotMessage(snapshot));
    const coveredUntil = snapshot.lastSeenAt ?? Number.NEGATIVE_INFINITY;
    for (const record of held) {
      if (record.receivedAt > coveredUntil) session.client.send(record.dashboardMessage);
    }
    session.client.joinVin(vin);
    this.options.metrics.dashboardRequests.inc({ type: 'subscribe', result: 'ok' });
  }

  private release(session: DashboardSession, vin: string): void {
    const subscription = session.subscriptions.get(vin);
    if (subscription === undefined) return;
    session.subscriptions.delete(vin);
    subscription.buffer = null;
    if (session.client.isOpen) session.client.leaveVin(vin);
    this.unwatch(vin);
  }

  private watch(vin: string): void {
    const count = this.watchers.get(vin) ?? 0;
    this.watchers.set(vin, count + 1);
    if (count === 0) {
      this.options.bus.watch(vin);
      this.options.metrics.dashboardWatchedVehicles.set(this.watchers.size);
    }
  }

  private unwatch(vin: string): void {
    const count = this.watchers.get(vin) ?? 0;
    if (count <= 1) {
      this.watchers.delete(vin);
      if (count === 1) this.options.bus.unwatch(vin);
      this.options.metrics.dashboardWatchedVehicles.set(this.watchers.size);
    } else {
      this.watchers.set(vin, count - 1);
    }
  }

  private refuse(session: DashboardSession, code: RequestError['code'], message: string, vin?: string): void {
    this.options.metrics.dashboardRequests.inc({ type: 'any', result: code });
    session.client.send(errorMessage(code, message, vin));
  }

  private vehiclesFor(grant: DashboardGrant): VehicleSummary[] {
    const directory = this.options.directory;
    if (grant.all) return directory.list(MAX_LISTED_VEHICLES);
    return [...grant.vins].sort().map((vin) => directory.summary(vin));
  }
}

function isSync(source: SnapshotSource): source is SyncSnapshotSource {
  return typeof (source as Partial<SyncSnapshotSource>).snapshotNow === 'function';
}
