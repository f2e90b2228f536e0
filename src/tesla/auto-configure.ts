import type { Logger } from 'pino';
import type { WatchdogEvent } from '../actors/vehicle-registry.js';
import type { TeslaStageConfig } from '../config/types.js';
import type { TeslaMetrics } from './tesla-metrics.js';
import { configFromSettings } from './config-from-settings.js';
import { ConfigCheck, ConfigPushes } from './config-sync.js';
import { ReportedErrors } from './reported-errors.js';
import { tokenFileFromConfig } from './token-provider.js';
import { fleetApiBaseUrl } from './region.js';
import { createTeslaClients, type ClientHooks } from './tesla-clients.js';
import type { TelemetryConfig } from './telemetry-config.js';
import { WatchdogRepush } from './watchdog-repush.js';

/**
 * TESLA_AUTO_CONFIGURE: keep TESLA_VIN's cars pointed at this server. At start every car whose config
 * differs from ours (or is about to expire) gets ours; Tesla's fleet_telemetry_errors are polled and
 * counted; when the watchdog finds a configured car silent, its config status is checked and the
 * config re-pushed when the car has not synced it, at most once per TESLA_REPUSH_MIN_INTERVAL_SECONDS.
 * Fleet API trouble is logged and counted, never fatal: telemetry keeps flowing without Tesla's API.
 */

/** Where the watchdog's stale and fresh events come from: the vehicle registry. */
export interface WatchdogEvents {
  on(event: 'watchdog', listener: (event: WatchdogEvent) => void): unknown;
  off(event: 'watchdog', listener: (event: WatchdogEvent) => void): unknown;
}

/** The series auto-configure counts into. */
export type AutomationMetrics = Pick<TeslaMetrics, 'configPushes' | 'teslaReportedErrors' | 'teslaApiCalls' | 'teslaTokenRefreshes'>;

export interface AutomationDeps {
  config: TeslaStageConfig;
  /** The bound vehicle port: what cars are told when PORT is 0. */
  vehiclePort: number;
  registry: WatchdogEvents;
  metrics: AutomationMetrics;
  logger: Logger;
  /** Tests shorten the API client's backoff. */
  clientHooks?: ClientHooks;
  now?: () => number;
}

/** The automation when TESLA_AUTO_CONFIGURE is on, or null. Throws (start-up stops) on settings it cannot work with. */
export function startTeslaAutomation(deps: AutomationDeps): TeslaAutomation | null {
  return deps.config.tesla.autoConfigure ? new TeslaAutomation(deps) : null;
}

/**
 * Its parts: the checker (does a car hold our config?), the pusher (send it, count, explain skips),
 * the reported-errors poll, the watchdog's re-push; this object runs the schedule: start-up
 * reconcile, then the first errors poll, then a poll every TESLA_ERRORS_POLL_INTERVAL_SECONDS.
 */
export class TeslaAutomation {
  /** Settles when the start-up reconcile and first errors poll are done (tests wait on it). */
  readonly ready: Promise<void>;
  private readonly vins: ReadonlySet<string>;
  private readonly check: ConfigCheck;
  private readonly pushes: ConfigPushes;
  private readonly errors: ReportedErrors;
  private readonly repush: WatchdogRepush;
  private pollTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: AutomationDeps) {
    const { config, metrics, logger } = deps;
    const tesla = config.tesla;
    if (tesla.proxyUrl === '' && tesla.privateKeyFile === '') {
      throw new Error('TESLA_AUTO_CONFIGURE needs TESLA_PROXY_URL (the vehicle-command proxy signs configs) or TESLA_PRIVATE_KEY_FILE (the server signs them)');
    }
    const now = deps.now ?? Date.now;
    const port = config.vehicle.port === 0 ? deps.vehiclePort : config.vehicle.port;
    const desired = (): TelemetryConfig => configFromSettings(config, { port, nowSeconds: Math.floor(now() / 1000) });
    // Built once, up front: a bad preset or fields file stops start-up with its reason.
    desired();
    const tokenFile = tokenFileFromConfig(config, { logger, onRefresh: (result) => metrics.teslaTokenRefreshes.inc({ owner: 'server', result }) });
    const apiBaseUrl = fleetApiBaseUrl(config);
    const clients = createTeslaClients({ ...tesla, apiBaseUrl }, {
      ...(tokenFile !== null ? { accessToken: () => tokenFile.accessToken() } : {}),
      logger,
      onAttempt: (endpoint, statusClass) => metrics.teslaApiCalls.inc({ endpoint, status_class: statusClass }),
      ...deps.clientHooks,
    });
    this.vins = new Set(tesla.vins);
    this.check = new ConfigCheck({ api: clients.api, desired, lifetimeSeconds: tesla.configExpiryDays * 86_400, domain: config.domain, now, logger });
    this.pushes = new ConfigPushes({ pusher: clients.pusher, desired, domain: config.domain, counter: metrics.configPushes, logger });
    this.errors = new ReportedErrors({ fetch: () => clients.telemetryErrors([...this.vins]), counter: metrics.teslaReportedErrors, logger });
    this.repush = new WatchdogRepush({
      vins: this.vins,
      minIntervalMs: tesla.repushMinIntervalSeconds * 1000,
      check: this.check,
      pushes: this.pushes,
      now,
      logger,
    });
    deps.registry.on('watchdog', this.repush.onWatchdog);
    this.ready = this.startUp();
  }

  /** Settles when the last watchdog re-check finished (tests wait on it). */
  lastWatchdogAction(): Promise<void> {
    return this.repush.settled();
  }

  stop(): void {
    this.stopped = true;
    this.pushes.stop();
    this.repush.stop();
    this.deps.registry.off('watchdog', this.repush.onWatchdog);
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
  }

  private async startUp(): Promise<void> {
    await this.reconcile();
    const intervalSeconds = this.deps.config.tesla.errorsPollIntervalSeconds;
    if (this.stopped || intervalSeconds === 0) return;
    await this.errors.poll();
    if (this.stopped) return;
    this.pollTimer = setInterval(() => void this.errors.poll(), intervalSeconds * 1000);
    this.pollTimer.unref();
  }

  /** Every configured car that does not hold our config gets it, in one push. */
  private async reconcile(): Promise<void> {
    const { logger } = this.deps;
    const targets: string[] = [];
    for (const vin of this.vins) {
      try {
        const reason = await this.check.reasonToPush(vin);
        if (reason === null) {
          this.pushes.current(vin);
        } else {
          logger.info({ vin, reason }, 'tesla_config_outdated');
          targets.push(vin);
        }
      } catch (error) {
        logger.error({ vin, error: (error as Error).message }, 'tesla_config_status_failed');
      }
    }
    if (targets.length > 0) await this.pushes.push(targets, 'start-up');
  }
}
