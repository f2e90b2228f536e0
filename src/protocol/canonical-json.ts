// Canonical protobuf JSON (tesla-protocol.md section 4) for messages decoded by protobufjs.
//
// Rules, chosen to match what the reference server emits (Go protojson with unpopulated fields shown):
// - keys are the protoc JSON names (lowerCamelCase: `semi_middle_axle_left_2` -> `semiMiddleAxleLeft2`),
//   written in declaration order; fields of a oneof appear only when that member is set;
// - unset fields are written with their default: scalars as 0 / false / "", enums as their zero name,
//   messages as null, repeated fields as [], maps as {} (map keys sorted);
// - enums as value names; numbers the schema does not know are kept as numbers (enums are open);
// - 64-bit integers as decimal strings; bytes as standard base64;
// - double: shortest round-trip text; float: the shortest text that reads back as the same float32
//   (not the longer text of its double widening); NaN / Infinity / -Infinity as strings; -0 as -0;
// - google.protobuf.Timestamp as RFC 3339 UTC with Z and 0, 3, 6 or 9 fractional digits, the fewest
//   that show the nanos exactly (`...:33Z`, `...:33.123Z`, `...:33.123456Z`, `...:33.123456789Z`);
//   a Timestamp outside 0001-01-01..9999-12-31 or with nanos outside 0..999,999,999 has no RFC 3339 form
//   and is refused with CanonicalJsonError (the reference fails on these too).
//
// protobufjs's own toObject({enums: String, longs: String, defaults: true}) already keeps unknown enum
// numbers, omits unset oneof members and gives null for unset messages, but it writes Timestamps as
// {seconds, nanos}, uses property names (`semiMiddleAxleLeft_2`) instead of JSON names, puts repeated and
// map fields first, widens floats to doubles, and builds an object tree that JSON.stringify then walks
// again. Here each message type gets one precomputed writer that goes straight from the decoded message
// to JSON text, with per-field work decided once at build time.
import protobuf from 'protobufjs';

import type { DecodedMessage, DecodedTimestamp } from './decoded-message.js';
type Type = protobuf.Type;
type Field = protobuf.Field;
type Enum = protobuf.Enum;

/** A value that cannot be written as canonical JSON (bad Timestamp, too many entries). */
export class CanonicalJsonError extends RangeError {
  override readonly name = 'CanonicalJsonError';
}

/** Writes one value (a message, or null) as JSON text; ctx is handed to taps untouched. */
export type JsonWriter = (value: unknown, ctx: unknown) => string;

/** Sees the JSON text written for one field of one message, e.g. to collect per-datum state. */
export type JsonTap = (json: string, message: DecodedMessage, ctx: unknown) => void;

export interface CanonicalJsonOptions {
  /** Repeated and map fields with more entries than this are refused (bounds output amplification). */
  maxEntries: number;
  /** Taps by `<message full name without leading dot>.<proto field name>`. */
  taps?: ReadonlyMap<string, JsonTap>;
}

const TIMESTAMP = '.google.protobuf.Timestamp';
export const MIN_SECONDS = -62_135_596_800; // 0001-01-01T00:00:00Z
export const MAX_SECONDS = 253_402_300_799; // 9999-12-31T23:59:59Z
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

/** A protobufjs int64 value (Long when long.js is present, number otherwise) as a number. */
export function int64ToNumber(v: unknown): number {
  if (v == null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return Number(v);
  return (v as { toNumber(): number }).toNumber();
}

function int64ToJson(v: unknown): string {
  if (v == null) return '"0"';
  if (typeof v === 'number') return `"${Number.isInteger(v) ? v.toFixed(0) : Math.trunc(v).toFixed(0)}"`;
  return `"${String(v)}"`;
}

function doubleToJson(v: number): string {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
}

/** Shortest decimal text that reads back (as float32) to the same float32 value. */
export function floatToJson(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return doubleToJson(v);
  const f = Math.fround(v);
  for (let p = 1; p < 10; p++) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return String(Number(s));
  }
  return String(f);
}

function bytesToJson(v: Uint8Array | null | undefined): string {
  if (v == null || v.length === 0) return '""';
  return `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`;
}

let lastSeconds = Number.NaN;
let lastPrefix = '';

/**
 * RFC 3339 UTC text of a Timestamp (without quotes). Consecutive records usually share their second,
 * so the date part of the last call is kept.
 */
export function formatTimestamp(secondsIn: unknown, nanosIn: unknown): string {
  const seconds = int64ToNumber(secondsIn);
  const nanos = nanosIn == null ? 0 : (nanosIn as number);
  if (!Number.isInteger(seconds) || seconds < MIN_SECONDS || seconds > MAX_SECONDS) {
    throw new CanonicalJsonError(`timestamp seconds ${String(secondsIn)} outside 0001-01-01..9999-12-31`);
  }
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw new CanonicalJsonError(`timestamp nanos ${String(nanosIn)} outside 0..999999999`);
  }
  if (seconds !== lastSeconds) {
    lastPrefix = civilSeconds(seconds);
    lastSeconds = seconds;
  }
  if (nanos === 0) return `${lastPrefix}Z`;
  if (nanos % 1_000_000 === 0) return `${lastPrefix}.${String(nanos / 1_000_000).padStart(3, '0')}Z`;
  if (nanos % 1_000 === 0) return `${lastPrefix}.${String(nanos / 1_000).padStart(6, '0')}Z`;
  return `${lastPrefix}.${String(nanos).padStart(9, '0')}Z`;
}

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/**
 * `YYYY-MM-DDTHH:MM:SS` of epoch seconds in 0001..9999, as Date.toISOString would start, without a
 * Date (formatting one was a large share of a record's decode; BENCHMARKS.md).
 */
function civilSeconds(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const secondOfDay = seconds - days * 86400;
  const hour = Math.floor(secondOfDay / 3600);
  const minute = Math.floor((secondOfDay - hour * 3600) / 60);
  const second = secondOfDay - hour * 3600 - minute * 60;
  return `${civilDate(days)}T${pad2(hour)}:${pad2(minute)}:${pad2(second)}`;
}

/**
 * `YYYY-MM-DD` of a day counted from 1970-01-01 (years 0001..9999).
 */
export function civilDate(days: number): string {
  const ymd = civilYmd(days);
  const year = Math.floor(ymd / 10000);
  return `${String(year).padStart(4, '0')}-${pad2(Math.floor(ymd / 100) % 100)}-${pad2(ymd % 100)}`;
}

/**
 * The civil date of a day counted from 1970-01-01 as year * 10000 + month * 100 + day, for years
 * 0001..9999: one number, so a caller that writes the digits itself allocates nothing. H. Hinnant's
 * proleptic Gregorian algorithm.
 */
export function civilYmd(days: number): number {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return year * 10000 + month * 100 + day;
}

function timestampToJson(value: unknown): string {
  if (value == null) return 'null';
  const m = value as DecodedTimestamp;
  return `"${formatTimestamp(m.seconds, m.nanos)}"`;
}

/** JSON text of each enum value by number: a quoted name, or the bare number when unknown. */
function enumWriter(e: Enum): (v: unknown) => string {
  const byNumber = new Map<number, string>();
  for (const [name, num] of Object.entries(e.values)) {
    if (!byNumber.has(num)) byNumber.set(num, JSON.stringify(name));
  }
  const nums = [...byNumber.keys()];
  const min = Math.min(...nums);
  const max = Math.max(...nums);
  if (min === 0 && max < 4096) {
    // Dense enums (Field has 260 values): an array index beats a Map lookup.
    const table: string[] = new Array<string>(max + 1);
    for (const [n, s] of byNumber) table[n] = s;
    const zero = table[0]!; // min === 0: byNumber has a name for 0
    return (v) => {
      if (v == null) return zero;
      const s = table[v as number];
      return s === undefined ? String(v) : s;
    };
  }
  const zero = byNumber.get(0) ?? '0';
  return (v) => {
    if (v == null) return zero;
    return byNumber.get(v as number) ?? String(v);
  };
}

type ValueWriter = (v: unknown, ctx: unknown) => string;

interface FieldPlan {
  prop: string; // protobufjs property name on decoded messages
  prefix: string; // `"jsonName":`
  commaPrefix: string; // `,"jsonName":`
  write: ValueWriter; // writes a present value
  absent: string; // JSON text when the property is unset
  tap: JsonTap | undefined;
}

type Step = { field: FieldPlan; oneof?: undefined } | { oneof: { members: Map<string, FieldPlan> }; field?: undefined };

/** Builds and caches one writer per message type reachable from a protobufjs root. */
export class CanonicalJson {
  private readonly writers = new Map<string, JsonWriter>();
  private readonly enums = new Map<string, (v: unknown) => string>();

  constructor(private readonly opts: CanonicalJsonOptions) {}

  /** The writer for a resolved message type (call root.resolveAll() first). */
  writer(type: Type): JsonWriter {
    const cached = this.writers.get(type.fullName);
    if (cached) return cached;
    if (type.fullName === TIMESTAMP) {
      const w: JsonWriter = timestampToJson;
      this.writers.set(type.fullName, w);
      return w;
    }
    if (type.fullName.startsWith('.google.protobuf.')) {
      throw new Error(`no canonical JSON rule for ${type.fullName}`);
    }
    const steps: Step[] = [];
    const writer: JsonWriter = (value, ctx) => {
      if (value == null) return 'null';
      const m = value as DecodedMessage;
      let s = '{';
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!;
        let f: FieldPlan | undefined = step.field;
        let json: string;
        if (f !== undefined) {
          const v = m[f.prop];
          json = v == null ? f.absent : f.write(v, ctx);
        } else {
          // Only the member set last counts: protobufjs's decoder deletes the others when it sets one,
          // and hand-made objects are read the same way (the last own key wins).
          const members = step.oneof!.members;
          const keys = Object.keys(m);
          for (let k = 0; k < keys.length; k++) {
            const p = members.get(keys[k]!);
            if (p !== undefined && m[keys[k]!] != null) f = p;
          }
          if (f === undefined) continue;
          json = f.write(m[f.prop], ctx);
        }
        if (f.tap !== undefined) f.tap(json, m, ctx);
        s += (s.length === 1 ? f.prefix : f.commaPrefix) + json;
      }
      return `${s}}`;
    };
    this.writers.set(type.fullName, writer);

    const seenOneofs = new Set<string>();
    for (const field of type.fieldsArray) {
      field.resolve();
      const oneof = field.partOf;
      if (oneof) {
        if (seenOneofs.has(oneof.name)) continue;
        seenOneofs.add(oneof.name);
        const members = new Map<string, FieldPlan>();
        for (const member of oneof.fieldsArray) members.set(member.name, this.plan(type, member));
        steps.push({ oneof: { members } });
      } else {
        steps.push({ field: this.plan(type, field) });
      }
    }
    return writer;
  }

  private plan(type: Type, field: Field): FieldPlan {
    const json = field.jsonName ?? protobuf.util.jsonName(field.name);
    const tapKey = `${type.fullName.slice(1)}.${field.protoName ?? field.name}`;
    const tap = this.opts.taps?.get(tapKey);
    const prefix = `${JSON.stringify(json)}:`;
    const commaPrefix = `,${prefix}`;
    const max = this.opts.maxEntries;
    const where = `${type.fullName.slice(1)}.${field.name}`;

    if (field.map) {
      // protobufjs keys 64-bit map keys by an internal hash string, which JSON must not show.
      if (LONG_TYPES.has((field as unknown as { keyType: string }).keyType)) {
        throw new Error(`no canonical JSON rule for 64-bit map keys (${where})`);
      }
      const valueWrite = this.single(field, field.type);
      const write: ValueWriter = (value, ctx) => {
        const obj = value as DecodedMessage;
        const keys = Object.keys(obj);
        if (keys.length > max) throw new CanonicalJsonError(`${where}: ${keys.length} entries, limit ${max}`);
        if (keys.length === 0) return '{}';
        keys.sort();
        let s = '{';
        for (let i = 0; i < keys.length; i++) {
          if (i > 0) s += ',';
          s += `${JSON.stringify(keys[i])}:${valueWrite(obj[keys[i]!], ctx)}`;
        }
        return `${s}}`;
      };
      return { prop: field.name, prefix, commaPrefix, write, absent: '{}', tap };
    }
    if (field.repeated) {
      const elem = this.single(field, field.type);
      const write: ValueWriter = (value, ctx) => {
        const arr = value as readonly unknown[];
        const n = arr.length;
        if (n > max) throw new CanonicalJsonError(`${where}: ${n} entries, limit ${max}`);
        if (n === 0) return '[]';
        let s = `[${elem(arr[0], ctx)}`;
        for (let i = 1; i < n; i++) s += `,${elem(arr[i], ctx)}`;
        return `${s}]`;
      };
      return { prop: field.name, prefix, commaPrefix, write, absent: '[]', tap };
    }
    const write = this.single(field, field.type);
    return { prop: field.name, prefix, commaPrefix, write, absent: this.absent(field), tap };
  }

  /** Writer for one non-repeated value of the field's (value) type. */
  private single(field: Field, typeName: string): ValueWriter {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      let w = this.enums.get(rt.fullName);
      if (!w) this.enums.set(rt.fullName, (w = enumWriter(rt)));
      return w;
    }
    if (rt instanceof protobuf.Type) {
      const mw = this.writer(rt);
      return mw;
    }
    if (typeName === 'string') return (v) => JSON.stringify(v);
    if (typeName === 'bool') return (v) => (v ? 'true' : 'false');
    if (typeName === 'double') return doubleToJson as ValueWriter;
    if (typeName === 'float') return floatToJson as ValueWriter;
    if (typeName === 'bytes') return bytesToJson as ValueWriter;
    if (INT_TYPES.has(typeName)) return (v) => String(v);
    if (LONG_TYPES.has(typeName)) return int64ToJson;
    throw new Error(`no canonical JSON rule for field type ${typeName}`);
  }

  private absent(field: Field): string {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) return this.single(field, field.type)(0, undefined);
    if (rt instanceof protobuf.Type) return 'null';
    if (field.type === 'string' || field.type === 'bytes') return '""';
    if (field.type === 'bool') return 'false';
    if (LONG_TYPES.has(field.type)) return '"0"';
    return '0';
  }
}
