import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { RecordBus, SnapshotSource, VehicleSnapshot } from '../bus/record-bus.js';
import type { ConnectivityArbiter } from '../bus/vehicle-state.js';
import type { ActorMetrics } from './actor-metrics.js';
import { connectivityRecordJson, encodeConnectivity } from '../protocol/payload-encoder.js';
import { VehicleActor } from './vehicle-actor.js';
import type { VehicleConnection } from './vehicle-connection.js';

export interface WatchdogEvent {
  vin: string;
  event: 'stale' | 'fresh';
  /** Epoch ms the car was last heard from. */
  lastSeenAt: number;
}

export interface RegistryEvents {
  watchdog: [WatchdogEvent];
}

export interface RegistryOptions {
  bus: RecordBus;
  metrics: ActorMetrics;
  logger: Logger;
  staleAfterMs: number;
  /**
   * A device with no open connection and silent this long is dropped (actor, state), unless it is a
   * watched VIN: every certificate the CAs ever issued must not stay in memory for ever. 0 = never.
   */
  forgetAfterMs?: number;
  /** VINs the operator configured: watched for silence even before they first connect. */
  watchedVins?: readonly string[];
  now?: () => number;
  /** Several instances (NATS): decides VIN-level connectivity across them; absent = this process decides. */
  connectivity?: ConnectivityArbiter;
}

/** Most cars whose state one sweep compacts: about 2 ms of main thread at a few µs each. */
const COMPACT_PER_SWEEP = 500;

/**
 * The per-VIN actors. Connectivity is decided here, per VIN rather than per socket: a car that holds a
 * wifi and a cellular socket is CONNECTED once, when the first opens, and DISCONNECTED once, when the
 * last closes.
 */
export class VehicleRegistry extends EventEmitter<RegistryEvents> {
  private readonly actors = new Map<string, VehicleActor>();
  private readonly options: RegistryOptions;
  private readonly now: () => number;
  private connectedVins = 0;
  private openConnections = 0;
  private staleCount = 0;
  private readonly watched: ReadonlySet<string>;
  private lastSweepAt = Number.NEGATIVE_INFINITY;

  constructor(options: RegistryOptions) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.watched = new Set(options.watchedVins ?? []);
    for (const vin of this.watched) this.actorFor(vin);
  }

  get size(): number {
    return this.actors.size;
  }

  get(vin: string): VehicleActor | undefined {
    return this.actors.get(vin);
  }

  actorFor(vin: string): VehicleActor {
    let actor = this.actors.get(vin);
    if (actor === undefined) {
      actor = new VehicleActor(vin, this.options.bus, this.options.metrics, this.now());
      this.actors.set(vin, actor);
    }
    return actor;
  }

  connectionOpened(connection: VehicleConnection): VehicleActor {
    const actor = this.actorFor(connection.vin);
    // A new array of the exact length: nearly every car has one socket, for hours.
    actor.connections = actor.connections.concat(connection);
    this.openConnections++;
    this.options.metrics.vehicleConnections.set(this.openConnections);
    this.heardFrom(actor, this.now());
    if (actor.connections.length === 1) {
      this.connectedVins++;
      this.options.metrics.vehiclesConnected.set(this.connectedVins);
      if (this.options.connectivity === undefined) this.publishConnectivity(actor, connection, 'CONNECTED');
    }
    if (this.options.connectivity !== undefined) this.arbitrate(actor, connection, 'CONNECTED');
    return actor;
  }

  connectionClosed(connection: VehicleConnection): void {
    const actor = this.actors.get(connection.vin);
    if (actor === undefined) return;
    const index = actor.connections.indexOf(connection);
    if (index === -1) return;
    actor.connections.splice(index, 1);
    this.openConnections--;
    this.options.metrics.vehicleConnections.set(this.openConnections);
    if (actor.connections.length === 0) {
      this.connectedVins--;
      this.options.metrics.vehiclesConnected.set(this.connectedVins);
      if (this.options.connectivity === undefined) this.publishConnectivity(actor, connection, 'DISCONNECTED');
    }
    if (this.options.connectivity !== undefined) this.arbitrate(actor, connection, 'DISCONNECTED');
  }

  /** Called for every frame: cheap, because the watchdog sweeps rather than arming a timer per frame. */
  heardFrom(actor: VehicleActor, at: number): void {
    actor.lastSeenAt = at;
    if (actor.stale) this.markFresh(actor);
  }

  /**
   * One pass of the watchdog: every car silent past the threshold becomes stale once. A sweep every few
   * seconds costs O(cars) and avoids re-arming 10,000 timers per second.
   */
  sweepWatchdog(): void {
    const now = this.now();
    const deadline = now - this.options.staleAfterMs;
    const forgetAfterMs = this.options.forgetAfterMs ?? 0;
    const forgetBefore = forgetAfterMs > 0 ? now - forgetAfterMs : Number.NEGATIVE_INFINITY;
    // Last-known state is trimmed to its live bytes (VehicleActor.compactState) off the hot path, for a
    // car quiet since the previous sweep (an idle car keeps no spare room); a busy car's state pins no
    // record, and trimming it would only have its next record lay its bytes out again. At most
    // COMPACT_PER_SWEEP cars a sweep, so 10,000 cars going quiet together cost no long pause (the rest
    // are still quiet at a later sweep).
    let compactBudget = COMPACT_PER_SWEEP;
    const quietBefore = this.lastSweepAt;
    this.lastSweepAt = now;
    for (const actor of this.actors.values()) {
      if (compactBudget > 0 && actor.lastSeenAt <= quietBefore && actor.compactState()) compactBudget--;
      if (actor.connections.length === 0 && actor.lastSeenAt <= forgetBefore && !this.watched.has(actor.vin)) {
        // Deleting the entry being visited is safe for a Map iterator.
        this.actors.delete(actor.vin);
        if (actor.stale) {
          this.staleCount--;
          this.options.metrics.staleVehicles.set(this.staleCount);
        }
        continue;
      }
      if (!actor.stale && actor.lastSeenAt <= deadline) {
        actor.stale = true;
        this.staleCount++;
        this.options.metrics.staleVehicles.set(this.staleCount);
        this.options.metrics.watchdogEvents.inc({ event: 'stale' });
        this.options.logger.warn({ vin: actor.vin, lastSeenAt: new Date(actor.lastSeenAt).toISOString() }, 'vehicle_stale');
        this.emit('watchdog', { vin: actor.vin, event: 'stale', lastSeenAt: actor.lastSeenAt });
      }
    }
  }

  *all(): IterableIterator<VehicleActor> {
    yield* this.actors.values();
  }

  private markFresh(actor: VehicleActor): void {
    actor.stale = false;
    this.staleCount--;
    this.options.metrics.staleVehicles.set(this.staleCount);
    this.options.metrics.watchdogEvents.inc({ event: 'fresh' });
    this.options.logger.info({ vin: actor.vin }, 'vehicle_fresh');
    this.emit('watchdog', { vin: actor.vin, event: 'fresh', lastSeenAt: actor.lastSeenAt });
  }

  private arbitrate(actor: VehicleActor, connection: VehicleConnection, status: 'CONNECTED' | 'DISCONNECTED'): void {
    const arbiter = this.options.connectivity as ConnectivityArbiter;
    const decision = status === 'CONNECTED' ? arbiter.opened(actor.vin, connection.connectionId) : arbiter.closed(actor.vin, connection.connectionId);
    decision.then(
      (publish) => {
        if (publish) this.publishConnectivity(actor, connection, status);
      },
      (error: unknown) => this.options.logger.error({ err: error, vin: actor.vin, status }, 'vehicle_connectivity_undecided'),
    );
  }

  private publishConnectivity(
    actor: VehicleActor,
    connection: VehicleConnection,
    status: 'CONNECTED' | 'DISCONNECTED',
  ): void {
    const receivedAt = this.now();
    const record = {
      vin: actor.vin,
      connectionId: connection.connectionId,
      status,
      createdAt: new Date(receivedAt),
      networkInterface: connection.networkInterface,
    };
    const recordJson = connectivityRecordJson(record);
    this.options.logger.info({ vin: actor.vin, status, connectionId: connection.connectionId }, 'vehicle_connectivity');
    actor.publishServerRecord({
      vin: actor.vin,
      topic: 'connectivity',
      txid: `${connection.connectionId}-${status.toLowerCase()}`,
      receivedAt,
      recordJson,
      // Framed by the dashboard stage when a dashboard watches the VIN (dashboardMessageOf).
      dashboardMessage: '',
      payload: encodeConnectivity(record),
    });
    this.options.metrics.records.inc({ topic: 'connectivity' });
  }
}

/** Snapshots from the local actors: complete whenever every car connects to this one process. */
export class LocalSnapshotSource implements SnapshotSource {
  constructor(private readonly registry: VehicleRegistry) {}

  async snapshot(vin: string): Promise<VehicleSnapshot> {
    return this.snapshotNow(vin);
  }

  /** Synchronous, so a hub can take the snapshot and subscribe in the same tick and miss nothing. */
  snapshotNow(vin: string): VehicleSnapshot {
    const actor = this.registry.get(vin);
    if (actor === undefined) return { vin, connected: false, state: new Map(), lastSeenAt: null, stale: false };
    return { vin, connected: actor.connected, state: actor.state, lastSeenAt: actor.lastSeenAt, stale: actor.stale };
  }
}
