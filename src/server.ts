import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { FrameTicket } from './actors/vehicle-actor.js';
import { LocalSnapshotSource, VehicleRegistry } from './actors/vehicle-registry.js';
import { InProcessBus } from './bus/in-process-bus.js';
import type { RecordBus, SnapshotSource } from './bus/record-bus.js';
import type { AppConfig } from './config/types.js';
import { startDashboard, type RunningDashboard } from './dashboard/start-dashboard.js';
import { DecodePool } from './decode/decode-pool.js';
import { createLogger } from './log/logger.js';
import { runSelfCheck } from './pki/self-check.js';
import { startTeslaAutomation, type TeslaAutomation } from './tesla/auto-configure.js';
import type { ClientHooks } from './tesla/tesla-clients.js';
import { MetricsListener } from './metrics/metrics-listener.js';
import { TelemetryMetrics } from './metrics/telemetry-metrics.js';
import { loadCaBundle, operatorCasOf } from './protocol/identity.js';
import { VehicleListener } from './vehicle/vehicle-listener.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface ServerOverrides {
  logger?: Logger;
  /** The decode worker module (tests substitute one that can crash on purpose). */
  workerFile?: URL | string;
  bus?: RecordBus;
  metrics?: TelemetryMetrics;
  /** Where dashboard snapshots come from; the local actors by default. */
  snapshots?: SnapshotSource;
  /** Fleet API client tuning for auto-configure (tests shorten the backoff). */
  teslaClientHooks?: ClientHooks;
}

export interface RunningServer {
  readonly vehiclePort: number;
  readonly metricsPort: number;
  readonly dashboardPort: number;
  readonly registry: VehicleRegistry;
  readonly bus: RecordBus;
  /** Last-known state for dashboards: the local actors in one process, the KV bucket in NATS mode. */
  readonly snapshots: SnapshotSource;
  readonly metrics: TelemetryMetrics;
  readonly logger: Logger;
  /** TESLA_AUTO_CONFIGURE at work, or null when it is off. */
  readonly tesla: TeslaAutomation | null;
  /** Graceful stop: no new cars or frames, replies for frames already received, then going-away closes. */
  stop(): Promise<void>;
}

/**
 * Wires the stages together: config -> metrics -> bus -> actors -> decode pool -> vehicle listener.
 * Each stage gets only its slice of the config.
 */
export async function startServer(config: AppConfig, overrides: ServerOverrides = {}): Promise<RunningServer> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const metrics = overrides.metrics ?? new TelemetryMetrics({ version: VERSION });
  // NATS only when configured and no bus was handed in; loaded on demand so one process never needs it.
  const scaleOut =
    overrides.bus === undefined && config.nats.url !== ''
      ? await (await import('./bus/nats/start-nats.js')).startNatsScaleOut(config.nats, { metrics, logger })
      : null;
  const bus = overrides.bus ?? scaleOut?.bus ?? new InProcessBus((error) => logger.error({ err: error }, 'bus_listener_failed'));

  const trust = vehicleTrust(config);
  const registry = new VehicleRegistry({
    bus,
    metrics,
    logger,
    staleAfterMs: config.watchdog.staleAfterSeconds * 1000,
    forgetAfterMs: config.watchdog.forgetAfterSeconds * 1000,
    watchedVins: config.tesla.vins,
    connectivity: scaleOut?.connectivity,
  });
  const snapshots =
    overrides.snapshots ?? scaleOut?.attach(registry, config.watchdog.staleAfterSeconds * 1000) ?? new LocalSnapshotSource(registry);
  metrics.decodeWorkers.set(config.decode.workers);
  const pool = new DecodePool<FrameTicket>(
    {
      workers: config.decode.workers,
      batchMaxFrames: config.decode.batchMaxFrames,
      taskTimeoutMs: config.decode.taskTimeoutMs,
      inlineMaxFrames: config.decode.inlineMaxFrames,
      inlineMaxBytes: config.decode.inlineMaxBytes,
      // The dashboard stage starts after the pool: until then no dashboard watches anything.
      isWatched: (vin) => dashboard?.hub.isWatching(vin) ?? false,
      // The NATS stream stores the normalised record, never the car's own bytes (spoofable VIN).
      normalisedPayloads: scaleOut !== null && config.nats.recordEncoding === 'protobuf',
      workerFile: overrides.workerFile,
      metrics,
      logger,
    },
    (ticket, outcome, reply, frames) => ticket.actor.decoded(ticket, outcome, reply, frames),
  );
  // Re-exported from the parsed key: exactly one SPKI PEM block, never comments or text around it.
  const publicKeyPem = config.tesla.publicKeyFile
    ? (createPublicKey(readFileSync(config.tesla.publicKeyFile, 'utf8')).export({ type: 'spki', format: 'pem' }) as string)
    : null;
  const vehicles = new VehicleListener({
    host: config.vehicle.host,
    port: config.vehicle.port,
    certFile: config.tls.certFile,
    keyFile: config.tls.keyFile,
    keyPassphrase: config.tls.keyPassphrase,
    trustedCaFile: trust.file,
    operatorCas: trust.operatorCas,
    maxFrameBytes: config.vehicle.maxFrameBytes,
    idleTimeoutSeconds: config.vehicle.idleTimeoutSeconds,
    maxBackpressureBytes: config.vehicle.maxBackpressureBytes,
    maxFramesPerSecond: config.vehicle.maxFramesPerSecond,
    maxSocketsPerVin: config.vehicle.maxSocketsPerVin,
    maxSockets: config.vehicle.maxSockets,
    firstFrameTimeoutSeconds: config.vehicle.firstFrameTimeoutSeconds,
    publicKeyPem,
    registry,
    pool,
    metrics,
    logger,
  });
  const metricsListener = new MetricsListener(metrics.registry);

  let vehiclePort: number;
  let metricsPort: number;
  let dashboard: RunningDashboard | null = null;
  let tesla: TeslaAutomation | null = null;
  try {
    metricsPort = await metricsListener.listen(config.metrics.host, config.metrics.port);
    vehiclePort = await vehicles.listen();
    if (config.selfCheck) {
      await runSelfCheck({ listenHost: config.vehicle.host, port: vehiclePort, domain: config.domain, caChainFile: config.tls.caChainFile, logger });
    }
    // Sign-in sessions go to the shared KV bucket in NATS mode unless DASHBOARD_SESSION_FILE is set.
    const sessionPersistence =
      scaleOut !== null && config.signIn.redirectUri !== '' && config.signIn.sessionFile === '' ? await scaleOut.sessionPersistence(config.signIn.sessionSecret) : undefined;
    dashboard = await startDashboard(config, { registry, bus, metrics, logger, snapshots, sessionPersistence });
    tesla = startTeslaAutomation({ config, vehiclePort, registry, metrics, logger, clientHooks: overrides.teslaClientHooks });
  } catch (error) {
    await dashboard?.stop();
    vehicles.close();
    await metricsListener.close();
    await pool.close();
    await scaleOut?.bus.close();
    trust.cleanup();
    throw error;
  }

  const runningDashboard = dashboard;
  const watchdog = setInterval(() => {
    // Its listeners (dashboards, auto-configure) run inside the sweep: none of their throws may end the process.
    try {
      registry.sweepWatchdog();
    } catch (error) {
      metrics.handlerErrors.inc({ listener: 'process', handler: 'timer' });
      logger.error({ err: error }, 'watchdog_sweep_failed');
    }
  }, config.watchdog.sweepIntervalSeconds * 1000);
  watchdog.unref();
  logger.info(
    { vehiclePort, metricsPort, dashboardPort: dashboard.port, domain: config.domain, bus: bus.name, decodeWorkers: config.decode.workers, version: VERSION },
    'server_started',
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info({ openConnections: vehicles.openConnections, pendingFrames: pool.pending }, 'server_stopping');
      vehicles.stopAccepting();
      clearInterval(watchdog);
      tesla?.stop();
      await runningDashboard.stop();
      const drained = await withinGrace(pool.whenIdle(), config.shutdownGraceMs);
      if (!drained) logger.warn({ pendingFrames: pool.pending }, 'shutdown_grace_expired');
      vehicles.closeAll();
      // Let uWS flush the close frames before the app goes away.
      await new Promise((resolve) => setTimeout(resolve, 50));
      vehicles.close();
      await pool.close();
      await bus.close();
      await metricsListener.close();
      trust.cleanup();
      logger.info({}, 'server_stopped');
    })());

  return { vehiclePort, metricsPort, dashboardPort: runningDashboard.port, registry, bus, snapshots, metrics, logger, tesla, stop };
}

/**
 * uWS takes one CA file; with an extra operator CA the two are joined in a private temp file. Operator
 * CAs (anything not named like a Tesla CA, plus the whole extra file) identify cars by CN.
 */
function vehicleTrust(config: AppConfig): { file: string; operatorCas: ReturnType<typeof loadCaBundle>; cleanup(): void } {
  const mainPem = readFileSync(config.vehicleCa.file, 'utf8');
  const main = loadCaBundle(mainPem);
  const operatorCas = operatorCasOf(main);
  if (!config.vehicleCa.extraFile) return { file: config.vehicleCa.file, operatorCas, cleanup() {} };
  const extraPem = readFileSync(config.vehicleCa.extraFile, 'utf8');
  operatorCas.push(...loadCaBundle(extraPem));
  const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-ca-'));
  const file = join(dir, 'vehicle-trust.pem');
  writeFileSync(file, `${mainPem.trim()}\n${extraPem.trim()}\n`, { mode: 0o600 });
  return { file, operatorCas, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function withinGrace(work: Promise<void>, graceMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const result = await Promise.race([work.then(() => true), expired]);
  clearTimeout(timer);
  return result;
}
