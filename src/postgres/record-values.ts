import type { BusRecord } from '../bus/record-bus.js';
import { isObject, parseJson } from '../safety/json-reader.js';

/** One datum as a database row: [VIN, signal name, epoch ms, number or null, text or null]. */
export type ValueRow = [string, string, number, number | null, string | null];

/**
 * Every datum of a vehicle-data record as value rows: numbers (booleans as 0/1) in `num`, enums and
 * strings in `txt`, structured values (location, doors, ...) as their JSON in `txt`. Unreadable
 * (`invalid`) readings are skipped. The time is the record's created_at, else when it was received.
 */
export function valueRows(record: BusRecord, into: ValueRow[]): number {
  if (record.topic !== 'V' || record.recordJson === null) return 0;
  const parsed = parseJson(record.recordJson);
  if (!isObject(parsed)) return 0;
  const created = typeof parsed.createdAt === 'string' ? Date.parse(parsed.createdAt) : NaN;
  const at = Number.isFinite(created) ? created : record.receivedAt;
  let added = 0;
  for (const datum of Array.isArray(parsed.data) ? (parsed.data as unknown[]) : []) {
    if (!isObject(datum) || !isObject(datum.value)) continue;
    const member = Object.keys(datum.value)[0];
    if (member === undefined || member === 'invalid') continue;
    const value = datum.value[member];
    let num: number | null = null;
    let txt: string | null = null;
    if (typeof value === 'number') num = value;
    else if (typeof value === 'boolean') num = value ? 1 : 0;
    else if (typeof value === 'string') {
      // 64-bit integers come as decimal strings; NaN/Infinity as strings too.
      const n = member === 'longValue' || member === 'doubleValue' || member === 'floatValue' || member === 'intValue' ? Number(value) : NaN;
      if (Number.isFinite(n)) num = n;
      else txt = value;
    } else txt = JSON.stringify(value);
    into.push([record.vin, String(datum.key), at, num, txt]);
    added++;
  }
  return added;
}
