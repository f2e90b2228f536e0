import type { Logger } from 'pino';
import type { BusRecord, RecordBus } from '../bus/record-bus.js';
import type { MqttMetrics } from './mqtt-metrics.js';
import { discoveryMessage } from './ha-discovery.js';
import { BATTERY_POWER_INPUTS, DERIVED_BATTERY_POWER, ENTITIES_BY_FIELD, HA_ENTITIES, type HaEntity } from './ha-entities.js';
import type { MqttLink } from './mqtt-link.js';
import { isTopicSafeVin, type MqttTopics } from './mqtt-topics.js';
import { isObject, parseJson } from '../safety/json-reader.js';

export interface MqttSinkOptions {
  bus: RecordBus;
  link: MqttLink;
  topics: MqttTopics;
  metrics: MqttMetrics;
  logger: Logger;
  discovery: boolean;
  /** Republish an unchanged value after this long; 0 = never. */
  heartbeatMs: number;
  rawRecords: boolean;
  /** Fields of the pushed telemetry config: their entities are announced with the car, before data. */
  configuredFields: readonly string[];
  serverVersion: string;
  /**
   * The local actors (the vehicle registry): tells when a car came back on a new connection. With
   * several instances a car may have streamed to another one meanwhile, so what this instance last
   * published for it says nothing about the broker's state any more.
   */
  sessions?: { get(vin: string): { readonly connections: readonly object[] } | undefined };
  /** Records waiting to be turned into messages; past it the oldest are dropped and counted. */
  maxPendingRecords?: number;
  now?: () => number;
}

/** Records turned into messages per event-loop turn. */
const PROCESS_SLICE = 16;

interface PublishedValue {
  payload: string;
  at: number;
}

interface CarState {
  online: boolean | null;
  readonly fields: Map<string, PublishedValue>;
  readonly announced: Set<string>;
  location: { latitude: number; longitude: number } | null;
  heading: number | null;
  /** Last published location attributes. */
  locationPayload: string | null;
  /** The connection the car's records came over when this state was published. */
  session: object | null;
}

interface ValueJson {
  [member: string]: unknown;
}

/**
 * The MQTT stage: a side output on the record bus. The bus listener only queues the record and
 * returns, so a car's ack never waits for MQTT; the queue is drained after the current tick, where
 * records become retained per-field values (only when changed, or on the heartbeat), availability,
 * alert/error events and, on first sight of a field, Home Assistant discovery configs.
 *
 * With NATS the bus also delivers records other instances stored (for VINs a local dashboard
 * watches). Those carry the storing instance's name and are skipped: each instance publishes exactly
 * the records its own cars sent, so across instances every record is published once.
 */
export class MqttSink {
  private readonly cars = new Map<string, CarState>();
  private pending: BusRecord[] = [];
  private scheduled = false;
  private unsubscribe: (() => void) | null = null;
  private readonly maxPendingRecords: number;
  private readonly now: () => number;

  constructor(private readonly options: MqttSinkOptions) {
    this.maxPendingRecords = options.maxPendingRecords ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.unsubscribe ??= this.options.bus.subscribe((record) => this.onRecord(record));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    while (this.pending.length > 0) this.processPending();
  }

  get carCount(): number {
    return this.cars.size;
  }

  /** The broker connection is (again) up: everything retained goes out once more. */
  republishAll(): void {
    for (const [vin, car] of this.cars) this.republishCar(vin, car);
  }

  /** A message on a subscribed topic: Home Assistant's birth message, or a request to forget a car. */
  onControlMessage(topic: string, payload: string): void {
    const { topics, logger } = this.options;
    if (topic === topics.homeAssistantStatus) {
      if (payload.trim() === 'online') {
        logger.info({ cars: this.cars.size }, 'mqtt_home_assistant_online');
        this.republishAll();
      }
      return;
    }
    const vin = topics.vinOfRemoveRequest(topic);
    if (vin !== null) this.forget(vin);
  }

  /** Clears a car's discovery configs and retained topics, and forgets its state. */
  forget(vin: string): void {
    const { link, topics, logger } = this.options;
    const car = this.cars.get(vin);
    this.cars.delete(vin);
    for (const message of removalMessages(vin, topics, car ? [...car.fields.keys()] : [])) link.publishRetained(message.topic, '', 'discovery');
    logger.info({ vin }, 'mqtt_car_removed');
  }

  private onRecord(record: BusRecord): void {
    // Stored by another instance (NATS): that instance publishes it.
    if (typeof (record as { instance?: unknown }).instance === 'string') return;
    if (this.pending.length >= this.maxPendingRecords) {
      this.pending.shift();
      this.options.metrics.mqttDropped.inc({ reason: 'queue_full' });
    }
    this.pending.push(record);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.processPending());
    }
  }

  private processPending(): void {
    this.scheduled = false;
    let records = this.pending;
    // A slice per event-loop turn: a thousand cars arriving at once (each first record builds its
    // discovery configs) must not hold up their acks.
    if (records.length > PROCESS_SLICE) {
      this.pending = records.slice(PROCESS_SLICE);
      records = records.slice(0, PROCESS_SLICE);
      this.scheduled = true;
      setImmediate(() => this.processPending());
    } else {
      this.pending = [];
    }
    for (const record of records) {
      try {
        this.process(record);
      } catch (error) {
        this.options.logger.warn({ err: error, vin: record.vin, topic: record.topic, txid: record.txid }, 'mqtt_record_failed');
      }
    }
    this.options.link.kick();
  }

  private process(record: BusRecord): void {
    const { vin } = record;
    if (!isTopicSafeVin(vin)) {
      this.options.metrics.mqttDropped.inc({ reason: 'unsupported_vin' });
      return;
    }
    const car = this.car(vin);
    if (record.topic !== 'connectivity') this.followSession(car, vin);
    const { link, topics } = this.options;
    if (this.options.rawRecords && record.recordJson !== null) {
      link.publishEvent(topics.record(vin, record.topic), record.recordJson, 'record');
    }
    switch (record.topic) {
      case 'V':
        this.setAvailability(vin, car, true);
        if (record.recordJson !== null) this.vehicleData(vin, car, record.recordJson);
        break;
      case 'connectivity':
        if (record.recordJson !== null) {
          const parsed = parseJson(record.recordJson);
          const status = isObject(parsed) ? parsed.status : undefined;
          if (status === 'CONNECTED') this.setAvailability(vin, car, true);
          else if (status === 'DISCONNECTED') this.setAvailability(vin, car, false);
        }
        break;
      case 'alerts':
      case 'errors':
        if (record.recordJson !== null) this.events(vin, record.topic, record.recordJson);
        break;
      default:
        break;
    }
  }

  /** A car on a new connection: publish every field it sends next, changed here or not. */
  private followSession(car: CarState, vin: string): void {
    const connections = this.options.sessions?.get(vin)?.connections;
    if (connections === undefined || connections.length === 0) return;
    if (car.session !== null && connections.includes(car.session)) return;
    if (car.session !== null) {
      car.fields.clear();
      car.locationPayload = null;
    }
    car.session = connections[0]!;
  }

  private car(vin: string): CarState {
    let car = this.cars.get(vin);
    if (car === undefined) {
      car = { online: null, fields: new Map(), announced: new Set(), location: null, heading: null, locationPayload: null, session: null };
      this.cars.set(vin, car);
      for (const field of this.options.configuredFields) this.announceField(vin, car, field);
      if (BATTERY_POWER_INPUTS.every((field) => this.options.configuredFields.includes(field))) this.announceField(vin, car, DERIVED_BATTERY_POWER);
    }
    return car;
  }

  private vehicleData(vin: string, car: CarState, recordJson: string): void {
    const parsed = parseJson(recordJson);
    const data: unknown[] = isObject(parsed) && Array.isArray(parsed.data) ? parsed.data : [];
    let powerInputChanged = false;
    let locationChanged = false;
    for (const datum of data) {
      if (!isObject(datum) || !isObject(datum.value)) continue;
      const field = typeof datum.key === 'number' ? String(datum.key) : typeof datum.key === 'string' ? datum.key : null;
      if (field === null || !/^[A-Za-z0-9_]+$/.test(field)) continue;
      const value: ValueJson = datum.value;
      const changed = this.setField(vin, car, field, JSON.stringify(value));
      this.announceField(vin, car, field);
      if (field === 'PackVoltage' || field === 'PackCurrent') powerInputChanged ||= changed;
      if (field === 'Location') {
        const location = value.locationValue;
        if (isObject(location) && typeof location.latitude === 'number' && typeof location.longitude === 'number') {
          car.location = { latitude: location.latitude, longitude: location.longitude };
          locationChanged = true;
        }
      } else if (field === 'GpsHeading') {
        const heading = numberOf(value);
        if (heading !== null) {
          car.heading = heading;
          locationChanged = true;
        }
      }
    }
    if (powerInputChanged) this.deriveBatteryPower(vin, car);
    if (locationChanged && car.location !== null) this.publishLocation(vin, car);
  }

  /** Publishes when the value changed or the heartbeat is due; returns whether it changed. */
  private setField(vin: string, car: CarState, field: string, payload: string): boolean {
    const now = this.now();
    const known = car.fields.get(field);
    const changed = known === undefined || known.payload !== payload;
    const heartbeatDue = !changed && this.options.heartbeatMs > 0 && now - (known as PublishedValue).at >= this.options.heartbeatMs;
    if (!changed && !heartbeatDue) return false;
    if (known === undefined) car.fields.set(field, { payload, at: now });
    else {
      known.payload = payload;
      known.at = now;
    }
    this.options.link.publishRetained(this.options.topics.field(vin, field), payload, 'state');
    return changed;
  }

  /** Pack voltage x pack current: what the battery delivers (positive) or takes (negative), in kW. */
  private deriveBatteryPower(vin: string, car: CarState): void {
    const voltage = numberFromPayload(car.fields.get('PackVoltage')?.payload);
    const current = numberFromPayload(car.fields.get('PackCurrent')?.payload);
    if (voltage === null || current === null) return;
    const kw = Math.round(voltage * current) / 1000;
    this.setField(vin, car, DERIVED_BATTERY_POWER, JSON.stringify({ doubleValue: kw }));
    this.announceField(vin, car, DERIVED_BATTERY_POWER);
  }

  private publishLocation(vin: string, car: CarState): void {
    const location = car.location as { latitude: number; longitude: number };
    // Tesla sends no accuracy; Home Assistant needs one to place a tracker in zones, and GPS in a car
    // is good to a few metres.
    const payload = JSON.stringify({
      latitude: location.latitude,
      longitude: location.longitude,
      gps_accuracy: 10,
      ...(car.heading !== null ? { heading: car.heading } : {}),
    });
    if (payload === car.locationPayload) return;
    car.locationPayload = payload;
    this.options.link.publishRetained(this.options.topics.location(vin), payload, 'state');
  }

  private setAvailability(vin: string, car: CarState, online: boolean): void {
    if (car.online === online) return;
    car.online = online;
    this.options.link.publishRetained(this.options.topics.availability(vin), online ? 'online' : 'offline', 'availability');
  }

  /** One message per alert or error, so an automation can trigger on each. */
  private events(vin: string, topic: 'alerts' | 'errors', recordJson: string): void {
    const record = parseJson(recordJson);
    if (!isObject(record)) return;
    const items = record[topic];
    const topicName = this.options.topics.event(vin, topic);
    if (!Array.isArray(items)) return;
    for (const item of items as unknown[]) {
      this.options.link.publishEvent(topicName, JSON.stringify({ vin, createdAt: record.createdAt ?? null, ...(isObject(item) ? item : {}) }), 'event');
    }
  }

  private announceField(vin: string, car: CarState, field: string): void {
    if (!this.options.discovery) return;
    const entities = ENTITIES_BY_FIELD.get(field);
    if (entities === undefined) return;
    for (const entity of entities) {
      if (car.announced.has(entity.objectId)) continue;
      car.announced.add(entity.objectId);
      this.announce(vin, entity);
    }
  }

  private announce(vin: string, entity: HaEntity): void {
    const message = discoveryMessage(entity, vin, { topics: this.options.topics, serverVersion: this.options.serverVersion });
    this.options.link.publishRetained(message.topic, message.payload, 'discovery');
  }

  private republishCar(vin: string, car: CarState): void {
    const { link, topics } = this.options;
    if (this.options.discovery) {
      for (const entity of HA_ENTITIES) if (car.announced.has(entity.objectId)) this.announce(vin, entity);
    }
    if (car.online !== null) link.publishRetained(topics.availability(vin), car.online ? 'online' : 'offline', 'availability');
    for (const [field, value] of car.fields) link.publishRetained(topics.field(vin, field), value.payload, 'state');
    if (car.locationPayload !== null) link.publishRetained(topics.location(vin), car.locationPayload, 'state');
  }
}

/** Every retained topic that can exist for a car: what removing it clears. */
export function removalMessages(vin: string, topics: MqttTopics, fields: readonly string[]): Array<{ topic: string }> {
  const out: Array<{ topic: string }> = HA_ENTITIES.map((entity) => ({ topic: topics.discovery(entity.component, vin, entity.objectId) }));
  for (const field of new Set([...fields, ...ENTITIES_BY_FIELD.keys()])) out.push({ topic: topics.field(vin, field) });
  out.push({ topic: topics.location(vin) }, { topic: topics.availability(vin) });
  return out;
}

function numberOf(value: ValueJson): number | null {
  if (value.invalid !== undefined) return null;
  for (const member of Object.values(value)) {
    const n = typeof member === 'number' ? member : typeof member === 'string' ? Number(member) : Number.NaN;
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

function numberFromPayload(payload: string | undefined): number | null {
  if (payload === undefined) return null;
  const value = parseJson(payload);
  return isObject(value) ? numberOf(value) : null;
}
