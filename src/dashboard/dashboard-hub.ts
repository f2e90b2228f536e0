import type { Logger } from 'pino';
import type { BusRecord, RecordBus, SnapshotSource, VehicleSnapshot } from '../bus/record-bus.js';
import type { WatchdogEvent } from '../actors/vehicle-registry.js';
import type { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import type { RecentHistory } from '../history/recent-history.js';
import { answerHistory, answerTrip } from '../history/history-requests.js';
import { dashboardMessageOf } from './dashboard-protocol.js';
import { VIN_PATTERN, type DashboardGrant } from './dashboard-grant.js';
import {
  RequestError,
  errorMessage,
  helloMessage,
  historyMessage,
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
  session: DashboardSession;
  /** Records that arrived while an async snapshot (or history) was being fetched; null once sent. */
  buffer: BusRecord[] | null;
  /**
   * Not yet on the live topic: the dashboard already has every record up to this stream sequence (in
   * its snapshot or history), and joins at the first record past it. A bus can deliver such records
   * after the snapshot was read (JetStream delivers to different consumers at different paces).
   */
  after: number | null;
}

export class DashboardSession {
  readonly subscriptions = new Map<string, Subscription>();
  /** Requests are handled one after another, so an unsubscribe never overtakes its subscribe. */
  queue: Promise<void> = Promise.resolve();
  closed = false;
  /** History replays this socket may still start (refilled over a minute, see DashboardHub.takeReplay). */
  replayTokens = Number.NaN;
  replayRefilledAt = 0;

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
  /**
   * Most records and bytes one `since` replay sends; past either the history is cut short (and says
   * so). Bytes should stay well under the socket's backpressure allowance: a replay is sent at once.
   */
  maxReplayRecords?: number;
  maxReplayBytes?: number;
  /** Replays one socket may start per minute, in bursts up to the same number (DASHBOARD_MAX_REPLAYS_PER_MINUTE). */
  maxReplaysPerMinute?: number;
  now?: () => number;
  /** The recent history behind `history` and `trip` requests; null when the server keeps none. */
  history?: RecentHistory | null;
}

/** Most cars listed in a hello / vehicles message for a `*` token. */
export const MAX_LISTED_VEHICLES = 1000;
export const CLOSE_TOO_SLOW = 4008;

/**
 * Between the bus and the dashboards. Records of a VIN go out once per VIN through the publisher (the
 * prebuilt `dashboardMessage`), and only for VINs some dashboard watches. A subscribe sends the snapshot
 * and joins the VIN's topic with nothing lost or repeated between them:
 *  - with a synchronous source (the local actors) both happen in the same tick, so every record is
 *    either folded into the snapshot or published after the join;
 *  - with an async source (a shared store) the hub holds the VIN's records for that dashboard while the
 *    snapshot is fetched, then sends the snapshot and the held records it does not cover. A snapshot
 *    with `coveredSeq` (NATS) covers records up to that stream sequence, and the dashboard joins the
 *    topic at the first record past it (a record it covers may still arrive after the snapshot);
 *    otherwise held records up to the snapshot's `lastSeenAt` are covered and it joins at once;
 *  - with `since` on a bus that keeps history, the replayed records follow the snapshot while live
 *    records are still held, then a `history` message, then the held records not replayed.
 * The bus is asked to watch a VIN while at least one dashboard here wants it, and before the snapshot
 * is taken, so a multi-instance bus starts forwarding before the snapshot is read.
 */
export class DashboardHub {
  private readonly options: Required<DashboardHubOptions>;
  private readonly watchers = new Map<string, number>();
  private readonly awaitingSnapshot = new Map<string, Set<Subscription>>();
  private readonly awaitingNewer = new Map<string, Set<Subscription>>();
  private unsubscribeBus: (() => void) | null = null;
  private readonly sessions = new Set<DashboardSession>();

  constructor(options: DashboardHubOptions) {
    this.options = {
      maxSubscriptionsPerDashboard: 200,
      maxBufferedRecords: 10_000,
      maxReplayRecords: 10_000,
      maxReplayBytes: 2 * 1024 * 1024,
      maxReplaysPerMinute: 30,
      now: Date.now,
      history: null,
      ...options,
    };
  }

  start(): void {
    this.unsubscribeBus ??= this.options.bus.subscribe((record) => this.onRecord(record));
  }

  stop(): void {
    this.unsubscribeBus?.();
    this.unsubscribeBus = null;
  }

  /** Some dashboard here watches `vin` (or is subscribing to it): its records need dashboard messages. */
  isWatching(vin: string): boolean {
    return this.watchers.has(vin);
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
    const message = watchdogMessage(event.vin, event.event, event.lastSeenAt);
    // Off the topic until the next record, but a car going quiet is exactly what they should hear.
    for (const subscription of this.awaitingNewer.get(event.vin) ?? []) subscription.session.client.send(message);
    this.options.publisher.publish(event.vin, message);
  }

  private onRecord(record: BusRecord): void {
    if (!this.watchers.has(record.vin)) return;
    const waiting = this.awaitingSnapshot.get(record.vin);
    if (waiting !== undefined) {
      for (const subscription of waiting) {
        const buffer = subscription.buffer;
        if (buffer === null) continue;
        if (buffer.length >= this.options.maxBufferedRecords) {
          this.options.metrics.dashboardsDropped.inc({ reason: 'slow_consumer' });
          subscription.session.client.close(CLOSE_TOO_SLOW, 'too many records while the snapshot was fetched');
          continue;
        }
        buffer.push(record);
      }
    }
    const joining = this.awaitingNewer.get(record.vin);
    if (joining !== undefined) {
      for (const subscription of joining) {
        const after = subscription.after;
        if (after !== null && record.streamSeq !== undefined && record.streamSeq <= after) continue;
        // The first record the dashboard does not have: joined now, the publish below delivers it.
        joining.delete(subscription);
        subscription.after = null;
        subscription.session.client.joinVin(record.vin);
      }
      if (joining.size === 0) this.awaitingNewer.delete(record.vin);
    }
    this.options.publisher.publish(record.vin, dashboardMessageOf(record));
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
      case 'history':
      case 'trip': {
        if (!VIN_PATTERN.test(request.vin)) return this.refuse(session, 'invalid_vin', 'not a VIN', request.vin);
        // The same grant check as subscribe: nothing of a car the token does not allow.
        const allowed = session.grant.allows(request.vin) || (await session.grant.allowsAfterRefresh(request.vin));
        if (session.closed) return;
        if (!allowed) return this.refuse(session, 'forbidden_vin', 'this token does not allow that VIN', request.vin);
        const history = this.options.history;
        if (history === null) return this.refuse(session, 'history_unavailable', 'this server keeps no recent history (HISTORY_ENABLED=false)', request.vin);
        const answer = request.type === 'history' ? await answerHistory(history, request, this.options.logger) : await answerTrip(history, request, this.options.logger);
        if (session.closed) return;
        if (typeof answer !== 'string') return this.refuse(session, answer.code, answer.message, request.vin);
        session.client.send(answer);
        this.options.metrics.dashboardRequests.inc({ type: request.type, result: 'ok' });
        return;
      }
      case 'subscribe':
        for (const vin of request.vins) {
          if (session.closed) return;
          await this.subscribe(session, vin, request.since);
        }
        return;
    }
  }

  private async subscribe(session: DashboardSession, vin: string, since: number | null): Promise<void> {
    if (!VIN_PATTERN.test(vin)) return this.refuse(session, 'invalid_vin', 'not a VIN', vin);
    if (session.subscriptions.has(vin)) return;
    const allowed = session.grant.allows(vin) || (await session.grant.allowsAfterRefresh(vin));
    if (session.closed) return;
    if (!allowed) return this.refuse(session, 'forbidden_vin', 'this token does not allow that VIN', vin);
    if (session.subscriptions.size >= this.options.maxSubscriptionsPerDashboard) {
      return this.refuse(session, 'too_many_subscriptions', `at most ${this.options.maxSubscriptionsPerDashboard} VINs per dashboard`, vin);
    }

    const subscription: Subscription = { vin, session, buffer: null, after: null };
    session.subscriptions.set(vin, subscription);
    this.watch(vin);
    const source = this.options.snapshots;
    let replay = since === null ? undefined : this.options.bus.replay?.bind(this.options.bus);
    if (since !== null && replay === undefined) {
      this.refuse(session, 'history_unavailable', 'this server keeps no history (it runs without NATS); the snapshot and live records follow', vin);
    }
    if (replay !== undefined && !this.takeReplay(session)) {
      // Each replay reads the stream and sends up to maxReplayBytes: one socket asking in a loop would
      // monopolise both. The subscription itself goes ahead, without history.
      replay = undefined;
      this.refuse(session, 'too_many_replays', `at most ${this.options.maxReplaysPerMinute} history replays a minute per dashboard; the snapshot and live records follow`, vin);
    }
    if (replay === undefined && isSync(source)) {
      // Same tick: the snapshot holds every record released so far, the topic every one after.
      session.client.send(snapshotMessage(source.snapshotNow(vin)));
      session.client.joinVin(vin);
      this.options.metrics.dashboardRequests.inc({ type: 'subscribe', result: 'ok' });
      return;
    }

    // From here the VIN's records are held for this dashboard until snapshot (and history) are out.
    subscription.buffer = [];
    addTo(this.awaitingSnapshot, vin, subscription);
    /** Held records the dashboard already has: by stream sequence, replayed identity, or time. */
    let seqCut: number | null = null;
    let timeCut: number | null = null;
    const replayedWithoutSeq = new Set<string>();
    try {
      let snapshot: VehicleSnapshot | null = null;
      if (isSync(source)) {
        // Taken with an empty buffer: every held record comes after it.
        snapshot = source.snapshotNow(vin);
      } else {
        try {
          snapshot = await source.snapshot(vin);
        } catch (error) {
          this.options.logger.warn({ vin, err: error }, 'dashboard_snapshot_failed');
        }
        if (snapshot !== null) {
          if (snapshot.coveredSeq !== undefined) seqCut = snapshot.coveredSeq;
          else timeCut = snapshot.lastSeenAt ?? Number.NEGATIVE_INFINITY;
        }
      }
      if (!stillWanted(subscription)) return;
      if (snapshot === null) {
        this.release(session, vin);
        return this.refuse(session, 'snapshot_unavailable', 'the last-known state could not be read; try again', vin);
      }
      session.client.send(snapshotMessage(snapshot));

      if (replay !== undefined && since !== null) {
        const { maxReplayRecords, maxReplayBytes } = this.options;
        let records = 0;
        let bytes = 0;
        let truncated = false;
        let failed = false;
        try {
          await replay(vin, since, (record) => {
            if (!stillWanted(subscription)) return false;
            // The limit is what the socket buffers: UTF-8 bytes, not UTF-16 code units.
            const size = Buffer.byteLength(dashboardMessageOf(record), 'utf8');
            if (records >= maxReplayRecords || bytes + size > maxReplayBytes) {
              truncated = true;
              return false;
            }
            session.client.send(dashboardMessageOf(record));
            records++;
            bytes += size;
            if (record.streamSeq !== undefined) seqCut = Math.max(seqCut ?? 0, record.streamSeq);
            else replayedWithoutSeq.add(recordKey(record));
            return true;
          });
        } catch (error) {
          failed = true;
          this.options.logger.warn({ vin, err: error }, 'dashboard_history_failed');
        }
        if (!stillWanted(subscription)) return;
        if (failed) this.refuse(session, 'history_failed', 'the history could not be read; live records follow', vin);
        else session.client.send(historyMessage(vin, since, records, truncated));
      }
    } finally {
      removeFrom(this.awaitingSnapshot, vin, subscription);
    }

    const held = subscription.buffer ?? [];
    subscription.buffer = null;
    // Closed or unsubscribed meanwhile: release() already undid the watch.
    if (!stillWanted(subscription)) return;
    let passedCut = false;
    for (const record of held) {
      const covered =
        record.streamSeq !== undefined && seqCut !== null
          ? record.streamSeq <= seqCut
          : replayedWithoutSeq.has(recordKey(record)) || (timeCut !== null && record.receivedAt <= timeCut);
      if (covered) continue;
      session.client.send(dashboardMessageOf(record));
      passedCut = true;
    }
    if (seqCut === null || passedCut) {
      session.client.joinVin(vin);
    } else {
      // Records up to seqCut may still be on their way here: join at the first one past it.
      subscription.after = seqCut;
      addTo(this.awaitingNewer, vin, subscription);
    }
    this.options.metrics.dashboardRequests.inc({ type: 'subscribe', result: 'ok' });
  }

  /** Spends one of the socket's replays; false when it has used its minute's worth. */
  private takeReplay(session: DashboardSession): boolean {
    const perMinute = this.options.maxReplaysPerMinute;
    const now = this.options.now();
    if (Number.isNaN(session.replayTokens)) {
      session.replayTokens = perMinute;
    } else if (now > session.replayRefilledAt) {
      session.replayTokens = Math.min(perMinute, session.replayTokens + ((now - session.replayRefilledAt) * perMinute) / 60_000);
    }
    session.replayRefilledAt = now;
    if (session.replayTokens < 1) return false;
    session.replayTokens -= 1;
    return true;
  }

  private release(session: DashboardSession, vin: string): void {
    const subscription = session.subscriptions.get(vin);
    if (subscription === undefined) return;
    session.subscriptions.delete(vin);
    subscription.buffer = null;
    subscription.after = null;
    removeFrom(this.awaitingNewer, vin, subscription);
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

function stillWanted(subscription: Subscription): boolean {
  const session = subscription.session;
  return !session.closed && session.subscriptions.get(subscription.vin) === subscription;
}

function recordKey(record: BusRecord): string {
  return `${record.topic}\u0000${record.txid}`;
}

function addTo(map: Map<string, Set<Subscription>>, vin: string, subscription: Subscription): void {
  let set = map.get(vin);
  if (set === undefined) map.set(vin, (set = new Set()));
  set.add(subscription);
}

function removeFrom(map: Map<string, Set<Subscription>>, vin: string, subscription: Subscription): void {
  const set = map.get(vin);
  if (set === undefined) return;
  set.delete(subscription);
  if (set.size === 0) map.delete(vin);
}

function isSync(source: SnapshotSource): source is SyncSnapshotSource {
  return typeof (source as Partial<SyncSnapshotSource>).snapshotNow === 'function';
}
