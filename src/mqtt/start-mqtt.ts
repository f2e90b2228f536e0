import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { Logger } from 'pino';
import type { RecordBus } from '../bus/record-bus.js';
import type { AppConfig, MqttStageConfig } from '../config/types.js';
import type { MqttMetrics } from './mqtt-metrics.js';
import { resolveFields } from '../tesla/telemetry-config.js';
import { MqttLink, safeUrl } from './mqtt-link.js';
import { MqttSink, type MqttSinkOptions } from './mqtt-sink.js';
import { MqttTopics } from './mqtt-topics.js';

export interface RunningMqtt {
  readonly link: MqttLink;
  readonly sink: MqttSink;
  stop(): Promise<void>;
}

export class MqttSettingError extends Error {}

/** mqtt.js options from the settings: credentials (a file wins), TLS material, client id, protocol. */
export function mqttClientOptions(mqtt: AppConfig['mqtt']): IClientOptions {
  const read = (env: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new MqttSettingError(`${env}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  };
  const password = mqtt.passwordFile !== '' ? read('MQTT_PASSWORD_FILE', mqtt.passwordFile).toString('utf8').replace(/\r?\n$/, '') : mqtt.password;
  return {
    clientId: mqtt.clientId !== '' ? mqtt.clientId : `fleet-telemetry-${randomBytes(4).toString('hex')}`,
    protocolVersion: mqtt.protocolVersion === 5 ? 5 : 4,
    ...(mqtt.username !== '' ? { username: mqtt.username } : {}),
    ...(password !== '' ? { password } : {}),
    ...(mqtt.caFile !== '' ? { ca: read('MQTT_CA_FILE', mqtt.caFile) } : {}),
    ...(mqtt.certFile !== '' ? { cert: read('MQTT_CERT_FILE', mqtt.certFile), key: read('MQTT_KEY_FILE', mqtt.keyFile) } : {}),
    connectTimeout: 10_000,
    keepalive: 30,
  };
}

/** Fields the server itself pushes to cars (TESLA_AUTO_CONFIGURE): their entities appear up front. */
function configuredFields(config: MqttStageConfig, logger: Logger): string[] {
  if (!config.tesla.autoConfigure) return [];
  try {
    return Object.keys(resolveFields({ preset: config.tesla.configPreset, fieldsFile: config.tesla.configFieldsFile || undefined }));
  } catch (error) {
    logger.warn({ err: error }, 'mqtt_configured_fields_unreadable');
    return [];
  }
}

/** The MQTT output, when MQTT_URL is set: connects in the background, never blocks start-up. */
export function startMqtt(
  config: MqttStageConfig,
  deps: { bus: RecordBus; metrics: MqttMetrics; logger: Logger; serverVersion: string; sessions?: MqttSinkOptions['sessions'] },
): RunningMqtt | null {
  const settings = config.mqtt;
  if (settings.url === '') return null;
  const logger = deps.logger.child({ stage: 'mqtt' });
  const topics = new MqttTopics(settings.topicPrefix, settings.discoveryPrefix);
  let sink: MqttSink | null = null;
  const link = new MqttLink({
    url: settings.url,
    clientOptions: mqttClientOptions(settings),
    qos: settings.qos === 0 ? 0 : settings.qos === 2 ? 2 : 1,
    maxQueuedEvents: settings.maxQueuedEvents,
    maxInFlight: settings.maxInFlight,
    maxPerSecond: settings.maxMessagesPerSecond,
    statusTopic: topics.serverStatus,
    subscriptions: [topics.removeRequests, ...(settings.discovery ? [topics.homeAssistantStatus] : [])],
    onConnect: () => sink?.republishAll(),
    onMessage: (topic, payload) => sink?.onControlMessage(topic, payload),
    metrics: deps.metrics,
    logger,
  });
  sink = new MqttSink({
    bus: deps.bus,
    link,
    topics,
    metrics: deps.metrics,
    logger,
    discovery: settings.discovery,
    heartbeatMs: settings.heartbeatSeconds * 1000,
    rawRecords: settings.rawRecords,
    configuredFields: configuredFields(config, logger),
    serverVersion: deps.serverVersion,
    sessions: deps.sessions,
  });
  sink.start();
  link.start();
  logger.info({ broker: safeUrl(settings.url), topicPrefix: settings.topicPrefix, discovery: settings.discovery }, 'mqtt_started');
  const running = sink;
  return {
    link,
    sink: running,
    async stop() {
      running.stop();
      await link.close();
    },
  };
}
