import { isObject, parseJson } from '../safety/json-reader.js';

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
  let parsed: unknown;
  try {
    parsed = parseJson(message);
  } catch {
    return message;
  }
  if (!isObject(parsed)) return message;
  if (parsed.type === 'record') {
    const record = parsed.record;
    if (isObject(record) && Array.isArray(record.data)) {
      record.data = (record.data as unknown[]).filter((datum) => !(isObject(datum) && LOCATION_FIELDS.has(String(datum.key))));
    }
    return JSON.stringify(parsed);
  }
  if (parsed.type === 'snapshot' && isObject(parsed.state)) {
    const state = parsed.state;
    for (const key of Object.keys(state)) if (LOCATION_FIELDS.has(key)) delete state[key];
    return JSON.stringify(parsed);
  }
  return message;
}
