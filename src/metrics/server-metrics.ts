import client from 'prom-client';
import { ActorMetrics } from '../actors/actor-metrics.js';
import { NatsMetrics } from '../bus/nats/nats-metrics.js';
import { DashboardMetrics } from '../dashboard/dashboard-metrics.js';
import { DecodeMetrics } from '../decode/decode-metrics.js';
import { HistoryMetrics } from '../history/history-metrics.js';
import { MqttMetrics } from '../mqtt/mqtt-metrics.js';
import { PostgresMetrics } from '../postgres/postgres-metrics.js';
import { SafetyMetrics } from '../safety/safety-metrics.js';
import { TeslaMetrics } from '../tesla/tesla-metrics.js';
import { TlsMetrics } from '../tls/tls-metrics.js';
import { VehicleMetrics } from '../vehicle/vehicle-metrics.js';
import { registerNodeMetrics } from './node-metrics.js';
import { PREFIX } from './series.js';

/**
 * Every stage's series on the one registry that /metrics serves. Each stage owns a class in its own
 * folder and gets only that; where a stage also counts a series another stage owns (a decode error
 * seen by the vehicle listener), the owner's series is handed to it here. Labels are bounded
 * enumerations only (topic, reason, kind, result): never a VIN, txid, IP or connection id, so
 * cardinality stays fixed however large the fleet.
 */
export class ServerMetrics {
  readonly registry: client.Registry;
  readonly safety: SafetyMetrics;
  readonly decode: DecodeMetrics;
  readonly vehicle: VehicleMetrics;
  readonly actors: ActorMetrics;
  readonly nats: NatsMetrics;
  readonly tesla: TeslaMetrics;
  readonly dashboard: DashboardMetrics;
  readonly mqtt: MqttMetrics;
  readonly tls: TlsMetrics;
  readonly history: HistoryMetrics;
  readonly postgres: PostgresMetrics;
  /** Series name -> the module that registers it (docs/METRICS.md says who owns what). */
  readonly owners: ReadonlyMap<string, string>;

  constructor(options: { registry?: client.Registry; collectDefaults?: boolean; version?: string } = {}) {
    const registry = options.registry ?? new client.Registry();
    this.registry = registry;
    const owners = new Map<string, string>();
    this.owners = owners;
    const owned = <T>(module: string, build: () => T): T => {
      const before = new Set(registry.getMetricsAsArray().map((metric) => metric.name));
      const stage = build();
      for (const metric of registry.getMetricsAsArray()) if (!before.has(metric.name)) owners.set(metric.name, module);
      return stage;
    };

    owned('src/metrics/server-metrics.ts', () => {
      if (options.collectDefaults !== false) registerNodeMetrics(registry, PREFIX);
      new client.Gauge({
        name: `${PREFIX}build_info`,
        help: 'Build information; the value is always 1.',
        labelNames: ['version', 'node_version'],
        registers: [registry],
      }).set({ version: options.version ?? '0.0.0', node_version: process.version }, 1);
    });
    this.safety = owned('src/safety/safety-metrics.ts', () => new SafetyMetrics(registry));
    this.decode = owned('src/decode/decode-metrics.ts', () => new DecodeMetrics(registry));
    this.vehicle = owned('src/vehicle/vehicle-metrics.ts', () => new VehicleMetrics(registry, { decodeErrors: this.decode.decodeErrors, handlerErrors: this.safety.handlerErrors }));
    this.actors = owned('src/actors/actor-metrics.ts', () => new ActorMetrics(registry, { decodeErrors: this.decode.decodeErrors, repliesDropped: this.vehicle.repliesDropped }));
    this.nats = owned('src/bus/nats/nats-metrics.ts', () => new NatsMetrics(registry, { decodeInternalErrors: this.decode.decodeInternalErrors }));
    this.tesla = owned('src/tesla/tesla-metrics.ts', () => new TeslaMetrics(registry));
    this.dashboard = owned('src/dashboard/dashboard-metrics.ts', () => new DashboardMetrics(registry, { handlerErrors: this.safety.handlerErrors, teslaTokenRefreshes: this.tesla.teslaTokenRefreshes }));
    this.mqtt = owned('src/mqtt/mqtt-metrics.ts', () => new MqttMetrics(registry));
    this.tls = owned('src/tls/tls-metrics.ts', () => new TlsMetrics(registry));
    this.history = owned('src/history/history-metrics.ts', () => new HistoryMetrics(registry));
    this.postgres = owned('src/postgres/postgres-metrics.ts', () => new PostgresMetrics(registry));
  }
}
