import type { HaEntity } from './ha-entities.js';
import type { MqttTopics } from './mqtt-topics.js';
import { modelFromVin } from './vin-model.js';

/** One discovery message: retained config on `<discovery prefix>/<component>/<VIN>/<object>/config`. */
export interface DiscoveryMessage {
  topic: string;
  payload: string;
}

export interface DiscoveryContext {
  topics: MqttTopics;
  /** Shown as the device's software origin. */
  serverVersion: string;
}

/**
 * The config of one entity of one car. Home Assistant's full key names are used (not the abbreviations)
 * so a person reading the broker can follow them; the device block repeats in every config because Home
 * Assistant creates the device from whichever entity it sees first.
 */
export function discoveryMessage(entity: HaEntity, vin: string, context: DiscoveryContext): DiscoveryMessage {
  // Built once per entity with placeholders, then filled in per car: a thousand cars arriving at once
  // cost string joins, not a thousand object builds and JSON.stringify calls per entity.
  const key = `${context.topics.prefix}\u0000${context.topics.discoveryPrefix}\u0000${context.serverVersion}\u0000${entity.objectId}`;
  let template = TEMPLATES.get(key);
  if (template === undefined || template.entity !== entity) {
    const built = buildDiscoveryMessage(entity, VIN_MARK, MODEL_MARK, context);
    template = { entity, topic: built.topic.split(VIN_MARK), payload: built.payload.split(VIN_MARK).map((part) => part.split(MODEL_MARK)) };
    TEMPLATES.set(key, template);
  }
  const model = modelFromVin(vin);
  return {
    topic: template.topic.join(vin),
    payload: template.payload.map((parts) => parts.join(model)).join(vin),
  };
}

/** Placeholders that cannot occur in a VIN, a model name or the catalogue (and survive JSON as they are). */
const VIN_MARK = '@@VIN@@';
const MODEL_MARK = '@@MODEL@@';
const TEMPLATES = new Map<string, { entity: HaEntity; topic: string[]; payload: string[][] }>();

/** The config itself. `vin` is a topic-safe id ([A-Za-z0-9_-]), so it needs no JSON escaping. */
function buildDiscoveryMessage(entity: HaEntity, vin: string, model: string, context: DiscoveryContext): DiscoveryMessage {
  const { topics } = context;
  const config: Record<string, unknown> = {
    name: entity.name,
    unique_id: `tesla_${vin}_${entity.objectId}`,
    device: {
      identifiers: [`tesla_${vin}`],
      name: `Tesla ${vin}`,
      manufacturer: 'Tesla',
      model,
      serial_number: vin,
    },
    origin: { name: 'fleet-telemetry-ts', sw_version: context.serverVersion },
    // The car's own availability and the server's: a server that died leaves its last will, so
    // entities go unavailable instead of showing frozen values as live.
    availability: [{ topic: topics.serverStatus }, { topic: topics.availability(vin) }],
    availability_mode: 'all',
    payload_available: 'online',
    payload_not_available: 'offline',
    qos: 1,
  };
  if (entity.component === 'device_tracker') {
    config.json_attributes_topic = topics.location(vin);
    config.source_type = 'gps';
  } else {
    config.state_topic = topics.field(vin, entity.field);
    if (entity.valueTemplate !== undefined) config.value_template = entity.valueTemplate;
  }
  if (entity.deviceClass !== undefined) config.device_class = entity.deviceClass;
  if (entity.unit !== undefined) config.unit_of_measurement = entity.unit;
  if (entity.stateClass !== undefined) config.state_class = entity.stateClass;
  if (entity.options !== undefined) config.options = entity.options;
  if (entity.entityCategory !== undefined) config.entity_category = entity.entityCategory;
  if (entity.icon !== undefined) config.icon = entity.icon;
  if (entity.suggestedDisplayPrecision !== undefined) config.suggested_display_precision = entity.suggestedDisplayPrecision;
  return { topic: topics.discovery(entity.component, vin, entity.objectId), payload: JSON.stringify(config) };
}
