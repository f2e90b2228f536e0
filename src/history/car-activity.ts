import {
  CHARGING_CODES, GEAR_CODES, ROW_AC_CHARGING_POWER, ROW_CHARGING, ROW_DC_CHARGING_POWER, ROW_FAST_CHARGER, ROW_GEAR, ROW_LATITUDE, ROW_LONGITUDE,
  ROW_ODOMETER, ROW_PACK_CURRENT, ROW_PACK_VOLTAGE, ROW_SOC, ROW_SPEED,
} from './signal-sample.js';
import { KeptList } from './kept-list.js';

const KM_PER_MILE = 1.609344;
/** A gap longer than this between two samples adds no energy (the car was not heard from). */
const MAX_INTEGRATION_GAP_MS = 60_000;
const PARK = GEAR_CODES.ShiftStateP;
/** The charge states of a session under way. */
const CHARGING_STARTING = CHARGING_CODES.DetailedChargeStateStarting!;
const CHARGING_CHARGING = CHARGING_CODES.DetailedChargeStateCharging!;

export interface Place {
  latitude: number;
  longitude: number;
}

export interface Trip {
  id: string;
  startAt: number;
  endAt: number;
  durationSeconds: number;
  /** From the odometer when the car sends it, else from the track. */
  distanceKm: number;
  /** Pack energy out (PackVoltage x PackCurrent) over the trip; null when the car does not send both. */
  energyUsedKwh: number | null;
  /** Wh per km; null without energy or distance. */
  efficiencyWhPerKm: number | null;
  maxSpeedKmh: number | null;
  startSoc: number | null;
  endSoc: number | null;
  startPlace: Place | null;
  endPlace: Place | null;
  /** [epoch seconds, latitude, longitude] triples, thinned to a bounded count. */
  track: number[];
}

export interface ChargingSession {
  id: string;
  startAt: number;
  endAt: number;
  durationSeconds: number;
  energyAddedKwh: number;
  peakPowerKw: number;
  averagePowerKw: number;
  current: 'AC' | 'DC';
  startSoc: number | null;
  endSoc: number | null;
  place: Place | null;
}

export interface ActivityLimits {
  /** Finished trips and sessions are dropped when they ended longer ago than this, ms. */
  windowMs: number;
  /** Most finished trips (and, separately, sessions) kept per car. */
  maxKept: number;
  /** Most track points kept per trip; past it every other point goes and the spacing doubles. */
  maxTrackPoints: number;
}

export interface ActivityEvents {
  tripEnded(trip: Trip): void;
  chargeEnded(session: ChargingSession): void;
}

/**
 * A trip under way. Classes rather than object literals, with every field set in one order: one shape
 * for every open trip and charge, so the per-record path's loads stay monomorphic.
 */
class OpenTrip {
  lastOdometer: number;
  gpsKm = 0;
  energyWh = 0;
  maxSpeed = Number.NEGATIVE_INFINITY;
  track: number[] = [];
  trackSpacingMs = 0;

  constructor(
    readonly startAt: number,
    public startOdometer: number,
    readonly startSoc: number,
    readonly startPlace: Place | null,
  ) {
    this.lastOdometer = startOdometer;
  }
}

/** A charging session under way (see OpenTrip). */
class OpenCharge {
  energyWh = 0;
  peakKw = 0;
  dc = false;

  constructor(
    readonly startAt: number,
    readonly startSoc: number,
    readonly place: Place | null,
  ) {}
}

/**
 * Trips and charging sessions of one car, derived as its records arrive: a trip runs from the gear
 * leaving P to P again, a session from the detailed charge state reaching Starting/Charging to leaving
 * it. Energies are integrated from the last known power over the time to the next sample. It keeps the
 * last known values itself, because a record carries only the signals that changed.
 */
export class CarActivity {
  /** Made at the first finished trip or session: a car that never ends one holds no list. */
  private tripList: KeptList<Trip> | null = null;
  private chargeList: KeptList<ChargingSession> | null = null;
  private trip: OpenTrip | null = null;
  private charge: OpenCharge | null = null;
  private lastAt = Number.NEGATIVE_INFINITY;
  private gear = NaN;
  private charging = NaN;
  private soc = NaN;
  private odometer = NaN;
  private latitude = NaN;
  private longitude = NaN;
  private packVoltage = NaN;
  private packCurrent = NaN;
  private acPower = NaN;
  private dcPower = NaN;

  constructor(
    private readonly limits: ActivityLimits,
    private readonly events: ActivityEvents,
  ) {}

  /** Pack power out of the battery, kW (positive while driving, negative while charging); NaN when unknown. */
  get packPowerKw(): number {
    return this.packPower();
  }

  get chargerPowerKw(): number {
    return this.chargerPower();
  }

  // Methods rather than the getters on the per-record path: the profile of the saturation run showed
  // the getters' loads going through the generic LoadIC from optimised code.
  packPower(): number {
    return (this.packVoltage * this.packCurrent) / 1000;
  }

  chargerPower(): number {
    const ac = Number.isNaN(this.acPower) ? 0 : this.acPower;
    const dc = Number.isNaN(this.dcPower) ? 0 : this.dcPower;
    return Number.isNaN(this.acPower) && Number.isNaN(this.dcPower) ? NaN : Math.max(ac, dc);
  }

  get openTrip(): boolean {
    return this.trip !== null;
  }

  /** Finished trips kept, oldest first (read, not kept or changed). */
  get trips(): Trip[] {
    return this.tripList?.all() ?? [];
  }

  /** Finished charging sessions kept, oldest first (read, not kept or changed). */
  get charges(): ChargingSession[] {
    return this.chargeList?.all() ?? [];
  }

  get openCharge(): boolean {
    return this.charge !== null;
  }

  /**
   * Fold in one record's signals: a samples row (SAMPLE_VALUES values from `o` in `values`, ROW_*
   * places) at `at` (epoch ms), with no SignalSample filled. Rows must come in time order; the caller
   * drops late ones.
   */
  addRow(values: Float64Array, o: number, at: number): void {
    const dt = at - this.lastAt;
    // Energy over the step that ends now, at the power known before this sample.
    if (dt > 0 && dt <= MAX_INTEGRATION_GAP_MS) {
      const hours = dt / 3_600_000;
      if (this.trip !== null) {
        const power = this.packPower();
        if (power > 0) this.trip.energyWh += power * 1000 * hours;
      }
      if (this.charge !== null) {
        const power = this.chargerPower();
        if (power > 0) this.charge.energyWh += power * 1000 * hours;
      }
    }
    if (at > this.lastAt) this.lastAt = at;

    const latitude = values[o + ROW_LATITUDE]!;
    const longitude = values[o + ROW_LONGITUDE]!;
    const moved = !Number.isNaN(latitude) && (latitude !== this.latitude || longitude !== this.longitude);
    if (moved && this.trip !== null && !Number.isNaN(this.latitude)) {
      this.trip.gpsKm += haversineKm(this.latitude, this.longitude, latitude, longitude);
    }
    if (!Number.isNaN(latitude)) {
      this.latitude = latitude;
      this.longitude = longitude;
    }
    const soc = values[o + ROW_SOC]!;
    const odometer = values[o + ROW_ODOMETER]!;
    const packVoltage = values[o + ROW_PACK_VOLTAGE]!;
    const packCurrent = values[o + ROW_PACK_CURRENT]!;
    const acPower = values[o + ROW_AC_CHARGING_POWER]!;
    const dcPower = values[o + ROW_DC_CHARGING_POWER]!;
    const gear = values[o + ROW_GEAR]!;
    const charging = values[o + ROW_CHARGING]!;
    if (!Number.isNaN(soc)) this.soc = soc;
    if (!Number.isNaN(odometer)) this.odometer = odometer;
    if (!Number.isNaN(packVoltage)) this.packVoltage = packVoltage;
    if (!Number.isNaN(packCurrent)) this.packCurrent = packCurrent;
    if (!Number.isNaN(acPower)) this.acPower = acPower;
    if (!Number.isNaN(dcPower)) this.dcPower = dcPower;

    if (!Number.isNaN(gear)) this.gear = gear;
    if (!Number.isNaN(charging)) this.charging = charging;

    if (this.trip === null && !Number.isNaN(this.gear) && this.gear !== PARK) this.startTrip(at);
    if (this.trip !== null) {
      const trip = this.trip;
      const speed = values[o + ROW_SPEED]!;
      if (!Number.isNaN(speed) && speed > trip.maxSpeed) trip.maxSpeed = speed;
      if (!Number.isNaN(this.odometer)) {
        if (Number.isNaN(trip.startOdometer)) trip.startOdometer = this.odometer;
        trip.lastOdometer = this.odometer;
      }
      if (moved) this.addTrackPoint(trip, at);
      if (this.gear === PARK) this.endTrip(at);
    }

    const chargingNow = this.charging === CHARGING_STARTING || this.charging === CHARGING_CHARGING;
    if (this.charge === null && chargingNow) {
      this.charge = new OpenCharge(at, this.soc, this.place());
    }
    if (this.charge !== null) {
      const power = this.chargerPower();
      if (power > this.charge.peakKw) this.charge.peakKw = power;
      if (this.dcPower > 0 || values[o + ROW_FAST_CHARGER]! === 1) this.charge.dc = true;
      if (!chargingNow && !Number.isNaN(this.charging)) this.endCharge(at);
    }
  }

  /** Drop finished trips and sessions that left the window. */
  expire(now: number): void {
    const cut = now - this.limits.windowMs;
    const trips = this.tripList;
    if (trips !== null) while (trips.length > 0 && trips.oldest()!.endAt < cut) trips.dropFirst();
    const charges = this.chargeList;
    if (charges !== null) while (charges.length > 0 && charges.oldest()!.endAt < cut) charges.dropFirst();
  }

  get bytes(): number {
    let points = this.trip?.track.length ?? 0;
    const trips = this.tripList;
    if (trips !== null) for (const trip of trips.all()) points += trip.track.length;
    // Numbers in a JS array of doubles; a finished record's own fields are a few hundred bytes.
    return points * 8 + ((trips?.length ?? 0) + (this.chargeList?.length ?? 0)) * 300;
  }

  private place(): Place | null {
    return Number.isNaN(this.latitude) ? null : { latitude: this.latitude, longitude: this.longitude };
  }

  private startTrip(at: number): void {
    this.trip = new OpenTrip(at, this.odometer, this.soc, this.place());
    if (!Number.isNaN(this.latitude)) this.addTrackPoint(this.trip, at);
  }

  private addTrackPoint(trip: OpenTrip, at: number): void {
    const track = trip.track;
    if (track.length >= 3 && at - track[track.length - 3]! * 1000 < trip.trackSpacingMs) {
      // Too close to the previous point at the current spacing: move that point here instead.
      track[track.length - 3] = at / 1000;
      track[track.length - 2] = this.latitude;
      track[track.length - 1] = this.longitude;
      return;
    }
    if (track.length / 3 >= this.limits.maxTrackPoints) {
      // Keep every other point (the first and the newest stay), and space new ones twice as far apart.
      let to = 3;
      for (let from = 6; from < track.length - 3; from += 6, to += 3) {
        track[to] = track[from]!;
        track[to + 1] = track[from + 1]!;
        track[to + 2] = track[from + 2]!;
      }
      track[to] = track[track.length - 3]!;
      track[to + 1] = track[track.length - 2]!;
      track[to + 2] = track[track.length - 1]!;
      track.length = to + 3;
      const span = (track[track.length - 3]! - track[0]!) * 1000;
      trip.trackSpacingMs = Math.max(trip.trackSpacingMs * 2, span / this.limits.maxTrackPoints);
    }
    track.push(at / 1000, this.latitude, this.longitude);
  }

  private endTrip(at: number): void {
    const open = this.trip!;
    this.trip = null;
    if (!Number.isNaN(this.latitude)) this.addTrackPoint(open, at);
    const odometerKm = Number.isNaN(open.startOdometer) ? NaN : (open.lastOdometer - open.startOdometer) * KM_PER_MILE;
    const distanceKm = Number.isFinite(odometerKm) && odometerKm >= 0 ? odometerKm : open.gpsKm;
    const energyKwh = Number.isNaN(this.packVoltage) || Number.isNaN(this.packCurrent) ? null : open.energyWh / 1000;
    const trip: Trip = {
      id: `trip-${open.startAt}`,
      startAt: open.startAt,
      endAt: at,
      durationSeconds: Math.round((at - open.startAt) / 1000),
      distanceKm: round(distanceKm, 3),
      energyUsedKwh: energyKwh === null ? null : round(energyKwh, 3),
      efficiencyWhPerKm: energyKwh === null || distanceKm <= 0 ? null : round((energyKwh * 1000) / distanceKm, 1),
      maxSpeedKmh: Number.isFinite(open.maxSpeed) ? round(open.maxSpeed * KM_PER_MILE, 1) : null,
      startSoc: nullable(open.startSoc),
      endSoc: nullable(this.soc),
      startPlace: open.startPlace,
      endPlace: this.place(),
      track: open.track,
    };
    (this.tripList ??= new KeptList(this.limits.maxKept)).push(trip);
    this.events.tripEnded(trip);
  }

  private endCharge(at: number): void {
    const open = this.charge!;
    this.charge = null;
    const durationSeconds = Math.round((at - open.startAt) / 1000);
    const energyKwh = open.energyWh / 1000;
    const session: ChargingSession = {
      id: `charge-${open.startAt}`,
      startAt: open.startAt,
      endAt: at,
      durationSeconds,
      energyAddedKwh: round(energyKwh, 3),
      peakPowerKw: round(open.peakKw, 2),
      averagePowerKw: durationSeconds > 0 ? round(energyKwh / (durationSeconds / 3600), 2) : 0,
      current: open.dc ? 'DC' : 'AC',
      startSoc: nullable(open.startSoc),
      endSoc: nullable(this.soc),
      place: open.place,
    };
    (this.chargeList ??= new KeptList(this.limits.maxKept)).push(session);
    this.events.chargeEnded(session);
  }
}

function haversineKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 12_742 * Math.asin(Math.min(1, Math.sqrt(a)));
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function nullable(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}
