/**
 * The topic layout (docs/HOME-ASSISTANT.md "Topics"). Everything lives under one prefix so a broker ACL
 * can grant the server `<prefix>/#` plus the discovery prefix and nothing else.
 */
export class MqttTopics {
  constructor(
    readonly prefix: string,
    readonly discoveryPrefix: string,
  ) {}

  /** Retained: the field's canonical Value JSON. */
  field(vin: string, field: string): string {
    return `${this.prefix}/${vin}/v/${field}`;
  }

  /** Retained: `online` / `offline` as the car connects and disconnects. */
  availability(vin: string): string {
    return `${this.prefix}/${vin}/availability`;
  }

  /** Retained: `{"latitude","longitude","gps_accuracy","heading"}` for the device tracker. */
  location(vin: string): string {
    return `${this.prefix}/${vin}/location`;
  }

  /** Not retained: one message per alert or error the car raises. */
  event(vin: string, topic: 'alerts' | 'errors'): string {
    return `${this.prefix}/${vin}/${topic}`;
  }

  /** Not retained, opt-in: every whole record as canonical JSON. */
  record(vin: string, topic: string): string {
    return `${this.prefix}/${vin}/record/${topic}`;
  }

  /** Retained: `online` while the server is connected, `offline` (its last will) when it is gone. */
  get serverStatus(): string {
    return `${this.prefix}/status`;
  }

  /** Anyone may ask the servers to forget a car: `<prefix>/<VIN>/remove` (the CLI does). */
  get removeRequests(): string {
    return `${this.prefix}/+/remove`;
  }

  removeRequest(vin: string): string {
    return `${this.prefix}/${vin}/remove`;
  }

  /** Where Home Assistant says it (re)started: its birth message `online`. */
  get homeAssistantStatus(): string {
    return `${this.discoveryPrefix}/status`;
  }

  discovery(component: string, vin: string, objectId: string): string {
    return `${this.discoveryPrefix}/${component}/${vin}/${objectId}/config`;
  }

  /** The VIN of a `<prefix>/<VIN>/remove` topic, or null. */
  vinOfRemoveRequest(topic: string): string | null {
    const head = `${this.prefix}/`;
    if (!topic.startsWith(head) || !topic.endsWith('/remove')) return null;
    const vin = topic.slice(head.length, -'/remove'.length);
    return isTopicSafeVin(vin) ? vin : null;
  }
}

/**
 * A device id that can be a topic level and a Home Assistant node id as it is. VINs always are; an
 * operator CA could issue a CN with `/`, `+` or `#`, and such a car is not published (counted instead).
 */
export function isTopicSafeVin(vin: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(vin);
}
