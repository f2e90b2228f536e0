import { mulberry32 } from './seeded-random.js';

/**
 * A plausible car for the demo, the tests and the load harness: it parks, drives a loop (speed, gear,
 * position, odometer and charge change together), parks again and charges. Values come out the way a car
 * with `prefer_typed: true` sends them, plus the odd string Location and an `invalid` reading so the
 * normalisations and edge cases run all the time, not only in unit tests.
 */
export interface StoryDatum {
  key: string;
  value: Record<string, unknown>;
}

type Phase = 'parked' | 'driving' | 'charging';

export interface StoryOptions {
  /** Seeds the car's starting point and rhythm so a fleet does not move in lockstep. */
  seed: number;
  /** Home position. */
  latitude?: number;
  longitude?: number;
}

const PHASE_SECONDS: Record<Phase, number> = { parked: 20, driving: 90, charging: 60 };

export class VehicleStory {
  private phase: Phase = 'parked';
  private phaseElapsed = 0;
  private tick = 0;
  private speedKmh = 0;
  private soc: number;
  private odometerKm: number;
  private heading: number;
  private latitude: number;
  private longitude: number;
  private insideTemp: number;
  private readonly outsideTemp: number;
  private random: () => number;

  constructor(options: StoryOptions) {
    this.random = mulberry32(options.seed);
    this.soc = 55 + this.random() * 35;
    this.odometerKm = 10_000 + this.random() * 40_000;
    this.heading = this.random() * 360;
    this.latitude = options.latitude ?? 37.3948 + (this.random() - 0.5) * 0.05;
    this.longitude = options.longitude ?? -122.1503 + (this.random() - 0.5) * 0.05;
    this.outsideTemp = 8 + this.random() * 20;
    this.insideTemp = this.outsideTemp + 2;
    this.phaseElapsed = Math.floor(this.random() * PHASE_SECONDS.parked);
  }

  get currentPhase(): Phase {
    return this.phase;
  }

  /** Advance one second and return the datums a car would send for it. */
  next(): StoryDatum[] {
    this.tick++;
    this.advance();
    const data: StoryDatum[] = [
      { key: 'VehicleSpeed', value: { doubleValue: round(this.speedKmh * 0.621371, 1) } },
      { key: 'Gear', value: { shiftStateValue: this.phase === 'driving' ? 'ShiftStateD' : 'ShiftStateP' } },
      { key: 'Soc', value: { doubleValue: round(this.soc, 2) } },
      { key: 'BatteryLevel', value: { doubleValue: round(this.soc - 0.4, 2) } },
      { key: 'EstBatteryRange', value: { doubleValue: round(this.soc * 3.1, 1) } },
      { key: 'Odometer', value: { doubleValue: round(this.odometerKm * 0.621371, 2) } },
      { key: 'InsideTemp', value: { doubleValue: round(this.insideTemp, 1) } },
      { key: 'OutsideTemp', value: { doubleValue: round(this.outsideTemp, 1) } },
      { key: 'DetailedChargeState', value: { detailedChargeStateValue: this.phase === 'charging' ? 'DetailedChargeStateCharging' : 'DetailedChargeStateDisconnected' } },
      { key: 'ACChargingPower', value: { doubleValue: this.phase === 'charging' ? round(11 + this.random() * 0.3, 2) : 0 } },
      { key: 'GpsHeading', value: { doubleValue: round(this.heading, 1) } },
      { key: 'Locked', value: { booleanValue: this.phase !== 'driving' ? true : this.random() > 0.02 } },
      { key: 'DoorState', value: { doorValue: { DriverFront: this.phase === 'parked' && this.phaseElapsed < 3, DriverRear: false, PassengerFront: false, PassengerRear: false, TrunkFront: false, TrunkRear: false } } },
      { key: 'TpmsPressureFl', value: { doubleValue: round(2.9 + this.random() * 0.05, 3) } },
      { key: 'TpmsPressureFr', value: { doubleValue: round(2.9 + this.random() * 0.05, 3) } },
      { key: 'TpmsPressureRl', value: { doubleValue: round(2.85 + this.random() * 0.05, 3) } },
      { key: 'TpmsPressureRr', value: { doubleValue: round(2.85 + this.random() * 0.05, 3) } },
      { key: 'PackVoltage', value: { doubleValue: round(350 + this.soc * 0.7, 2) } },
      { key: 'PackCurrent', value: { doubleValue: round(this.phase === 'driving' ? this.speedKmh * 1.3 : this.phase === 'charging' ? -30 : 0.5, 1) } },
    ];
    // Every tenth second the position comes as the string form older configs send; otherwise typed.
    data.push(
      this.tick % 10 === 0
        ? { key: 'Location', value: { stringValue: locationString(this.latitude, this.longitude) } }
        : { key: 'Location', value: { locationValue: { latitude: round(this.latitude, 6), longitude: round(this.longitude, 6) } } },
    );
    // A sensor that could not be read, as cars report it.
    if (this.tick % 30 === 0) data.push({ key: 'CabinOverheatProtectionTemperatureLimit', value: { invalid: true } });
    return data;
  }

  /** Occasionally an alert, as cars raise them. */
  maybeAlert(): { name: string; audiences: string[]; startedAt: Date } | null {
    return this.random() < 0.01 ? { name: pick(this.random, ['BMS_a066_SW_Low_Soc', 'UI_a004_TPMS_Hard_Warning', 'CP_a043_InvalidGridConditions']), audiences: ['Customer'], startedAt: new Date() } : null;
  }

  private advance(): void {
    this.phaseElapsed++;
    if (this.phaseElapsed >= PHASE_SECONDS[this.phase]) {
      this.phaseElapsed = 0;
      this.phase = this.phase === 'parked' ? 'driving' : this.phase === 'driving' ? 'charging' : 'parked';
    }
    if (this.phase === 'driving') {
      const target = 40 + 60 * Math.abs(Math.sin(this.tick / 25));
      this.speedKmh += Math.max(-8, Math.min(6, target - this.speedKmh));
      this.heading = (this.heading + (this.random() - 0.5) * 12 + 360) % 360;
      const km = this.speedKmh / 3600;
      this.odometerKm += km;
      this.soc = Math.max(5, this.soc - km * 0.18);
      const radians = (this.heading * Math.PI) / 180;
      this.latitude += (km / 111.32) * Math.cos(radians);
      this.longitude += (km / (111.32 * Math.cos((this.latitude * Math.PI) / 180))) * Math.sin(radians);
      this.insideTemp += (21 - this.insideTemp) * 0.05;
    } else {
      this.speedKmh = 0;
      if (this.phase === 'charging') this.soc = Math.min(90, this.soc + 0.05);
      this.insideTemp += (this.outsideTemp - this.insideTemp) * 0.01;
    }
  }
}

function locationString(latitude: number, longitude: number): string {
  return `(${Math.abs(latitude).toFixed(6)} ${latitude >= 0 ? 'N' : 'S'}, ${Math.abs(longitude).toFixed(6)} ${longitude >= 0 ? 'E' : 'W'})`;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function pick<T>(random: () => number, items: T[]): T {
  return items[Math.floor(random() * items.length)]!;
}
