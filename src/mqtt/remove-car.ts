import mqtt from 'mqtt';
import type { AppConfig } from '../config/types.js';
import { mqttClientOptions } from './start-mqtt.js';
import { removalMessages } from './mqtt-sink.js';
import { MqttTopics, isTopicSafeVin } from './mqtt-topics.js';

export interface RemoveCarResult {
  /** Retained topics found on the broker under the car and cleared. */
  cleared: number;
}

/**
 * Forgets a car in Home Assistant: asks running servers to drop it (so a Home Assistant restart does
 * not bring it back), then clears every retained message that can belong to it: its discovery configs
 * (Home Assistant deletes the entities and the device when a config becomes empty) and its state
 * topics, including fields this version does not know (found by subscribing to `<prefix>/<VIN>/#`).
 */
export async function removeCar(settings: AppConfig['mqtt'], vin: string, options: { settleMs?: number } = {}): Promise<RemoveCarResult> {
  if (!isTopicSafeVin(vin)) throw new Error(`"${vin}" cannot be an MQTT topic level (letters, digits, _ and - only)`);
  const topics = new MqttTopics(settings.topicPrefix, settings.discoveryPrefix);
  const clientOptions = mqttClientOptions(settings);
  const client = await mqtt.connectAsync(settings.url, { ...clientOptions, clientId: `${clientOptions.clientId}-cli`, reconnectPeriod: 0 });
  try {
    const found = new Set<string>();
    client.on('message', (topic, payload, packet) => {
      if (packet.retain && payload.length > 0) found.add(topic);
    });
    await client.subscribeAsync([`${settings.topicPrefix}/${vin}/#`, `${settings.discoveryPrefix}/+/${vin}/+/config`], { qos: 1 });
    // Retained messages arrive right after SUBACK; a short quiet period collects them.
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 500));
    await client.publishAsync(topics.removeRequest(vin), 'remove', { qos: 1, retain: false });
    const clear = new Set([...found, ...removalMessages(vin, topics, []).map((m) => m.topic)]);
    clear.delete(topics.removeRequest(vin));
    for (const topic of clear) await client.publishAsync(topic, '', { qos: 1, retain: true });
    return { cleared: found.size };
  } finally {
    await client.endAsync();
  }
}
