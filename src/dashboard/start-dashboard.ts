import type { Logger } from 'pino';
import type { VehicleRegistry } from '../actors/vehicle-registry.js';
import { LocalSnapshotSource } from '../actors/vehicle-registry.js';
import type { RecordBus, SnapshotSource } from '../bus/record-bus.js';
import type { DashboardStageConfig } from '../config/types.js';
import type { DashboardMetrics } from './dashboard-metrics.js';
import { DashboardHub } from './dashboard-hub.js';
import { DashboardListener } from './dashboard-listener.js';
import type { SessionPersistence } from './session-store.js';
import { RegistryDirectory } from './registry-directory.js';
import { loadStaticAssets } from './static-assets.js';
import { TokenVerifier } from './token-verifier.js';
import type { Clock } from './clock.js';
import { startTeslaSignIn, type TeslaSignIn } from './tesla-sign-in.js';
import type { RecentHistory } from '../history/recent-history.js';
import { mapConfigAsset, tileOrigins, vendorAssets } from '../history/map-config.js';

export interface DashboardDeps {
  registry: VehicleRegistry;
  bus: RecordBus;
  metrics: DashboardMetrics;
  logger: Logger;
  /** Where snapshots come from; the local actors unless a shared store is wired in. */
  snapshots?: SnapshotSource;
  /** Where sign-in sessions survive a restart when DASHBOARD_SESSION_FILE is empty (the NATS KV bucket). */
  sessionPersistence?: SessionPersistence | null;
  /** Recent history for `history` / `trip` requests; absent or null when HISTORY_ENABLED is false. */
  history?: RecentHistory | null;
  /** Token expiry's clock; the wall clock unless a test moves one by hand. */
  clock?: Clock;
}

export interface RunningDashboard {
  readonly port: number;
  readonly hub: DashboardHub;
  readonly listener: DashboardListener;
  /** Stop taking dashboards, close the open ones with "going away", release the port. */
  stop(): Promise<void>;
}

/** The dashboard stage: token verifier + hub (on the bus) + TLS listener serving the page and the socket. */
export async function startDashboard(config: DashboardStageConfig, deps: DashboardDeps): Promise<RunningDashboard> {
  const d = config.dashboard;
  const verifier = new TokenVerifier({
    secret: d.jwtSecret,
    jwksUrl: d.jwksUrl || undefined,
    issuer: d.jwtIssuer || undefined,
    audience: d.jwtAudience || undefined,
    tesla: d.teslaSignIn
      ? { jwksUrl: d.teslaJwksUrl, issuer: d.teslaIssuer, audience: d.teslaAudience, apiBaseUrl: config.tesla.apiBaseUrl }
      : null,
    maxLifetimeSeconds: d.maxTokenLifetimeSeconds,
    ...(deps.clock !== undefined ? { now: deps.clock.now.bind(deps.clock) } : {}),
  });
  let listener: DashboardListener | null = null;
  const directory = new RegistryDirectory(deps.registry);
  // Sign in with Tesla: only with DASHBOARD_REDIRECT_URI (the config check then insists on the rest).
  const signIn: TeslaSignIn | null =
    config.signIn.redirectUri === ''
      ? null
      : await startTeslaSignIn(config, {
          directory,
          metrics: deps.metrics,
          logger: deps.logger,
          onSessionEnded: (id, reason) => listener?.endSession(id, reason),
          ...(deps.clock !== undefined ? { now: deps.clock.now.bind(deps.clock) } : {}),
          ...(deps.sessionPersistence !== undefined ? { persistence: deps.sessionPersistence } : {}),
        });
  const hub = new DashboardHub({
    bus: deps.bus,
    snapshots: deps.snapshots ?? new LocalSnapshotSource(deps.registry),
    publisher: { publish: (vin, message) => listener?.publish(vin, message), publishBytes: (vin, message, text) => listener?.publish(vin, message, text) },
    directory,
    metrics: deps.metrics,
    logger: deps.logger,
    // A history replay is sent in one go: keep it well inside what one socket may buffer.
    maxReplayBytes: Math.floor(d.maxBackpressureBytes / 2),
    maxReplaysPerMinute: d.maxReplaysPerMinute,
    history: deps.history ?? null,
  });
  listener = new DashboardListener({
    host: d.host,
    port: d.port,
    certFile: d.certFile || config.tls.certFile,
    keyFile: d.keyFile || config.tls.keyFile,
    keyPassphrase: config.tls.keyPassphrase,
    allowedOrigins: d.allowedOrigins,
    maxBackpressureBytes: d.maxBackpressureBytes,
    maxSocketsPerSubject: d.maxSocketsPerSubject,
    verifier,
    hub,
    assets: vendorAssets(mapConfigAsset(loadStaticAssets(), config.history)),
    // The map's tiles come from the configured tile server: the one extra image origin the page has.
    headers: { imgSources: tileOrigins(config.history.mapTileUrl) },
    metrics: deps.metrics,
    logger: deps.logger,
    cookieSessions: signIn?.login ?? null,
    ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
  });
  const onWatchdog = hub.onWatchdog.bind(hub);
  deps.registry.on('watchdog', onWatchdog);
  hub.start();
  let port: number;
  try {
    port = await listener.listen();
  } catch (error) {
    hub.stop();
    deps.registry.off('watchdog', onWatchdog);
    listener.close();
    await signIn?.stop();
    throw error;
  }
  const running = listener;
  return {
    port,
    hub,
    listener: running,
    async stop() {
      running.stopAccepting();
      hub.stop();
      deps.registry.off('watchdog', onWatchdog);
      running.closeAll();
      // Closes are deferred a tick and uWS needs a moment to flush the close frames.
      await new Promise((resolve) => setTimeout(resolve, 50));
      running.close();
      await signIn?.stop();
    },
  };
}
