import type { Logger } from 'pino';
import type { TeslaMetrics } from './tesla-metrics.js';
import { explainSkipReason, skippedVins } from './explain.js';
import type { FleetApiClient } from './fleet-api.js';
import type { ConfigPusher } from './tesla-clients.js';
import { configDifferences, expiresSoon, type TelemetryConfig } from './telemetry-config.js';

/**
 * The two halves of keeping a car's fleet telemetry config ours: the checker asks Tesla what the car
 * holds and says why it needs ours, the pusher sends ours and counts and explains what Tesla did.
 */

/** Why a car needs our config: compares what Tesla says the car holds with what we would push. */
export class ConfigCheck {
  constructor(
    private readonly o: {
      api: Pick<FleetApiClient, 'configStatus'>;
      /** The config we push now (its `exp` moves with the clock). */
      desired: () => TelemetryConfig;
      /** A config this close to its `exp` counts as outdated: the pushed lifetime in seconds. */
      lifetimeSeconds: number;
      /** For the pairing advice (the tesla.com/_ak/<domain> link). */
      domain: string;
      now: () => number;
      logger: Logger;
    },
  ) {}

  /** Why this car needs our config pushed, or null when it already has it. Throws when Tesla cannot be asked. */
  async reasonToPush(vin: string): Promise<string | null> {
    const status = await this.o.api.configStatus(vin);
    if (!status.key_paired) {
      this.o.logger.warn({ vin, advice: explainSkipReason('missing_key', this.o.domain) }, 'tesla_key_not_paired');
    }
    const differences = configDifferences(this.o.desired(), status.config);
    if (differences.length > 0) return differences.join('; ');
    if (expiresSoon(status.config?.exp, this.o.lifetimeSeconds, Math.floor(this.o.now() / 1000))) return 'config expires soon';
    if (!status.synced) return 'config not synced by the car';
    return null;
  }
}

/** Pushes our config and accounts for it: the config_pushes counter by result, one log line per skipped car with advice. */
export class ConfigPushes {
  private stopped = false;

  constructor(
    private readonly o: {
      pusher: ConfigPusher;
      desired: () => TelemetryConfig;
      domain: string;
      counter: TeslaMetrics['configPushes'];
      logger: Logger;
    },
  ) {}

  /** Never throws: a Fleet API failure is logged and counted. After stop() nothing more is pushed. */
  async push(vins: string[], reason: string): Promise<void> {
    if (this.stopped) return;
    const { pusher, counter, logger } = this.o;
    try {
      const result = await pusher.push(vins, this.o.desired());
      counter.inc({ result: 'updated' }, result.updated_vehicles);
      const skipped = skippedVins(result);
      if (skipped.length > 0) counter.inc({ result: 'skipped' }, skipped.length);
      logger.info({ vins, reason, mode: pusher.mode, updated: result.updated_vehicles }, 'tesla_config_pushed');
      for (const [why, list] of Object.entries(result.skipped_vehicles)) {
        for (const vin of list) logger.warn({ vin, reason: why, advice: explainSkipReason(why, this.o.domain) }, 'tesla_config_skipped');
      }
    } catch (error) {
      counter.inc({ result: 'failed' }, vins.length);
      logger.error({ vins, reason, error: (error as Error).message }, 'tesla_config_push_failed');
    }
  }

  /** A car found holding our config already. */
  current(vin: string): void {
    this.o.counter.inc({ result: 'unchanged' });
    this.o.logger.info({ vin }, 'tesla_config_current');
  }

  stop(): void {
    this.stopped = true;
  }
}
