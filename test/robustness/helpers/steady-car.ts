import { encodeVehicleData } from '../../../src/protocol/payload-encoder.js';
import type { CarClientOptions } from '../../../src/sim/car-client.js';
import { CountingCar } from './counting-car.js';

/**
 * The well-behaved car of every robustness scenario: one V record every `everyMs` for as long as the
 * scenario lasts. Its worst ack latency per phase is the "other cars are not affected" figure.
 */
export class SteadyCar {
  readonly car: CountingCar;
  private timer: NodeJS.Timeout | null = null;
  private phaseStart = 0;
  private speed = 0;

  private constructor(car: CountingCar, private readonly vin: string) {
    this.car = car;
  }

  static async start(options: CarClientOptions, everyMs = 20): Promise<SteadyCar> {
    const steady = new SteadyCar(await CountingCar.connect(options), options.vin);
    steady.timer = setInterval(() => steady.sendOne(), everyMs);
    return steady;
  }

  /** Starts a new phase and returns the worst ack latency (ms) of the phase that ended. */
  phase(): number {
    const worst = this.worstSincePhaseStart();
    this.phaseStart = this.car.latencies.length;
    return worst;
  }

  worstSincePhaseStart(): number {
    let worst = 0;
    for (let i = this.phaseStart; i < this.car.latencies.length; i++) worst = Math.max(worst, this.car.latencies[i]!);
    return Math.round(worst * 10) / 10;
  }

  /** Stops sending, waits for the last replies, closes; the books must balance afterwards. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.car.waitForAll(10_000);
    await this.car.close();
  }

  private sendOne(): void {
    this.car.sendRecord('V', encodeVehicleData({ vin: this.vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: this.speed++ % 200 } }] }));
  }
}
