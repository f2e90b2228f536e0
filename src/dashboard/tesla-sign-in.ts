import type { Logger } from 'pino';
import type { AppConfig } from '../config/types.js';
import type { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { oauthFromConfig } from '../tesla/token-provider.js';
import type { VehicleDirectory } from './dashboard-hub.js';
import { EncryptedSessionFile, SessionStore, type SessionEndReason, type SessionPersistence } from './session-store.js';
import { TeslaLogin } from './tesla-login.js';
import { TeslaVehicleList } from './tesla-vehicle-list.js';

export interface TeslaSignIn {
  readonly login: TeslaLogin;
  readonly store: SessionStore;
  stop(): Promise<void>;
}

export interface TeslaSignInDeps {
  directory: VehicleDirectory;
  metrics: TelemetryMetrics;
  logger: Logger;
  /** A session ended (its sockets close), or lost cars (its sockets reconnect for a new grant). */
  onSessionEnded: (id: string, reason: SessionEndReason | 'vehicles_changed') => void;
  /** Used when DASHBOARD_SESSION_FILE is empty (NATS mode hands in its KV bucket); none = memory only. */
  persistence?: SessionPersistence | null;
  /** Tests: refresh sooner, sweep more often. */
  refreshBeforeMs?: number;
  sweepIntervalMs?: number;
}

/** Builds the session store (loaded from where it persists) and the login routes from the settings. */
export async function startTeslaSignIn(config: AppConfig, deps: TeslaSignInDeps): Promise<TeslaSignIn> {
  const s = config.signIn;
  const oauth = oauthFromConfig(config);
  const vehicleList = new TeslaVehicleList({ apiBaseUrl: config.tesla.apiBaseUrl, refreshCooldownMs: 0, timeoutMs: config.tesla.requestTimeoutMs });
  // The list is keyed by token in that cache; a session's periodic refresh must ask Tesla, not the cache.
  const listVehicles = (accessToken: string): Promise<ReadonlySet<string>> => vehicleList.refresh(accessToken, Date.now() + 60_000);
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
    directory: deps.directory,
    maxAgeSeconds: s.sessionMaxAgeSeconds,
    metrics: deps.metrics,
    logger: deps.logger,
  });
  return { login, store, stop: () => store.stop() };
}
