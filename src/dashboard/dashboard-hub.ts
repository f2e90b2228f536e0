import type { Logger } from 'pino';
import type { BusRecord, RecordBus, SnapshotSource, VehicleSnapshot } from '../bus/record-bus.js';
import type { WatchdogEvent } from '../actors/vehicle-registry.js';
import type { DashboardMetrics } from './dashboard-metrics.js';
import type { RecentHistory } from '../history/recent-history.js';
import { answerHistory, answerTrip } from '../history/history-requests.js';
import type { HistoryRequest, TripRequest } from '../history/history-protocol.js';
import { dashboardMessageOf } from './dashboard-protocol.js';
import { VIN_PATTERN, type DashboardGrant } from './dashboard-grant.js';
import { RecordCoverage } from './record-coverage.js';
import { VinSubscription } from './vin-subscription.js';
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
  /**
   * The same for a message already in UTF-8 (a record's message as the decode stage wrote it): uWS
   * sends bytes as they are, where a string is copied to UTF-8 again on every publish. Absent: the
   * hub sends the text. `text` is the same message as a string, for what must read it (location filter).
   */
  publishBytes?(vin: string, message: Uint8Array, text: string): void;
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

type Replay = NonNullable<RecordBus['replay']>;

export class DashboardSession {
  readonly subscriptions = new Map<string, VinSubscription>();
  /**
   * Requests are handled one after another, so an unsubscribe never overtakes its subscribe. The chain
   * waits for each request to settle, not to succeed: one that fails must not silence the rest.
   */
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
  metrics: DashboardMetrics;
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
  /**
   * Longest one step of a request may take: one VIN of a subscribe (grant refresh, snapshot, replay),
   * or one history / trip answer. Requests of a socket run one after another, so a step that never
   * settles (a shared store that stopped answering) would otherwise hold that dashboard's queue for
   * ever. Past it the dashboard gets `request_timeout`, the step's VIN is released, and the queue moves
   * on. The default leaves room for the slowest honest step: Tesla's vehicle list on a token refresh
   * (15 s timeout) followed by a snapshot read and a full replay.
   */
  maxRequestStepMs?: number;
}

/** One step of a request being handled; `overran` once it took longer than maxRequestStepMs. */
interface RequestStep {
  overran: boolean;
}

/** Most cars listed in a hello / vehicles message for a `*` token. */
export const MAX_LISTED_VEHICLES = 1000;
export const CLOSE_TOO_SLOW = 4008;

/**
 * Between the bus and the dashboards. Records of a VIN go out once per VIN through the publisher (the
 * prebuilt `dashboardMessage`), and only for VINs some dashboard watches. A subscribe sends the snapshot
 * and joins the VIN's topic with nothing lost or repeated between them (one VinSubscription each, see
 * its states):
 *  - with a synchronous source (the local actors) both happen in the same tick, so every record is
 *    either folded into the snapshot or published after the join;
 *  - with an async source (a shared store) the hub holds the VIN's records for that dashboard while the
 *    snapshot is fetched, then sends the snapshot and the held records it does not cover, and joins the
 *    topic (RecordCoverage: by stream sequence on NATS, where a covered record may still arrive after
 *    the snapshot and the join waits for the first one past it; else by the snapshot's `lastSeenAt`);
 *  - with `since` on a bus that keeps history, the replayed records follow the snapshot while live
 *    records are still held, then a `history` message, then the held records not replayed.
 * The bus is asked to watch a VIN while at least one dashboard here wants it, and before the snapshot
 * is taken, so a multi-instance bus starts forwarding before the snapshot is read.
 */
export class DashboardHub {
  private readonly options: Required<DashboardHubOptions>;
  private readonly watchers = new Map<string, number>();
  /** Subscriptions not on their VIN's topic yet (holding its records, or joining): they see every record first. */
  private readonly pending = new Map<string, Set<VinSubscription>>();
  private unsubscribeBus: (() => void) | null = null;
  private readonly sessions = new Set<DashboardSession>();

  constructor(options: DashboardHubOptions) {
    this.options = {
      maxSubscriptionsPerDashboard: 200,
      maxBufferedRecords: 10_000,
      maxReplayRecords: 10_000,
      maxReplayBytes: 2 * 1024 * 1024,
      maxReplaysPerMinute: 30,
      maxRequestStepMs: 30_000,
      now: Date.now,
      history: null,
      ...options,
    };
  }

  start(): void {
    // Done with each record when onRecord returns, except those a subscription holds (VinSubscription.offer).
    this.unsubscribeBus ??= this.options.bus.subscribe((record) => this.onRecord(record), { holdsRecords: true });
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

  /**
   * One text frame from a dashboard. Rejects when handling failed (a bug, for the caller to report);
   * the session's later requests are still served.
   */
  received(session: DashboardSession, text: string): Promise<void> {
    const handled = session.queue.then(() => this.handle(session, text));
    session.queue = handled.catch(() => undefined);
    return handled;
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
    for (const subscription of this.pending.get(event.vin) ?? []) if (subscription.joining) subscription.client.send(message);
    this.options.publisher.publish(event.vin, message);
  }

  private onRecord(record: BusRecord): void {
    if (!this.watchers.has(record.vin)) return;
    const pending = this.pending.get(record.vin);
    if (pending !== undefined) this.offerPending(pending, record);
    const publisher = this.options.publisher;
    if (record.dashboardBytes !== undefined && publisher.publishBytes !== undefined) publisher.publishBytes(record.vin, record.dashboardBytes, dashboardMessageOf(record));
    else publisher.publish(record.vin, dashboardMessageOf(record));
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
      case 'trip':
        return this.bounded(session, request.type, request.vin, (step) => this.answer(session, request, step));
      case 'subscribe':
        for (const vin of request.vins) {
          if (session.closed) return;
          await this.bounded(session, 'subscribe', vin, (step) => this.subscribe(session, vin, request.since, step));
        }
        return;
    }
  }

  /**
   * Runs one step of a request within maxRequestStepMs. A step that overruns is answered with
   * `request_timeout` and its VIN released (a subscription it was opening is let go; an answer it
   * finds later is not sent); the step itself learns through `step.overran` and stops at its next
   * check. A step that throws in time rejects as before (a bug, for the caller to report).
   */
  private async bounded(session: DashboardSession, type: string, vin: string, run: (step: RequestStep) => Promise<void>): Promise<void> {
    const step: RequestStep = { overran: false };
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<'overran'>((resolve) => {
      timer = setTimeout(() => resolve('overran'), this.options.maxRequestStepMs);
      // A step still running at shutdown must not hold the process open for its limit.
      timer.unref();
    });
    const work = run(step);
    // A step that fails after it was given up on has no caller left: it is reported here.
    work.catch((error: unknown) => {
      if (step.overran) this.options.logger.error({ err: error, type }, 'dashboard_request_failed_after_timeout');
    });
    try {
      if ((await Promise.race([work.then(() => 'done' as const), limit])) === 'done') return;
    } finally {
      clearTimeout(timer);
    }
    step.overran = true;
    this.options.logger.warn({ type, limitMs: this.options.maxRequestStepMs }, 'dashboard_request_timeout');
    const subscription = session.subscriptions.get(vin);
    if (type === 'subscribe' && subscription !== undefined && (subscription.state === 'awaiting_snapshot' || subscription.state === 'replaying')) {
      this.release(session, vin);
    }
    if (!session.closed) {
      this.refuse(session, 'request_timeout', `no answer within ${this.options.maxRequestStepMs} ms; ask again`, vin);
    }
  }

  private async answer(session: DashboardSession, request: HistoryRequest | TripRequest, step: RequestStep): Promise<void> {
    if (!VIN_PATTERN.test(request.vin)) return this.refuse(session, 'invalid_vin', 'not a VIN', request.vin);
    // The same grant check as subscribe: nothing of a car the token does not allow.
    const allowed = session.grant.allows(request.vin) || (await session.grant.allowsAfterRefresh(request.vin));
    if (session.closed || step.overran) return;
    if (!allowed) return this.refuse(session, 'forbidden_vin', 'this token does not allow that VIN', request.vin);
    const history = this.options.history;
    if (history === null) return this.refuse(session, 'history_unavailable', 'this server keeps no recent history (HISTORY_ENABLED=false)', request.vin);
    const answer = request.type === 'history' ? await answerHistory(history, request, this.options.logger) : await answerTrip(history, request, this.options.logger);
    if (session.closed || step.overran) return;
    if (typeof answer !== 'string') return this.refuse(session, answer.code, answer.message, request.vin);
    session.client.send(answer);
    this.options.metrics.dashboardRequests.inc({ type: request.type, result: 'ok' });
  }

  private async subscribe(session: DashboardSession, vin: string, since: number | null, step: RequestStep): Promise<void> {
    if (!VIN_PATTERN.test(vin)) return this.refuse(session, 'invalid_vin', 'not a VIN', vin);
    if (session.subscriptions.has(vin)) return;
    const allowed = session.grant.allows(vin) || (await session.grant.allowsAfterRefresh(vin));
    if (session.closed || step.overran) return;
    if (!allowed) return this.refuse(session, 'forbidden_vin', 'this token does not allow that VIN', vin);
    if (session.subscriptions.size >= this.options.maxSubscriptionsPerDashboard) {
      return this.refuse(session, 'too_many_subscriptions', `at most ${this.options.maxSubscriptionsPerDashboard} VINs per dashboard`, vin);
    }

    const subscription = new VinSubscription(vin, session.client, this.options.maxBufferedRecords);
    session.subscriptions.set(vin, subscription);
    this.watch(vin);
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
    try {
      await this.open(session, subscription, replay === undefined || since === null ? null : { replay, since });
    } catch (error) {
      // A bug, not a refusal: nothing of this subscription may stay watched or held. The caller reports it.
      if (session.subscriptions.get(vin) === subscription) this.release(session, vin);
      throw error;
    }
  }

  /** Snapshot, history, held records, join: the subscription's way from awaiting_snapshot to live. */
  private async open(session: DashboardSession, subscription: VinSubscription, history: { replay: Replay; since: number } | null): Promise<void> {
    const vin = subscription.vin;
    const source = this.options.snapshots;
    if (history === null && isSync(source)) {
      // Same tick: the snapshot holds every record released so far, the topic every one after.
      subscription.joinWith(snapshotMessage(source.snapshotNow(vin)));
      this.options.metrics.dashboardRequests.inc({ type: 'subscribe', result: 'ok' });
      return;
    }

    // From here the VIN's records are held for this dashboard until snapshot (and history) are out.
    addTo(this.pending, vin, subscription);
    let snapshot: VehicleSnapshot | null = null;
    let coverage: RecordCoverage;
    if (isSync(source)) {
      // Taken with nothing held yet: every held record comes after it.
      snapshot = source.snapshotNow(vin);
      coverage = RecordCoverage.none();
    } else {
      try {
        snapshot = await source.snapshot(vin);
      } catch (error) {
        this.options.logger.warn({ vin, err: error }, 'dashboard_snapshot_failed');
      }
      if (!subscription.active) return;
      if (snapshot === null) {
        this.release(session, vin);
        return this.refuse(session, 'snapshot_unavailable', 'the last-known state could not be read; try again', vin);
      }
      coverage = RecordCoverage.ofSnapshot(snapshot);
    }
    subscription.snapshotSent(snapshotMessage(snapshot), coverage);

    if (history !== null) {
      subscription.startReplay();
      await this.replayHistory(session, subscription, history.replay, history.since);
      if (!subscription.active) return;
    }

    if (subscription.catchUp(dashboardMessageOf)) removeFrom(this.pending, vin, subscription);
    this.options.metrics.dashboardRequests.inc({ type: 'subscribe', result: 'ok' });
  }

  /** Records since `since`, up to the replay limits, then a `history` message (or an error when the read failed). */
  private async replayHistory(session: DashboardSession, subscription: VinSubscription, replay: Replay, since: number): Promise<void> {
    const vin = subscription.vin;
    const { maxReplayRecords, maxReplayBytes } = this.options;
    let records = 0;
    let bytes = 0;
    let truncated = false;
    // A throw of ours while sending a replayed record is a bug, not a history the bus could not read:
    // it stops the replay and goes up as one, instead of becoming a `history_failed` reply.
    const ours: { error?: unknown; thrown: boolean } = { thrown: false };
    try {
      await replay(vin, since, (record) => {
        if (!subscription.active) return false;
        try {
          const message = dashboardMessageOf(record);
          // The limit is what the socket buffers: UTF-8 bytes, not UTF-16 code units.
          const size = Buffer.byteLength(message, 'utf8');
          if (records >= maxReplayRecords || bytes + size > maxReplayBytes) {
            truncated = true;
            return false;
          }
          subscription.replayed(record, message);
          records++;
          bytes += size;
          return true;
        } catch (error) {
          ours.error = error;
          ours.thrown = true;
          return false;
        }
      });
    } catch (error) {
      if (!ours.thrown) {
        this.options.logger.warn({ vin, err: error }, 'dashboard_history_failed');
        if (subscription.active) this.refuse(session, 'history_failed', 'the history could not be read; live records follow', vin);
        return;
      }
    }
    if (ours.thrown) throw ours.error;
    if (subscription.active) session.client.send(historyMessage(vin, since, records, truncated));
  }

  /** A record of a VIN some subscriptions are not live on yet: each holds it, drops it, or joins on it. */
  private offerPending(pending: Set<VinSubscription>, record: BusRecord): void {
    for (const subscription of pending) {
      switch (subscription.offer(record)) {
        case 'overflow':
          this.options.metrics.dashboardsDropped.inc({ reason: 'slow_consumer' });
          subscription.client.close(CLOSE_TOO_SLOW, 'too many records while the snapshot was fetched');
          break;
        case 'joined':
          // The first record the dashboard does not have: the publish that follows delivers it.
          pending.delete(subscription);
          break;
        case 'held':
        case 'covered':
        case 'ignored':
          break;
      }
    }
    if (pending.size === 0) this.pending.delete(record.vin);
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
    removeFrom(this.pending, vin, subscription);
    subscription.release();
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

function addTo(map: Map<string, Set<VinSubscription>>, vin: string, subscription: VinSubscription): void {
  let set = map.get(vin);
  if (set === undefined) map.set(vin, (set = new Set()));
  set.add(subscription);
}

function removeFrom(map: Map<string, Set<VinSubscription>>, vin: string, subscription: VinSubscription): void {
  const set = map.get(vin);
  if (set === undefined) return;
  set.delete(subscription);
  if (set.size === 0) map.delete(vin);
}

function isSync(source: SnapshotSource): source is SyncSnapshotSource {
  return typeof (source as Partial<SyncSnapshotSource>).snapshotNow === 'function';
}
