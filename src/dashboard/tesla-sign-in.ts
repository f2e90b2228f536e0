import type { Logger } from 'pino';
import type { DashboardStageConfig } from '../config/types.js';
import type { DashboardMetrics } from './dashboard-metrics.js';
import { oauthFromConfig } from '../tesla/token-provider.js';
import type { VehicleDirectory } from './dashboard-hub.js';
import { EncryptedSessionFile, SessionStore, type SessionEndReason, type SessionPersistence } from './session-store.js';
import { TeslaLogin } from './tesla-login.js';
import { TeslaVehicleList } from './tesla-vehicle-list.js';
import { FleetApiClient } from '../tesla/fleet-api.js';
import { trustedBaseUrl } from '../tesla/region.js';

export interface TeslaSignIn {
  readonly login: TeslaLogin;
  readonly store: SessionStore;
  stop(): Promise<void>;
}

export interface TeslaSignInDeps {
  directory: VehicleDirectory;
  metrics: DashboardMetrics;
  logger: Logger;
  /** A session ended (its sockets close), or lost cars (its sockets reconnect for a new grant). */
  onSessionEnded: (id: string, reason: SessionEndReason | 'vehicles_changed') => void;
  /** Used when DASHBOARD_SESSION_FILE is empty (NATS mode hands in its KV bucket); none = memory only. */
  persistence?: SessionPersistence | null;
  /** Tests: refresh sooner, sweep more often. */
  refreshBeforeMs?: number;
  sweepIntervalMs?: number;
  /** The sessions' clock (token lifetimes); the wall clock unless a test moves one. */
  now?: () => number;
}

/** Builds the session store (loaded from where it persists) and the login routes from the settings. */
export async function startTeslaSignIn(config: Pick<DashboardStageConfig, 'domain' | 'signIn' | 'tesla'>, deps: TeslaSignInDeps): Promise<TeslaSignIn> {
  const s = config.signIn;
  const oauth = oauthFromConfig(config);
  // One list client per region's base URL; the cache in it is keyed by token, so a session's periodic
  // refresh (cooldown 0) always asks Tesla.
  const lists = new Map<string, TeslaVehicleList>();
  const listVehicles = (accessToken: string, apiBaseUrl: string): Promise<ReadonlySet<string>> => {
    const base = apiBaseUrl || config.tesla.apiBaseUrl;
    let list = lists.get(base);
    if (list === undefined) {
      list = new TeslaVehicleList({ apiBaseUrl: base, refreshCooldownMs: 0, timeoutMs: config.tesla.requestTimeoutMs });
      lists.set(base, list);
    }
    return list.refresh(accessToken, Date.now() + 60_000);
  };
  const regionOf = async (accessToken: string): Promise<string> => {
    try {
      const api = new FleetApiClient({ baseUrl: config.tesla.apiBaseUrl, accessToken, timeoutMs: config.tesla.requestTimeoutMs, maxAttempts: 1 });
      return trustedBaseUrl((await api.userRegion()).fleetApiBaseUrl);
    } catch (error) {
      deps.logger.warn({ error: (error as Error).message }, 'tesla_region_unknown');
      return '';
    }
  };
  const persistence = s.sessionFile !== '' ? new EncryptedSessionFile(s.sessionFile, s.sessionSecret, deps.logger) : deps.persistence ?? null;
  if (persistence === null) deps.logger.warn({}, 'dashboard_sessions_in_memory: set DASHBOARD_SESSION_FILE so sign-ins survive a restart');
  const store = new SessionStore({
    oauth,
    listVehicles,
    persistence,
    maxAgeMs: s.sessionMaxAgeSeconds * 1000,
    vehicleListRefreshMs: s.vehicleListRefreshSeconds * 1000,
    logger: deps.logger,
    onRefresh: (result) => deps.metrics.teslaTokenRefreshes.inc({ owner: 'session', result }),
    onCountChange: (count) => deps.metrics.dashboardSessions.set(count),
    ...(deps.refreshBeforeMs !== undefined ? { refreshBeforeMs: deps.refreshBeforeMs } : {}),
    ...(deps.sweepIntervalMs !== undefined ? { sweepIntervalMs: deps.sweepIntervalMs } : {}),
    ...(deps.now !== undefined ? { now: deps.now } : {}),
  });
  store.on('ended', deps.onSessionEnded);
  store.on('vinsRemoved', (id) => deps.onSessionEnded(id, 'vehicles_changed'));
  await store.start();
  const login = new TeslaLogin({
    oauth,
    store,
    redirectUri: s.redirectUri,
    secret: s.sessionSecret,
    domain: config.domain,
    listVehicles,
    regionOf,
    directory: deps.directory,
    maxAgeSeconds: s.sessionMaxAgeSeconds,
    metrics: deps.metrics,
    logger: deps.logger,
    ...(deps.now !== undefined ? { now: deps.now } : {}),
  });
  return { login, store, stop: () => store.stop() };
}
