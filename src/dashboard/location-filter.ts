/**
 * Tesla puts a car's whereabouts behind the `vehicle_location` scope; a Tesla-token dashboard without it
 * gets every message with these fields taken out. Field names from telemetry.vehicle_data.Field.
 */
export const LOCATION_FIELDS: ReadonlySet<string> = new Set([
  'Location',
  'GpsState',
  'GpsHeading',
  'OriginLocation',
  'DestinationLocation',
  'DestinationName',
  'RouteLine',
  'RouteLastUpdated',
  'RouteTrafficMinutesDelay',
  'MilesToArrival',
  'MinutesToArrival',
  'LocatedAtHome',
  'LocatedAtWork',
  'LocatedAtFavorite',
]);

export const TESLA_LOCATION_SCOPE = 'vehicle_location';

/** Cheap pre-check: a message naming none of the fields (most) is passed on untouched, unparsed. */
const MENTION = new RegExp(`"(${[...LOCATION_FIELDS].join('|')})"`);

/**
 * The message without location fields: `record` messages lose those data entries, `snapshot` messages
 * those state keys. Anything else (or anything unparsable) is returned as it came.
 */
export function withoutLocation(message: string): string {
  if (!MENTION.test(message)) return message;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(message) as Record<string, unknown>;
  } catch {
    return message;
  }
  if (parsed.type === 'record') {
    const record = parsed.record as { data?: unknown } | undefined;
    if (record !== undefined && Array.isArray(record.data)) {
      record.data = record.data.filter((datum: { key?: unknown }) => !LOCATION_FIELDS.has(String(datum?.key)));
    }
    return JSON.stringify(parsed);
  }
  if (parsed.type === 'snapshot' && typeof parsed.state === 'object' && parsed.state !== null) {
    const state = parsed.state as Record<string, unknown>;
    for (const key of Object.keys(state)) if (LOCATION_FIELDS.has(key)) delete state[key];
    return JSON.stringify(parsed);
  }
  return message;
}
