/**
 * The one list of the record topics Tesla defines (tesla-protocol.md): every other topic a car sends
 * passes through opaque and shares the `other` metric label.
 */
export const KNOWN_TOPICS = ['V', 'alerts', 'errors', 'connectivity'] as const;
export type KnownTopic = (typeof KNOWN_TOPICS)[number];
