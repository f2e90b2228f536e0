import type { Logger } from 'pino';
import type { VehicleRegistry, WatchdogEvent } from '../actors/vehicle-registry.js';
import type { AppConfig } from '../config/types.js';
import type { TeslaMetrics } from './tesla-metrics.js';
import { configFromSettings } from './config-from-settings.js';
import { classifyTelemetryError, explainSkipReason, skippedVins } from './explain.js';
import type { TelemetryErrorEntry } from './fleet-api.js';
import { tokenFileFromConfig } from './token-provider.js';
import { serverApiBaseUrl } from './region.js';
import { SETTING_BY_ENV } from '../config/schema.js';
import { createTeslaClients, type ClientHooks, type TeslaClients } from './tesla-clients.js';
import { configDifferences, expiresSoon, type TelemetryConfig } from './telemetry-config.js';

/**
 * TESLA_AUTO_CONFIGURE: keep TESLA_VIN's cars pointed at this server. At start every car whose config
 * differs from ours (or is about to expire) gets ours; Tesla's fleet_telemetry_errors are polled and
 * counted; when the watchdog finds a configured car silent, its config status is checked and the
 * config re-pushed when the car has not synced it, at most once per TESLA_REPUSH_MIN_INTERVAL_SECONDS.
 * Fleet API trouble is logged and counted, never fatal: telemetry keeps flowing without Tesla's API.
 */

export interface TeslaAutomation {
  /** Settles when the start-up reconcile and first errors poll are done (tests wait on it). */
  readonly ready: Promise<void>;
  /** Settles when the last watchdog re-check finished (tests wait on it). */
  lastWatchdogAction(): Promise<void>;
  stop(): void;
}

export interface AutomationDeps {
  config: AppConfig;
  /** The bound vehicle port: what cars are told when PORT is 0. */
  vehiclePort: number;
  registry: VehicleRegistry;
  metrics: TeslaMetrics;
  logger: Logger;
  /** Tests shorten the API client's backoff. */
  clientHooks?: ClientHooks;
  now?: () => number;
}

const SEEN_ERRORS_LIMIT = 10_000;

export function startTeslaAutomation(deps: AutomationDeps): TeslaAutomation | null {
  const { config, registry, metrics, logger } = deps;
  if (!config.tesla.autoConfigure) return null;
  const tesla = config.tesla;
  if (tesla.proxyUrl === '' && tesla.privateKeyFile === '') {
    throw new Error('TESLA_AUTO_CONFIGURE needs TESLA_PROXY_URL (the vehicle-command proxy signs configs) or TESLA_PRIVATE_KEY_FILE (the server signs them)');
  }
  const now = deps.now ?? Date.now;
  const port = config.vehicle.port === 0 ? deps.vehiclePort : config.vehicle.port;
  // Built once, up front: a bad preset or fields file stops start-up with its reason.
  const desired = (): TelemetryConfig => configFromSettings(config, { port, nowSeconds: Math.floor(now() / 1000) });
  desired();
  const tokenFile = tokenFileFromConfig(config, { logger, onRefresh: (result) => metrics.teslaTokenRefreshes.inc({ owner: 'server', result }) });
  const apiBaseUrl = serverApiBaseUrl(config, String(SETTING_BY_ENV.get('TESLA_API_BASE_URL')?.default ?? ''));
  const clients: TeslaClients = createTeslaClients({ ...tesla, apiBaseUrl }, {
    ...(tokenFile !== null ? { accessToken: () => tokenFile.accessToken() } : {}),
    logger,
    onAttempt: (endpoint, statusClass) => metrics.teslaApiCalls.inc({ endpoint, status_class: statusClass }),
    ...deps.clientHooks,
  });
  const vins = new Set(tesla.vins);
  const lifetimeSeconds = tesla.configExpiryDays * 86_400;
  const lastRepush = new Map<string, number>();
  const seenErrors = new Set<string>();
  let stopped = false;
  let watchdogWork: Promise<void> = Promise.resolve();

  async function push(targets: string[], reason: string): Promise<void> {
    try {
      const result = await clients.pusher.push(targets, desired());
      metrics.configPushes.inc({ result: 'updated' }, result.updated_vehicles);
      const skipped = skippedVins(result);
      if (skipped.length > 0) metrics.configPushes.inc({ result: 'skipped' }, skipped.length);
      logger.info({ vins: targets, reason, mode: clients.pusher.mode, updated: result.updated_vehicles }, 'tesla_config_pushed');
      for (const [why, list] of Object.entries(result.skipped_vehicles)) {
        for (const vin of list) logger.warn({ vin, reason: why, advice: explainSkipReason(why, config.domain) }, 'tesla_config_skipped');
      }
    } catch (error) {
      metrics.configPushes.inc({ result: 'failed' }, targets.length);
      logger.error({ vins: targets, reason, error: (error as Error).message }, 'tesla_config_push_failed');
    }
  }

  /** Why this car needs our config pushed, or null when it already has it. */
  async function needsPush(vin: string): Promise<string | null> {
    const status = await clients.api.configStatus(vin);
    if (!status.key_paired) {
      logger.warn({ vin, advice: explainSkipReason('missing_key', config.domain) }, 'tesla_key_not_paired');
    }
    const differences = configDifferences(desired(), status.config);
    if (differences.length > 0) return differences.join('; ');
    if (expiresSoon(status.config?.exp, lifetimeSeconds, Math.floor(now() / 1000))) return 'config expires soon';
    if (!status.synced) return 'config not synced by the car';
    return null;
  }

  async function reconcile(): Promise<void> {
    const targets: string[] = [];
    for (const vin of vins) {
      try {
        const reason = await needsPush(vin);
        if (reason === null) {
          metrics.configPushes.inc({ result: 'unchanged' });
          logger.info({ vin }, 'tesla_config_current');
        } else {
          logger.info({ vin, reason }, 'tesla_config_outdated');
          targets.push(vin);
        }
      } catch (error) {
        logger.error({ vin, error: (error as Error).message }, 'tesla_config_status_failed');
      }
    }
    if (targets.length > 0 && !stopped) await push(targets, 'start-up');
  }

  async function pollErrors(): Promise<void> {
    let entries: TelemetryErrorEntry[];
    try {
      entries = await clients.telemetryErrors([...vins]);
    } catch (error) {
      logger.error({ error: (error as Error).message }, 'tesla_errors_poll_failed');
      return;
    }
    for (const entry of entries) {
      // Tesla returns the same recent errors on every poll: count each once.
      const key = JSON.stringify([entry.vin, entry.name, entry.error_name, entry.error, entry.created_at, entry.txID]);
      if (seenErrors.has(key)) continue;
      if (seenErrors.size >= SEEN_ERRORS_LIMIT) seenErrors.clear();
      seenErrors.add(key);
      const { kind, advice } = classifyTelemetryError(entry.error_name ? `${entry.error_name}: ${entry.error}` : entry.error);
      metrics.teslaReportedErrors.inc();
      logger.warn({ vin: entry.vin, error: entry.error, errorName: entry.error_name, createdAt: entry.created_at, kind, advice }, 'tesla_reported_error');
    }
  }

  async function onStale(event: WatchdogEvent): Promise<void> {
    const at = now();
    const last = lastRepush.get(event.vin);
    if (last !== undefined && at - last < tesla.repushMinIntervalSeconds * 1000) {
      logger.info({ vin: event.vin, nextCheckInSeconds: Math.ceil((last + tesla.repushMinIntervalSeconds * 1000 - at) / 1000) }, 'watchdog_recheck_rate_limited');
      return;
    }
    lastRepush.set(event.vin, at);
    try {
      const reason = await needsPush(event.vin);
      if (reason === null) {
        logger.info({ vin: event.vin }, 'watchdog_config_synced');
        return;
      }
      if (!stopped) await push([event.vin], `watchdog: ${reason}`);
    } catch (error) {
      logger.error({ vin: event.vin, error: (error as Error).message }, 'tesla_config_status_failed');
    }
  }

  const onWatchdog = (event: WatchdogEvent): void => {
    if (event.event !== 'stale' || !vins.has(event.vin) || stopped) return;
    watchdogWork = watchdogWork.then(() => onStale(event));
  };
  registry.on('watchdog', onWatchdog);

  let pollTimer: NodeJS.Timeout | undefined;
  const ready = (async () => {
    await reconcile();
    if (stopped || tesla.errorsPollIntervalSeconds === 0) return;
    await pollErrors();
    if (!stopped) {
      pollTimer = setInterval(() => void pollErrors(), tesla.errorsPollIntervalSeconds * 1000);
      pollTimer.unref();
    }
  })();

  return {
    ready,
    lastWatchdogAction: () => watchdogWork,
    stop() {
      stopped = true;
      registry.off('watchdog', onWatchdog);
      if (pollTimer !== undefined) clearInterval(pollTimer);
    },
  };
}
