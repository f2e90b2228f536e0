import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { MqttMetrics } from './mqtt-metrics.js';

/** Most publishes handed to mqtt.js in one event-loop turn. */
const DRAIN_SLICE = 16;

export type MessageKind = 'state' | 'availability' | 'discovery' | 'event' | 'record' | 'status';

interface Outgoing {
  topic: string;
  payload: string;
  retain: boolean;
  kind: MessageKind;
}

export interface MqttLinkOptions {
  url: string;
  /** TLS material, credentials, client id, protocol version: handed to mqtt.js as they are. */
  clientOptions: IClientOptions;
  qos: 0 | 1 | 2;
  maxQueuedEvents: number;
  maxInFlight: number;
  /**
   * Publishes per second at most (0 = no cap). The link runs on the main thread beside the cars' acks;
   * a cap bounds its CPU, and with latest-value queueing a capped link only publishes values less often.
   */
  maxPerSecond: number;
  /** Retained `online` on connect, `offline` as the last will. */
  statusTopic: string;
  /** Topics to subscribe to on every connection. */
  subscriptions: string[];
  /** Connected (first time or again): the owner queues everything retained once more. */
  onConnect(): void;
  onMessage(topic: string, payload: string): void;
  metrics: MqttMetrics;
  logger: Logger;
  /** Reconnect backoff: first delay and ceiling, milliseconds. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/**
 * The connection to the broker and what waits for it. Two queues with different promises:
 *  - retained messages (values, availability, discovery) are kept as the latest per topic: a newer
 *    value replaces one not yet sent (counted as superseded), so an outage costs memory proportional to
 *    cars x fields, never to time;
 *  - events (alerts, errors, raw records) are a bounded FIFO: past the bound the oldest go (counted).
 * Nothing is handed to mqtt.js while disconnected (its own offline queue is unbounded), and at most
 * maxInFlight publishes await the broker at once. Reconnects back off exponentially.
 */
export class MqttLink {
  private client: MqttClient | null = null;
  private readonly latest = new Map<string, Outgoing>();
  private events: Outgoing[] = [];
  private eventsHead = 0;
  private inFlight = 0;
  /** Bumped on every close: callbacks of publishes from an older connection no longer count. */
  private generation = 0;
  private connectedNow = false;
  private closed = false;
  private reconnectDelay: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private draining = false;
  private readonly qos: 0 | 1 | 2;
  private tokens: number;
  private lastRefill = performance.now();
  private refillTimer: NodeJS.Timeout | null = null;
  /**
   * Kept across drains: a Map iterator survives deletes and inserts, and starting a fresh one each time
   * would walk over every deleted slot at the front of the table again.
   */
  private cursor: IterableIterator<Outgoing> | null = null;

  constructor(private readonly options: MqttLinkOptions) {
    this.qos = options.qos;
    this.reconnectDelay = options.reconnectMinMs ?? 500;
    this.tokens = options.maxPerSecond;
  }

  get connected(): boolean {
    return this.connectedNow;
  }

  /** Messages waiting (latest values plus events), not counting those awaiting a PUBACK. */
  get queueDepth(): number {
    return this.latest.size + (this.events.length - this.eventsHead);
  }

  start(): void {
    this.options.metrics.mqttConnected.set(0);
    this.connect();
  }

  /**
   * One mqtt.js client per connection attempt: a client whose connection closed is ended and replaced
   * after the backoff, so no state of a dead connection (its offline queue, its stores) carries over.
   * What was in flight on it is covered by the republish after the next connect.
   */
  private connect(): void {
    const { metrics, logger, statusTopic } = this.options;
    const client = mqtt.connect(this.options.url, {
      ...this.options.clientOptions,
      reconnectPeriod: 0,
      clean: true,
      will: { topic: statusTopic, payload: Buffer.from('offline'), qos: this.qos, retain: true },
    });
    this.client = client;
    client.on('connect', () => {
      if (this.client !== client) return;
      this.connectedNow = true;
      this.reconnectDelay = this.options.reconnectMinMs ?? 500;
      metrics.mqttConnected.set(1);
      metrics.mqttConnectionEvents.inc({ event: 'connect' });
      logger.info({ broker: safeUrl(this.options.url) }, 'mqtt_connected');
      if (this.options.subscriptions.length > 0) {
        client.subscribe(this.options.subscriptions, { qos: 1 }, (error) => {
          if (error) logger.warn({ err: error }, 'mqtt_subscribe_failed');
        });
      }
      this.publishRetained(statusTopic, 'online', 'status');
      this.options.onConnect();
      this.drain();
    });
    client.on('message', (topic, payload) => {
      try {
        this.options.onMessage(topic, payload.toString('utf8'));
      } catch (error) {
        logger.error({ err: error, topic }, 'mqtt_message_failed');
      }
    });
    client.on('error', (error) => {
      metrics.mqttConnectionEvents.inc({ event: 'error' });
      logger.warn({ err: { message: error.message, code: (error as { code?: unknown }).code } }, 'mqtt_error');
    });
    client.on('close', () => {
      if (this.client !== client) return;
      const wasConnected = this.connectedNow;
      this.connectedNow = false;
      this.generation++;
      this.inFlight = 0;
      metrics.mqttConnected.set(0);
      if (wasConnected) {
        metrics.mqttConnectionEvents.inc({ event: 'close' });
        logger.warn({ broker: safeUrl(this.options.url) }, 'mqtt_disconnected');
      }
      this.client = null;
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      this.scheduleReconnect();
    });
  }

  /** Latest-wins: a retained message replaces one for the same topic that has not gone out yet. */
  publishRetained(topic: string, payload: string, kind: MessageKind): void {
    if (this.closed) return;
    const waiting = this.latest.get(topic);
    // The same message again (a republish after reconnect while it still waits): nothing to replace.
    if (waiting !== undefined && waiting.payload === payload) return;
    if (waiting !== undefined) {
      this.options.metrics.mqttDropped.inc({ reason: 'superseded' });
      // Re-inserted so the map's order stays the order values changed in.
      this.latest.delete(topic);
    }
    this.latest.set(topic, { topic, payload, retain: true, kind });
    this.kick();
  }

  /** A non-retained message, in order, bounded. */
  publishEvent(topic: string, payload: string, kind: MessageKind): void {
    if (this.closed) return;
    if (this.events.length - this.eventsHead >= this.options.maxQueuedEvents) {
      this.eventsHead++;
      this.options.metrics.mqttDropped.inc({ reason: 'queue_full' });
    }
    this.events.push({ topic, payload, retain: false, kind });
    this.kick();
  }

  /** Sends what is queued now (the owner calls this after a burst it queued in one go). */
  kick(): void {
    if (!this.connectedNow || this.draining) return;
    this.draining = true;
    // After the current tick: a bus listener queues and returns at once; the sending happens later.
    setImmediate(() => {
      this.draining = false;
      this.drain();
    });
  }

  /** Resolves once nothing waits and nothing is in flight, or after `timeoutMs`. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.queueDepth === 0 && this.inFlight === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const client = this.client;
    if (this.connectedNow && client !== null) {
      // What is queued (the cars' last values and DISCONNECTED) first, then a clean stop says so
      // itself: the will is only for crashes.
      this.drain();
      await this.flush(2000);
      if (this.connectedNow) {
        await new Promise<void>((resolve) => {
          client.publish(this.options.statusTopic, 'offline', { qos: this.qos, retain: true }, () => resolve());
          setTimeout(resolve, 1000).unref();
        });
      }
    }
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    this.refillTimer = null;
    this.client = null;
    this.options.metrics.mqttConnected.set(0);
    this.options.metrics.mqttQueueDepth.set(0);
    if (client) {
      // A graceful end sends DISCONNECT, which mqtt.js would queue forever without a connection.
      const force = !this.connectedNow;
      this.connectedNow = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.end(true);
          resolve();
        }, 2000);
        timer.unref();
        client.end(force, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private drain(): void {
    const client = this.client;
    const { metrics, maxPerSecond } = this.options;
    let sent = 0;
    if (maxPerSecond > 0) this.refill();
    while (client !== null && this.connectedNow && this.inFlight < this.options.maxInFlight) {
      if (this.queueDepth === 0) break;
      if (maxPerSecond > 0 && this.tokens < 1) {
        this.waitForTokens();
        break;
      }
      // A slice per event-loop turn, so acks and frames interleave with a long backlog.
      if (sent >= DRAIN_SLICE) {
        this.kick();
        break;
      }
      let next: Outgoing | undefined;
      if (this.latest.size > 0) {
        let step = (this.cursor ??= this.latest.values()).next();
        if (step.done) step = (this.cursor = this.latest.values()).next();
        next = step.value as Outgoing;
        this.latest.delete(next.topic);
      } else {
        next = this.events[this.eventsHead++];
        if (this.eventsHead > 1024 && this.eventsHead * 2 > this.events.length) {
          this.events = this.events.slice(this.eventsHead);
          this.eventsHead = 0;
        }
      }
      if (next === undefined) break;
      sent++;
      if (maxPerSecond > 0) this.tokens--;
      this.inFlight++;
      const generation = this.generation;
      const message = next;
      client.publish(message.topic, message.payload, { qos: this.qos, retain: message.retain }, (error) => {
        if (generation !== this.generation) return;
        this.inFlight--;
        if (error) {
          metrics.mqttDropped.inc({ reason: 'error' });
          // A retained value that failed goes back unless a newer one is already waiting.
          if (message.retain && !this.latest.has(message.topic)) this.latest.set(message.topic, message);
        } else {
          metrics.mqttPublished.inc({ kind: message.kind });
        }
        this.kick();
      });
    }
    metrics.mqttQueueDepth.set(this.queueDepth);
  }

  private refill(): void {
    const now = performance.now();
    const { maxPerSecond } = this.options;
    this.tokens = Math.min(maxPerSecond, this.tokens + ((now - this.lastRefill) * maxPerSecond) / 1000);
    this.lastRefill = now;
  }

  private waitForTokens(): void {
    if (this.refillTimer !== null) return;
    const waitMs = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.options.maxPerSecond));
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.drain();
    }, waitMs);
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== null) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.options.reconnectMaxMs ?? 10_000, this.reconnectDelay * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed) this.connect();
    }, delay);
  }
}

/** The broker URL without credentials, for logs. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
