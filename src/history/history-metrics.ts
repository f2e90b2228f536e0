import client from 'prom-client';
import type { ChargingSession, Trip } from './car-activity.js';
import { PREFIX } from '../metrics/series.js';

interface HistorySizes {
  readonly carCount: number;
  readonly bytes: number;
}

/**
 * Trips, charging sessions and the recent-history store. No VIN label: fleet totals only (a
 * per-car view is what the history request and the PostgreSQL sink are for).
 */
export class HistoryMetrics {
  readonly trips: client.Counter;
  readonly tripDistance: client.Counter;
  readonly tripEnergy: client.Counter;
  readonly charges: client.Counter<'current'>;
  readonly chargeEnergy: client.Counter<'current'>;
  readonly samples: client.Counter;
  readonly streamReadSeconds: client.Histogram;
  private sizes: HistorySizes | null = null;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.trips = new client.Counter({ name: `${PREFIX}trips_total`, help: 'Trips that ended (gear back in P), derived from the records this instance published.', registers: r });
    this.tripDistance = new client.Counter({ name: `${PREFIX}trip_distance_metres_total`, help: 'Distance of ended trips, metres.', registers: r });
    this.tripEnergy = new client.Counter({ name: `${PREFIX}trip_energy_kwh_total`, help: 'Pack energy used by ended trips, kWh (trips of cars that send PackVoltage and PackCurrent).', registers: r });
    this.charges = new client.Counter({ name: `${PREFIX}charging_sessions_total`, help: 'Charging sessions that ended, by current (AC, DC).', labelNames: ['current'], registers: r });
    this.chargeEnergy = new client.Counter({ name: `${PREFIX}charging_energy_kwh_total`, help: 'Energy added by ended charging sessions, kWh, by current (AC, DC).', labelNames: ['current'], registers: r });
    this.samples = new client.Counter({ name: `${PREFIX}history_records_total`, help: 'Vehicle-data records folded into the recent history.', registers: r });
    this.streamReadSeconds = new client.Histogram({
      name: `${PREFIX}history_stream_read_duration_seconds`,
      help: "NATS mode: reading one car's history window back from the stream.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    });
    for (const current of ['AC', 'DC']) {
      this.charges.inc({ current }, 0);
      this.chargeEnergy.inc({ current }, 0);
    }
    const sizes = (): HistorySizes | null => this.sizes;
    new client.Gauge({
      name: `${PREFIX}history_memory_bytes`,
      help: 'Bytes of typed arrays and tracks the recent history holds.',
      registers: r,
      collect() {
        this.set(sizes()?.bytes ?? 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}history_vehicles_held`,
      help: 'Cars with recent history held in memory.',
      registers: r,
      collect() {
        this.set(sizes()?.carCount ?? 0);
      },
    });
  }

  collectFrom(sizes: HistorySizes): void {
    this.sizes = sizes;
  }

  tripEnded(trip: Trip): void {
    this.trips.inc();
    this.tripDistance.inc(trip.distanceKm * 1000);
    if (trip.energyUsedKwh !== null && trip.energyUsedKwh > 0) this.tripEnergy.inc(trip.energyUsedKwh);
  }

  chargeEnded(session: ChargingSession): void {
    this.charges.inc({ current: session.current });
    if (session.energyAddedKwh > 0) this.chargeEnergy.inc({ current: session.current }, session.energyAddedKwh);
  }
}
