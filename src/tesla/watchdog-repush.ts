import type { Logger } from 'pino';
import type { WatchdogEvent } from '../actors/vehicle-registry.js';
import type { ConfigCheck, ConfigPushes } from './config-sync.js';

/**
 * The watchdog's hand on Tesla: when a configured car goes silent, ask Tesla whether it holds our
 * config and re-push when it does not, at most once per car per interval. The checks run one after
 * another (Tesla allows one config call at a time), in event order.
 */
export class WatchdogRepush {
  /** When each car was last checked (epoch ms): the rate limit. */
  private readonly lastCheck = new Map<string, number>();
  private work: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly o: {
      vins: ReadonlySet<string>;
      minIntervalMs: number;
      check: ConfigCheck;
      pushes: ConfigPushes;
      now: () => number;
      logger: Logger;
    },
  ) {}

  /** The registry's `watchdog` listener; returns at once, the check is queued. */
  readonly onWatchdog = (event: WatchdogEvent): void => {
    if (event.event !== 'stale' || !this.o.vins.has(event.vin) || this.stopped) return;
    this.work = this.work.then(() => this.recheck(event.vin));
  };

  /** Settles when the last queued check finished. */
  settled(): Promise<void> {
    return this.work;
  }

  stop(): void {
    this.stopped = true;
  }

  private async recheck(vin: string): Promise<void> {
    const { minIntervalMs, logger } = this.o;
    const at = this.o.now();
    const last = this.lastCheck.get(vin);
    if (last !== undefined && at - last < minIntervalMs) {
      logger.info({ vin, nextCheckInSeconds: Math.ceil((last + minIntervalMs - at) / 1000) }, 'watchdog_recheck_rate_limited');
      return;
    }
    this.lastCheck.set(vin, at);
    try {
      const reason = await this.o.check.reasonToPush(vin);
      if (reason === null) {
        logger.info({ vin }, 'watchdog_config_synced');
        return;
      }
      await this.o.pushes.push([vin], `watchdog: ${reason}`);
    } catch (error) {
      logger.error({ vin, error: (error as Error).message }, 'tesla_config_status_failed');
    }
  }
}
