import type { VehicleRegistry } from '../actors/vehicle-registry.js';
import type { VehicleDirectory } from './dashboard-hub.js';
import type { VehicleSummary } from './dashboard-protocol.js';

/** The cars this instance holds actors for: connected ones, silent ones, and those configured in TESLA_VIN. */
export class RegistryDirectory implements VehicleDirectory {
  constructor(private readonly registry: VehicleRegistry) {}

  summary(vin: string): VehicleSummary {
    const actor = this.registry.get(vin);
    if (actor === undefined) return { vin, connected: false, stale: false, lastSeenAt: null };
    return { vin, connected: actor.connected, stale: actor.stale, lastSeenAt: actor.lastSeenAt };
  }

  list(limit: number): VehicleSummary[] {
    const vins = [...this.registry.all()].map((actor) => actor.vin).sort();
    return vins.slice(0, limit).map((vin) => this.summary(vin));
  }
}
