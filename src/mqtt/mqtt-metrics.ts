import client from 'prom-client';
import { PREFIX } from '../metrics/series.js';

/** MQTT output (docs/HOME-ASSISTANT.md); registered always, so dashboards see zeros without it. */
export class MqttMetrics {
  readonly mqttConnected: client.Gauge;
  readonly mqttPublished: client.Counter<'kind'>;
  readonly mqttDropped: client.Counter<'reason'>;
  readonly mqttQueueDepth: client.Gauge;
  readonly mqttConnectionEvents: client.Counter<'event'>;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.mqttConnected = new client.Gauge({ name: `${PREFIX}mqtt_connected`, help: 'MQTT output: 1 while connected to the broker, 0 otherwise.', registers: r });
    this.mqttPublished = new client.Counter({ name: `${PREFIX}mqtt_published_total`, help: 'MQTT messages the broker accepted, by kind (state, availability, discovery, event, record).', labelNames: ['kind'], registers: r });
    this.mqttDropped = new client.Counter({ name: `${PREFIX}mqtt_dropped_total`, help: 'MQTT messages not delivered, by reason (superseded by a newer value while waiting, queue_full, error, unsupported_vin).', labelNames: ['reason'], registers: r });
    this.mqttQueueDepth = new client.Gauge({ name: `${PREFIX}mqtt_queue_depth`, help: 'MQTT messages waiting for the broker (latest values plus queued events).', registers: r });
    this.mqttConnectionEvents = new client.Counter({ name: `${PREFIX}mqtt_connection_events_total`, help: 'MQTT broker connection events, by event (connect, close, error).', labelNames: ['event'], registers: r });
  }
}
