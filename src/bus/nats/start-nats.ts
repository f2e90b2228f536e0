import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DiscardPolicy, StorageType, jetstream, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { AppConfig } from '../../config/types.js';
import type { NatsMetrics } from './nats-metrics.js';
import type { SnapshotSource } from '../record-bus.js';
import { KvSnapshotSource, KvStateWriter } from './kv-state.js';
import type { LocalVehicles } from '../vehicle-state.js';
import { NatsRecordBus } from './nats-record-bus.js';
import type { StoredRecordDecoder } from './stream-record.js';
import { InstancePresence, SharedConnectivity } from './shared-connectivity.js';
import { isStreamNotFound } from './nats-errors.js';

export type NatsSettings = AppConfig['nats'];

/** An instance that stops heart-beating for this long counts as gone (its cars' sockets no longer count). */
const PRESENCE_TTL_MS = 15_000;
const CONNECTION_STATES = ['connected', 'reconnecting', 'disconnected', 'closed'] as const;

export interface NatsScaleOut {
  readonly instanceId: string;
  readonly bus: NatsRecordBus;
  readonly connectivity: SharedConnectivity;
  /**
   * The snapshot source dashboards use: KV brought up to date from the stream, with this instance's
   * cars (the actor registry, built after the bus) saying whether a car connected here is stale.
   */
  snapshotSource(local: LocalVehicles, staleAfterMs: number): SnapshotSource;
  /** The KV bucket Sign in with Tesla sessions share across instances (<NATS_STREAM>_sessions; the format is src/dashboard/kv-sessions.ts). */
  sessionsBucket(): Promise<KV>;
}

const nanos = (ms: number): number => ms * 1_000_000;

export function streamConfig(settings: NatsSettings): Partial<StreamConfig> & { name: string } {
  return {
    name: settings.stream,
    subjects: [`${settings.subjectPrefix}.>`],
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(settings.maxAgeSeconds * 1000),
    max_bytes: settings.maxBytes === 0 ? -1 : settings.maxBytes,
    duplicate_window: nanos(settings.duplicateWindowSeconds * 1000),
    num_replicas: settings.replicas,
  };
}

/** Created on first start; later starts bring retention settings in line with the configuration. */
async function ensureStream(jsm: JetStreamManager, settings: NatsSettings, logger: Logger): Promise<void> {
  const config = streamConfig(settings);
  const existing = await jsm.streams.info(settings.stream).catch((error: unknown) => {
    if (isStreamNotFound(error)) return null;
    throw error;
  });
  if (existing === null) {
    await jsm.streams.add(config);
    logger.info({ stream: settings.stream, subjects: config.subjects }, 'nats_stream_created');
  } else {
    const { name, ...update } = config;
    await jsm.streams.update(name, update);
    logger.info({ stream: settings.stream, messages: existing.state.messages }, 'nats_stream_updated');
  }
}

/** The servers as they may be logged: credentials inside URLs removed. */
export function loggableServers(url: string): string[] {
  return url.split(',').map((entry) => entry.trim().replace(/\/\/[^@/]*@/, '//'));
}

export function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

function readSettingFile(env: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${env}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

async function connectNats(settings: NatsSettings, instanceId: string): Promise<NatsConnection> {
  if (settings.tlsCaFile !== '') readSettingFile('NATS_TLS_CA_FILE', settings.tlsCaFile);
  const creds = settings.credsFile === '' ? undefined : readSettingFile('NATS_CREDS_FILE', settings.credsFile);
  try {
    return await connect({
      servers: settings.url.split(',').map((entry) => entry.trim()),
      name: `fleet-telemetry ${instanceId}`,
      ...(settings.user !== '' ? { user: settings.user, pass: settings.password } : {}),
      ...(settings.token !== '' ? { token: settings.token } : {}),
      ...(creds !== undefined ? { authenticator: credsAuthenticator(creds) } : {}),
      ...(settings.tlsCaFile !== '' ? { tls: { caFile: settings.tlsCaFile } } : {}),
      // Keep trying for ever: while NATS is away cars simply get no acks and keep their data.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
  } catch (error) {
    // The client's messages name servers, not secrets; say which setting to look at.
    throw new Error(`NATS_URL: cannot connect to ${loggableServers(settings.url).join(', ')}: ${(error as Error).message}`);
  }
}

function watchConnection(nc: NatsConnection, metrics: NatsMetrics, logger: Logger): void {
  const setState = (state: (typeof CONNECTION_STATES)[number]): void => {
    for (const each of CONNECTION_STATES) metrics.natsConnectionState.set({ state: each }, each === state ? 1 : 0);
  };
  setState('connected');
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        setState('disconnected');
        metrics.natsConnectionEvents.inc({ event: 'disconnect' });
        logger.warn({ server: status.server }, 'nats_disconnected');
      } else if (status.type === 'reconnecting') {
        setState('reconnecting');
      } else if (status.type === 'reconnect') {
        setState('connected');
        metrics.natsConnectionEvents.inc({ event: 'reconnect' });
        logger.info({ server: status.server }, 'nats_reconnected');
      } else if (status.type === 'error') {
        metrics.natsConnectionEvents.inc({ event: 'error' });
        logger.warn({ err: status.error }, 'nats_error');
      }
    }
  })();
  void nc.closed().then(() => setState('closed'));
}

/**
 * Everything NATS mode needs, started in order: connection, stream, KV buckets, presence, bus. Only
 * loaded (dynamic import) when NATS_URL is set, so a single-process server never touches NATS code.
 */
export interface NatsDeps {
  /** Decodes the records read back from the stream (the decode worker pool, built before NATS). */
  decoder: StoredRecordDecoder;
  metrics: NatsMetrics;
  logger: Logger;
}

export async function startNatsScaleOut(settings: NatsSettings, deps: NatsDeps): Promise<NatsScaleOut> {
  const { metrics } = deps;
  const instanceId = settings.instanceId !== '' ? settings.instanceId : defaultInstanceId();
  const logger = deps.logger.child({ natsInstance: instanceId });
  const nc = await connectNats(settings, instanceId);
  try {
    watchConnection(nc, metrics, logger);
    const jsm = await jetstreamManager(nc);
    await ensureStream(jsm, settings, logger);
    const js = jetstream(nc);
    const kvm = new Kvm(js);
    const replicas = settings.replicas;
    const stateKv = await kvm.create(`${settings.stream}_state`, { history: 1, replicas });
    const connectivityKv = await kvm.create(`${settings.stream}_connectivity`, { history: 1, replicas });
    const presenceKv = await kvm.create(`${settings.stream}_instances`, { history: 1, replicas, ttl: PRESENCE_TTL_MS });
    const presence = new InstancePresence({ kv: presenceKv, instanceId, ttlMs: PRESENCE_TTL_MS, logger });
    await presence.start();
    const connectivity = new SharedConnectivity({ kv: connectivityKv, instanceId, presence, logger });

    const writer = new KvStateWriter({ kv: stateKv, flushMs: settings.stateFlushMs, metrics, logger });

    const bus = new NatsRecordBus({
      js,
      stream: settings.stream,
      subjectPrefix: settings.subjectPrefix,
      encoding: settings.recordEncoding,
      instanceId,
      maxPending: settings.maxPendingPublishes,
      publishTimeoutMs: settings.publishTimeoutMs,
      decoder: deps.decoder,
      metrics,
      logger,
      // The publishing actor comes with the record: the writer reads its state at the next flush.
      onStored: (record) => {
        if (record.origin !== undefined) writer.markDirty(record.vin, record.origin);
      },
      onClose: async () => {
        // Last DISCONNECTEDs first (they are records too), then the final state, then goodbye.
        await connectivity.whenIdle();
        await bus.whenIdle();
        await writer.close().catch((error: unknown) => logger.warn({ err: error }, 'nats_state_flush_failed'));
        await presence.stop();
        await nc.drain().catch(() => nc.close());
        logger.info({}, 'nats_closed');
      },
    });
    // A reconnect means the server this client was on went away, perhaps with the followers' consumers.
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'reconnect') bus.restartFollows();
      }
    })();
    logger.info({ servers: loggableServers(settings.url), stream: settings.stream, encoding: settings.recordEncoding }, 'nats_started');

    return {
      instanceId,
      bus,
      connectivity,
      sessionsBucket() {
        return kvm.create(`${settings.stream}_sessions`, { history: 1, replicas });
      },
      snapshotSource(local, staleAfterMs) {
        return new KvSnapshotSource({
          state: stateKv,
          connectivity,
          local,
          watchReady: (vin) => bus.watchReady(vin),
          readSince: (vin, sinceMs, onRecord) => bus.readSince(vin, sinceMs, onRecord),
          flushMs: settings.stateFlushMs,
          staleAfterMs,
          logger,
        });
      },
    };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
}
