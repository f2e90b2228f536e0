import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { FrameOwner } from './actors/vehicle-actor.js';
import { LocalSnapshotSource, VehicleRegistry } from './actors/vehicle-registry.js';
import { InProcessBus } from './bus/in-process-bus.js';
import type { RecordBus, SnapshotSource } from './bus/record-bus.js';
import type { AppConfig } from './config/types.js';
import { certificateReloadConfig, dashboardStageConfig, historyStageConfig, mqttStageConfig, teslaStageConfig } from './config/slices.js';
import { startDashboard, type RunningDashboard } from './dashboard/start-dashboard.js';
import { KvSessionPersistence } from './dashboard/kv-sessions.js';
import { DecodePool } from './decode/decode-pool.js';
import type { NatsScaleOut } from './bus/nats/start-nats.js';
import { createLogger } from './log/logger.js';
import { runSelfCheck } from './pki/self-check.js';
import { startTeslaAutomation, type TeslaAutomation } from './tesla/auto-configure.js';
import type { ClientHooks } from './tesla/tesla-clients.js';
import { listenMetricsAcrossHandover } from './lifecycle/metrics-handover.js';
import { checkListenerHandover } from './lifecycle/listener-handover.js';
import { MetricsListener } from './metrics/metrics-listener.js';
import { startMqtt, type RunningMqtt } from './mqtt/start-mqtt.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { CertificateReloader, type ReloadOutcome } from './tls/certificate-reloader.js';
import { vehicleTrust } from './tls/vehicle-trust.js';
import { VehicleListener, replyFlush } from './vehicle/vehicle-listener.js';
import { startHistory } from './history/start-history.js';
import type { RecentHistory } from './history/recent-history.js';
import type { PostgresSink } from './postgres/postgres-sink.js';
import type { Clock } from './dashboard/clock.js';
import { objectAt, parseJson, stringField } from './safety/json-reader.js';

export const VERSION: string = stringField(
  objectAt(parseJson(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')), 'package.json'),
  'version',
  'package.json',
);

export interface ServerOverrides {
  logger?: Logger;
  /** The decode worker module (tests substitute one that can crash on purpose). */
  workerFile?: URL | string;
  bus?: RecordBus;
  metrics?: ServerMetrics;
  /** Where dashboard snapshots come from; the local actors by default. */
  snapshots?: SnapshotSource;
  /** Fleet API client tuning for auto-configure (tests shorten the backoff). */
  teslaClientHooks?: ClientHooks;
  /** The dashboard's clock for token expiry (tests move one by hand). */
  clock?: Clock;
  /** The vehicle listener's clock for frame times and the per-car rate limit (tests move one by hand). */
  frameClock?: () => number;
}

export interface RunningServer {
  readonly vehiclePort: number;
  readonly metricsPort: number;
  readonly dashboardPort: number;
  readonly registry: VehicleRegistry;
  readonly bus: RecordBus;
  /** Last-known state for dashboards: the local actors in one process, the KV bucket in NATS mode. */
  readonly snapshots: SnapshotSource;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** TESLA_AUTO_CONFIGURE at work, or null when it is off. */
  readonly tesla: TeslaAutomation | null;
  /** Check the certificate files and, when they changed and pass, serve them to new handshakes (SIGHUP). */
  reloadCertificates(): Promise<ReloadOutcome[]>;
  /** Recent history, trips and charges (HISTORY_ENABLED), or null. */
  readonly history: RecentHistory | null;
  /** The PostgreSQL sink (DATABASE_URL), or null. */
  readonly database: PostgresSink | null;
  /** The MQTT output (MQTT_URL), or null when it is off. */
  readonly mqtt: RunningMqtt | null;
  /** Graceful stop: no new cars or frames, replies for frames already received, then going-away closes. */
  stop(): Promise<void>;
}

/**
 * Wires the stages together: config -> metrics -> bus -> actors -> decode pool -> vehicle listener.
 * Each stage gets only its slice of the config (src/config/slices.ts).
 */
export async function startServer(config: AppConfig, overrides: ServerOverrides = {}): Promise<RunningServer> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const metrics = overrides.metrics ?? new ServerMetrics({ version: VERSION });
  // NATS only when configured and no bus was handed in; loaded on demand so one process never needs it.
  const natsMode = overrides.bus === undefined && config.nats.url !== '';
  // The pool first: NATS hands it the records it reads back from the stream to decode.
  metrics.decode.decodeWorkers.set(config.decode.workers);
  // Set below when the bus is the in-process one made here (recycleResults).
  let inProcessBus: InProcessBus | null = null;
  const pool = new DecodePool<FrameOwner>(
    {
      workers: config.decode.workers,
      batchMaxFrames: config.decode.batchMaxFrames,
      taskTimeoutMs: config.decode.taskTimeoutMs,
      inlineMaxFrames: config.decode.inlineMaxFrames,
      inlineMaxBytes: config.decode.inlineMaxBytes,
      // The dashboard stage starts after the pool: until then no dashboard watches anything.
      isWatched: (vin) => dashboard?.hub.isWatching(vin) ?? false,
      // What reads every record's text (NATS, MQTT, the database, a bus handed in) gets it from the decode
      // stage; otherwise an unwatched car's records are decoded values only (their JSON made on demand).
      recordText: natsMode || overrides.bus !== undefined || config.mqtt.url !== '' || config.postgres.url !== '',
      // The NATS stream stores the normalised record, never the car's own bytes (spoofable VIN).
      normalisedPayloads: natsMode && config.nats.recordEncoding === 'protobuf',
      // Only the in-process bus made here: its subscribers are done with a record's payload view when
      // publish returns (NATS reads it later; a bus handed in may keep it).
      reuseInlineFrames: !natsMode && overrides.bus === undefined,
      // A worker batch's result buffer goes back to the workers once nothing reads it: only with the
      // in-process bus made here, while every subscriber says when it is done with a record (MQTT and
      // the database sink do not: with them on nothing is recycled).
      recycleResults: () => inProcessBus?.everyListenerHolds === true,
      // The replies a batch's outcomes queue are written as its delivery ends, not from a microtask.
      aroundDelivery: replyFlush,
      workerFile: overrides.workerFile,
      metrics: metrics.decode,
      logger,
    },
    (owner, batch, index, seq, arrivedAt, receivedAt) => owner.actor!.frameDecoded(owner.connection!, seq, arrivedAt, receivedAt, batch, index),
  );
  let scaleOut: NatsScaleOut | null = null;
  try {
    if (natsMode) scaleOut = await (await import('./bus/nats/start-nats.js')).startNatsScaleOut(config.nats, { decoder: pool, metrics: metrics.nats, logger });
  } catch (error) {
    await pool.close();
    throw error;
  }
  const bus = overrides.bus ?? scaleOut?.bus ?? (inProcessBus = new InProcessBus((error) => logger.error({ err: error }, 'bus_listener_failed')));

  const trust = vehicleTrust(config.vehicleCa.file, config.vehicleCa.extraFile);
  const registry = new VehicleRegistry({
    bus,
    metrics: metrics.actors,
    logger,
    staleAfterMs: config.watchdog.staleAfterSeconds * 1000,
    forgetAfterMs: config.watchdog.forgetAfterSeconds * 1000,
    watchedVins: config.tesla.vins,
    connectivity: scaleOut?.connectivity,
  });
  const snapshots =
    overrides.snapshots ?? scaleOut?.snapshotSource(registry, config.watchdog.staleAfterSeconds * 1000) ?? new LocalSnapshotSource(registry);
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
    metrics: metrics.vehicle,
    logger,
    ...(overrides.frameClock ? { now: overrides.frameClock } : {}),
  });
  const metricsListener = new MetricsListener(metrics.registry);
  // History and the database sink follow the bus as subscribers: the ack path does not wait for them.
  const history = await startHistory(historyStageConfig(config), { bus, registry, metrics, logger, streamBacked: scaleOut !== null });

  let vehiclePort: number;
  let metricsPort: number;
  let dashboard: RunningDashboard | null = null;
  let tesla: TeslaAutomation | null = null;
  let mqtt: RunningMqtt | null = null;
  try {
    mqtt = startMqtt(mqttStageConfig(config), { bus, metrics: metrics.mqtt, logger, serverVersion: VERSION, sessions: registry });
    // Another instance of ours may still be draining on the same ports (a rolling restart).
    metricsPort = await listenMetricsAcrossHandover(metricsListener, config.metrics.host, config.metrics.port, config.shutdownGraceMs + 10_000, logger);
    vehiclePort = await vehicles.listen();
    if (config.selfCheck) {
      await runSelfCheck({ listenHost: config.vehicle.host, port: vehiclePort, domain: config.domain, caChainFile: config.tls.caChainFile, logger });
    }
    // Sign-in sessions go to the shared KV bucket in NATS mode unless DASHBOARD_SESSION_FILE is set.
    const sessionPersistence =
      scaleOut !== null && config.signIn.redirectUri !== '' && config.signIn.sessionFile === ''
        ? new KvSessionPersistence(await scaleOut.sessionsBucket(), config.signIn.sessionSecret, logger)
        : undefined;
    dashboard = await startDashboard(dashboardStageConfig(config), { registry, bus, metrics: metrics.dashboard, logger, snapshots, sessionPersistence, history: history.recent, clock: overrides.clock });
    tesla = startTeslaAutomation({ config: teslaStageConfig(config), vehiclePort, registry, metrics: metrics.tesla, logger, clientHooks: overrides.teslaClientHooks });
  } catch (error) {
    await dashboard?.stop();
    await mqtt?.stop();
    vehicles.close();
    await metricsListener.close();
    await pool.close();
    await history.stop();
    await scaleOut?.bus.close();
    trust.cleanup();
    throw error;
  }

  const runningDashboard = dashboard;
  const certificates = new CertificateReloader({ config: certificateReloadConfig(config), vehicles, dashboard: dashboard.listener, metrics: metrics.tls, logger, trust });
  checkListenerHandover(logger);
  if (config.tls.watchFiles) certificates.start();
  else certificates.checkExpiry();
  const watchdog = setInterval(() => {
    // Its listeners (dashboards, auto-configure) run inside the sweep: none of their throws may end the process.
    try {
      registry.sweepWatchdog();
    } catch (error) {
      metrics.safety.handlerErrors.inc({ listener: 'process', handler: 'timer' });
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
      certificates.stop();
      clearInterval(watchdog);
      tesla?.stop();
      await runningDashboard.stop();
      // Cars are served until their turn, then closed once their frames are answered (vehicle-listener.ts).
      const deadline = Date.now() + config.shutdownGraceMs;
      await vehicles.drain(Math.min(config.shutdownSpreadMs, config.shutdownGraceMs), deadline);
      const drained = await withinGrace(pool.whenIdle(), Math.max(0, deadline - Date.now()));
      if (!drained) logger.warn({ pendingFrames: pool.pending }, 'shutdown_grace_expired');
      vehicles.closeAll();
      // Let uWS flush the close frames before the app goes away.
      await new Promise((resolve) => setTimeout(resolve, 50));
      vehicles.close();
      await pool.close();
      await history.stop();
      // After the pool: the last records and the DISCONNECTED of every car reach the broker first.
      await mqtt?.stop();
      await bus.close();
      await metricsListener.close();
      logger.info({}, 'server_stopped');
    })());

  const reloadCertificates = (): Promise<ReloadOutcome[]> => certificates.reload('request');
  return { vehiclePort, metricsPort, dashboardPort: runningDashboard.port, registry, bus, snapshots, metrics, logger, tesla, history: history.recent, database: history.sink, mqtt, reloadCertificates, stop };
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
