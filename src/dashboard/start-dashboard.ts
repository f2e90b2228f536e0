import type { Logger } from 'pino';
import type { VehicleRegistry } from '../actors/vehicle-registry.js';
import { LocalSnapshotSource } from '../actors/vehicle-registry.js';
import type { RecordBus, SnapshotSource } from '../bus/record-bus.js';
import type { AppConfig } from '../config/types.js';
import type { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { DashboardHub } from './dashboard-hub.js';
import { DashboardListener } from './dashboard-listener.js';
import { RegistryDirectory } from './registry-directory.js';
import { loadStaticAssets } from './static-assets.js';
import { TokenVerifier } from './token-verifier.js';
import type { RecentHistory } from '../history/recent-history.js';
import { mapConfigAsset, tileOrigins, vendorAssets } from '../history/map-config.js';

export interface DashboardDeps {
  registry: VehicleRegistry;
  bus: RecordBus;
  metrics: TelemetryMetrics;
  logger: Logger;
  /** Where snapshots come from; the local actors unless a shared store is wired in. */
  snapshots?: SnapshotSource;
  /** Recent history for `history` / `trip` requests; absent or null when HISTORY_ENABLED is false. */
  history?: RecentHistory | null;
}

export interface RunningDashboard {
  readonly port: number;
  readonly hub: DashboardHub;
  readonly listener: DashboardListener;
  /** Stop taking dashboards, close the open ones with "going away", release the port. */
  stop(): Promise<void>;
}

/** The dashboard stage: token verifier + hub (on the bus) + TLS listener serving the page and the socket. */
export async function startDashboard(config: AppConfig, deps: DashboardDeps): Promise<RunningDashboard> {
  const d = config.dashboard;
  const verifier = new TokenVerifier({
    secret: d.jwtSecret,
    jwksUrl: d.jwksUrl || undefined,
    issuer: d.jwtIssuer || undefined,
    audience: d.jwtAudience || undefined,
    tesla: d.teslaSignIn
      ? { jwksUrl: d.teslaJwksUrl, issuer: d.teslaIssuer, audience: d.teslaAudience, apiBaseUrl: config.tesla.apiBaseUrl }
      : null,
  });
  let listener: DashboardListener | null = null;
  const hub = new DashboardHub({
    bus: deps.bus,
    snapshots: deps.snapshots ?? new LocalSnapshotSource(deps.registry),
    publisher: { publish: (vin, message) => listener?.publish(vin, message) },
    directory: new RegistryDirectory(deps.registry),
    metrics: deps.metrics,
    logger: deps.logger,
    // A history replay is sent in one go: keep it well inside what one socket may buffer.
    maxReplayBytes: Math.floor(d.maxBackpressureBytes / 2),
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
    verifier,
    hub,
    assets: vendorAssets(mapConfigAsset(loadStaticAssets(), config.history)),
    imageSources: tileOrigins(config.history.mapTileUrl),
    metrics: deps.metrics,
    logger: deps.logger,
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
    },
  };
}
