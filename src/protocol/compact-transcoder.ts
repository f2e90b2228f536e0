// The compact transcoder of V records, for lone frames decoded on the main thread.
//
// The generated transcoder (transcoder.ts) has one specialised function per message type: fast warm,
// but a lone V frame runs ~40 KB of its optimised code (the Value reader alone ~11 KB), and between two
// lone frames the server's other work evicts all of it from the instruction cache and the branch
// predictor (BENCHMARKS.md, engineer V). This one reads a V Payload with three small loops, the Payload,
// the Datum and the Value, and a loop over typed-array tables for the Value's message members
// (LocationValue, Doors, Time, TireLocation), built once from the same protobufjs reflection. It runs
// inside the generated transcoder's closure and shares its wire readers and JSON writers (ts, wd, vstr,
// ...), so its output is the generated one's byte for byte (test/unit/compact-transcoder.test.ts).
// Anything else bails to the generated transcoder: other topics, a Value member of a type it has no
// table kind for, and whatever the generated functions would bail on themselves.
import protobuf from 'protobufjs';
import { toWords } from './json-sink.js';

type Field = protobuf.Field;

/** What a Value member is, by field number (CK): how it is read and written. */
export const MEMBER = { NONE: 0, STRING: 1, INT32: 2, INT64: 3, FLOAT: 4, DOUBLE: 5, BOOL: 6, MESSAGE: 7, ENUM: 8 } as const;
/** The wire type each member kind is read from (others are skipped, as protobufjs does). */
const WIRE = [-1, 2, 0, 0, 5, 1, 0, 2, 0];
/** What the samples read from a member (DATUM_VALUE_KIND): 0 nothing, 1 a number, 2 an enum, 3 a location. */
const SAMPLE = { NONE: 0, NUMBER: 1, ENUM: 2, LOCATION: 3 } as const;
/** A plain message's field kinds (PK): bool, int32, uint32, double. */
const PLAIN = { BOOL: 1, INT32: 2, UINT32: 3, DOUBLE: 4 } as const;
/** Field numbers the tables cover (a Value member or a plain message's field beyond it bails). */
const MAX_FIELD = 64;
const MAX_PLAIN_FIELDS = 16;

/** The tables the compact source reads, as R.compact. */
export interface CompactTables {
  /** Value members by field number: kind (MEMBER), wire type, sample kind, enum index or plain message index. */
  kind: Int8Array;
  wire: Int8Array;
  sample: Int8Array;
  arg: Int32Array;
  /** `{"<member json name>":` by field number, as words. */
  open: Int32Array[];
  /** Plain messages: field numbers and kinds in declaration order, `{"key":` / `,"key":` words; `{}` when empty. */
  plainIds: Int32Array[];
  plainKinds: Int8Array[];
  plainKeys: Int32Array[][];
  /** The plain message that is LocationValue (its latitude and longitude go to VF[2], VF[3]), and their places. */
  location: number;
  latitudeAt: number;
  longitudeAt: number;
  /** Payload field numbers: data, created_at, vin, is_resend; Datum: key, value. */
  payload: Int32Array;
  datum: Int32Array;
  /** The Datum key's enum index (EN, ENW) and `{"key":<name>,"value":` by key number, as words. */
  keyEnum: number;
  datumHeads: Int32Array[];
  /** `{"data":[`, `,"createdAt":`, `,"vin":`, `,"isResend":` as words. */
  texts: Int32Array[];
}

function protoNameOf(field: Field): string {
  return (field as unknown as { protoName?: string }).protoName ?? field.name;
}

function jsonNameOf(field: Field): string {
  return field.jsonName ?? protobuf.util.jsonName(field.name);
}

/**
 * The tables for the V record type `payloadType`, or null when its shape is not the one the compact
 * source reads (then every V frame takes the generated transcoder). `enumIndex` and `enumJson` are the
 * generated transcoder's, so enums are written from the same tables.
 */
export function compactTables(
  payloadType: protobuf.Type,
  enumIndex: (e: protobuf.Enum) => number,
  enumJson: (e: protobuf.Enum) => (v: number) => string,
  timestampName: string,
  locationName: string,
): CompactTables | null {
  const fields = payloadType.fieldsArray.map((f) => f.resolve());
  const names = fields.map((f) => `${protoNameOf(f)}:${f.repeated ? 'repeated ' : ''}${f.type}`);
  if (names.join(',') !== 'data:repeated Datum,created_at:google.protobuf.Timestamp,vin:string,is_resend:bool') return null;
  if (fields.some((f) => f.partOf || f.map)) return null;
  const data = fields[0]!;
  const datumType = data.resolvedType;
  const timestamp = fields[1]!.resolvedType;
  if (!(datumType instanceof protobuf.Type) || !(timestamp instanceof protobuf.Type) || timestamp.fullName.slice(1) !== timestampName) return null;
  const datumFields = datumType.fieldsArray.map((f) => f.resolve());
  const [key, value] = datumFields;
  if (datumFields.length !== 2 || !key || !value || key.repeated || value.repeated || key.partOf || value.partOf || key.map || value.map) return null;
  if (protoNameOf(key) !== 'key' || protoNameOf(value) !== 'value' || !(key.resolvedType instanceof protobuf.Enum)) return null;
  const valueType = value.resolvedType;
  if (!(valueType instanceof protobuf.Type)) return null;
  const members = valueType.fieldsArray.map((f) => f.resolve());
  if (valueType.oneofsArray.length !== 1 || members.some((f) => f.partOf !== valueType.oneofsArray[0] || f.repeated || f.map || f.id >= MAX_FIELD)) return null;
  const stringMembers = members.filter((f) => protoNameOf(f) === 'string_value' && f.type === 'string');
  if (stringMembers.length !== 1) return null;

  const tables: CompactTables = {
    kind: new Int8Array(MAX_FIELD), wire: new Int8Array(MAX_FIELD).fill(-1), sample: new Int8Array(MAX_FIELD), arg: new Int32Array(MAX_FIELD), open: [],
    plainIds: [], plainKinds: [], plainKeys: [], location: -1, latitudeAt: -1, longitudeAt: -1,
    payload: Int32Array.from(fields.map((f) => f.id)), datum: Int32Array.from([key.id, value.id]),
    keyEnum: enumIndex(key.resolvedType), datumHeads: [],
    texts: [`{${JSON.stringify(jsonNameOf(fields[0]!))}:[`, `,${JSON.stringify(jsonNameOf(fields[1]!))}:`, `,${JSON.stringify(jsonNameOf(fields[2]!))}:`, `,${JSON.stringify(jsonNameOf(fields[3]!))}:`].map(toWords),
  };
  const keyName = enumJson(key.resolvedType);
  for (let n = 0; n < 4096; n++) {
    const name = keyName(n);
    if (name.startsWith('"')) tables.datumHeads[n] = toWords(`{${JSON.stringify(jsonNameOf(key))}:${name},${JSON.stringify(jsonNameOf(value))}:`);
  }
  const plainIndex = new Map<string, number>();
  const plain = (type: protobuf.Type): number => {
    const known = plainIndex.get(type.fullName);
    if (known !== undefined) return known;
    const plainFields = type.fieldsArray.map((f) => f.resolve());
    if (plainFields.length > MAX_PLAIN_FIELDS) return -1;
    const kinds: number[] = [];
    for (const f of plainFields) {
      if (f.repeated || f.map || f.partOf || f.id >= MAX_FIELD || f.resolvedType) return -1;
      const kind = f.type === 'bool' ? PLAIN.BOOL : f.type === 'int32' ? PLAIN.INT32 : f.type === 'uint32' ? PLAIN.UINT32 : f.type === 'double' ? PLAIN.DOUBLE : 0;
      if (kind === 0) return -1;
      kinds.push(kind);
    }
    const index = tables.plainIds.length;
    tables.plainIds.push(Int32Array.from(plainFields.map((f) => f.id)));
    tables.plainKinds.push(Int8Array.from(kinds));
    tables.plainKeys.push(plainFields.map((f, i) => toWords(`${i === 0 ? '{' : ','}${JSON.stringify(jsonNameOf(f))}:`)));
    if (type.fullName.slice(1) === locationName) {
      const at = (name: string): number => plainFields.findIndex((f) => protoNameOf(f) === name && f.type === 'double');
      tables.location = index;
      tables.latitudeAt = at('latitude');
      tables.longitudeAt = at('longitude');
      if (tables.latitudeAt < 0 || tables.longitudeAt < 0) return -1;
    }
    plainIndex.set(type.fullName, index);
    return index;
  };
  for (const m of members) {
    const rt = m.resolvedType;
    let kind: number = MEMBER.NONE;
    let sample: number = SAMPLE.NONE;
    let arg = 0;
    // The samples' rules are valueWithSample's (transcoder.ts): by member name and type.
    if (rt instanceof protobuf.Enum) {
      kind = MEMBER.ENUM;
      arg = enumIndex(rt);
      sample = SAMPLE.ENUM;
    } else if (rt instanceof protobuf.Type) {
      arg = plain(rt);
      // A member of a type without a table kind is left out: it bails (MEMBER.NONE would skip it).
      if (arg < 0) return null;
      kind = MEMBER.MESSAGE;
      if (protoNameOf(m) === 'location_value' && rt.fullName.slice(1) === locationName) sample = SAMPLE.LOCATION;
    } else {
      const byType: Record<string, [number, string]> = {
        string: [MEMBER.STRING, ''], int32: [MEMBER.INT32, 'int_value'], int64: [MEMBER.INT64, 'long_value'], float: [MEMBER.FLOAT, 'float_value'],
        double: [MEMBER.DOUBLE, 'double_value'], bool: [MEMBER.BOOL, 'boolean_value'],
      };
      const rule = byType[m.type];
      if (!rule) return null;
      kind = rule[0];
      if (protoNameOf(m) === rule[1]) sample = SAMPLE.NUMBER;
    }
    tables.kind[m.id] = kind;
    tables.wire[m.id] = WIRE[kind]!;
    tables.sample[m.id] = sample;
    tables.arg[m.id] = arg;
    tables.open[m.id] = toWords(`{${JSON.stringify(jsonNameOf(m))}:`);
  }
  if (tables.kind[stringMembers[0]!.id] !== MEMBER.STRING) return null;
  return tables;
}

/**
 * The compact source, inside the generated transcoder's closure (it uses its readers, writers and
 * state: B, P, ON, VT, VF, ...). `cp` writes a V Payload as m<Payload> does; `cd` a Datum; `cv` a Value.
 */
export const COMPACT_SOURCE = String.raw`
var CT = R.compact, CK = CT === null ? null : CT.kind, CW = CT === null ? null : CT.wire, CS = CT === null ? null : CT.sample, CA = CT === null ? null : CT.arg;
var PV = new Float64Array(16);
function cp(s, e) {
  var t = 0, u = 0, l = 0, fn = 0, c = 0, cs = -1, ce = -1, cn = 0, rs = 0, ids = CT.payload;
  P = s;
  while (P < e) {
    t = tg(e); u = t & 7; fn = t >>> 3;
    if (fn === ids[0] && u === 2) { l = sz(e); if (P + l > e) throw BAIL; P += l; c++; }
    else if (fn === ids[1] && u === 2) { l = sz(e); cs = P; ce = P + l; if (ce > e) throw BAIL; P = ce; cn++; }
    else if (fn === ids[2] && u === 2) { l = sz(e); var vs = P, ve = P + l; if (ve > e) throw BAIL; str(vs, ve); P = ve; }
    else if (fn === ids[3] && u === 0) rs = rb(e);
    else sk(u, fn, e);
  }
  if (c > MAX || cn > 1) throw BAIL;
  INFO.signals = c;
  if (HK !== null) { var hk = HK; HK = null; O.n = ON; hk(rs !== 0); ON = O.n; gr(0); }
  INFO.recordStart = ON;
  var tx = CT.texts;
  wl(tx[0]);
  if (c > 0) {
    var first = true, at = s;
    while (at < e) {
      P = at; t = tg(e); u = t & 7;
      if (t >>> 3 === ids[0] && u === 2) { l = sz(e); var a = P; at = a + l; if (!first) wb(44); first = false; cd(a, at); }
      else { sk(u, t >>> 3, e); at = P; }
    }
  }
  wb(93);
  wl(tx[1]);
  if (cs >= 0) { var span = ts(cs, ce, false); INFO.createdAtStart = Math.floor(span / 4294967296); INFO.createdAtEnd = span % 4294967296; INFO.createdAtMs = TSMS; }
  else wa('null');
  wl(tx[2]);
  wv(VIN);
  wl(tx[3]);
  if (rs !== 0) wa('true'); else wa('false');
  wb(125);
}
function cd(s, e) {
  var t = 0, u = 0, l = 0, fn = 0, k = 0, vs = -1, ve = -1, vn = 0, ids = CT.datum;
  P = s;
  // A datum as cars send it (key 1, value 2, nothing else): read without the loop, as m<Datum> does.
  if (ids[0] === 1 && ids[1] === 2 && e - s >= 4 && B[s] === 8) { var fk = B[s + 1], fp = s + 2; if (fk >= 128) { if (B[fp] < 128) { fk = (fk & 127) | (B[fp] << 7); fp++; } else fp = e; } if (fp + 2 <= e && B[fp] === 18 && B[fp + 1] < 128 && fp + 2 + B[fp + 1] === e) { k = fk; vs = fp + 2; ve = e; vn = 1; P = e; } }
  while (P < e) {
    t = tg(e); u = t & 7; fn = t >>> 3;
    if (fn === ids[0] && u === 0) k = rv(e) | 0;
    else if (fn === ids[1] && u === 2) { l = sz(e); vs = P; ve = P + l; if (ve > e) throw BAIL; P = ve; vn++; }
    else sk(u, fn, e);
  }
  if (vn > 1) throw BAIL;
  var hd = CT.datumHeads[k];
  if (hd !== undefined) wl(hd); else wa('{"key":' + EN[CT.keyEnum](k) + ',"value":');
  DK = k; DS = s; DE = e; var at = ON; VT = 0;
  if (vs >= 0) cv(vs, ve); else wa('null');
  if (ST !== null) { var sl = ST.length; if (sl + 3 > ST.values.length) ST.room(); var sv = ST.values; sv[sl] = k; sv[sl + 1] = at; sv[sl + 2] = ON; ST.length = sl + 3; }
  if (SM !== null && SMS[k] > 0) { var sn = SM.n; if (sn + 5 > SM.values.length) SM.room(); var sw = SM.values; sw[sn] = SMS[k]; sw[sn + 1] = VT; sw[sn + 2] = VF[0]; sw[sn + 3] = VF[1]; sw[sn + 4] = at; SM.n = sn + 5; }
  wb(125);
}
function cv(s, e) {
  var t = 0, u = 0, l = 0, fn = 0, kd = 0, oc = 0, on = 0, ov = 0, os = -1, oe = -1, olo = 0, ohi = 0;
  P = s;
  while (P < e) {
    t = tg(e); u = t & 7; fn = t >>> 3;
    kd = fn < 64 ? CK[fn] : 0;
    if (kd === 0 || CW[fn] !== u) { sk(u, fn, e); continue; }
    if (u === 2) { l = sz(e); os = P; oe = P + l; if (oe > e) throw BAIL; if (kd === 1) str(os, oe); P = oe; }
    else if (kd === 3) { rv64(e); olo = LO; ohi = HI; }
    else if (kd === 6) ov = rb(e);
    else if (u === 0) ov = kd === 8 ? rv(e) | 0 : rv(e);
    else if (u === 1) ov = rd(e);
    else ov = rf(e);
    oc = fn; on++;
  }
  if (on > 1) throw BAIL;
  if (oc === 0) { wa('{}'); return; }
  kd = CK[oc];
  if (kd === 1) { VS = s; VE = e; vstr(os, oe); return; }
  wl(CT.open[oc]);
  var sk_ = CS[oc];
  switch (kd) {
    case 2: wi(ov | 0); if (sk_ !== 0) { VT = 1; VF[0] = ov | 0; } break;
    case 3: var lt = i64(olo, ohi); wb(34); wa(lt); wb(34); if (sk_ !== 0) { VT = 1; VF[0] = +lt; } break;
    case 4: var ft = R.floatToJson(ov); wa(ft); if (sk_ !== 0) { VT = 1; VF[0] = +ft; } break;
    case 5: wd(ov); if (sk_ !== 0) { VT = 1; VF[0] = ov; } break;
    case 6: if (ov !== 0) wa('true'); else wa('false'); if (sk_ !== 0) { VT = 1; VF[0] = ov !== 0 ? 1 : 0; } break;
    case 7: cm(CA[oc], os, oe); if (sk_ !== 0) { VT = 3; VF[0] = VF[2]; VF[1] = VF[3]; } break;
    default: we(CA[oc], ov); if (sk_ !== 0) { VT = 2; VF[0] = ov; VF[1] = oc; }
  }
  wb(125);
}
// A plain message (bool, int32, uint32 and double fields, none repeated) from its tables.
function cm(m, s, e) {
  var ids = CT.plainIds[m], kinds = CT.plainKinds[m], keys = CT.plainKeys[m], n = ids.length, t = 0, u = 0, fn = 0, i = 0, kd = 0, pv = PV;
  for (i = 0; i < n; i++) pv[i] = 0;
  P = s;
  while (P < e) {
    t = tg(e); u = t & 7; fn = t >>> 3;
    for (i = 0; i < n; i++) if (ids[i] === fn) break;
    kd = i < n ? kinds[i] : 0;
    if (kd === 0 || (kd === 4 ? u !== 1 : u !== 0)) { sk(u, fn, e); continue; }
    pv[i] = kd === 1 ? rb(e) : kd === 4 ? rd(e) : rv(e);
  }
  if (n === 0) { wa('{}'); return; }
  for (i = 0; i < n; i++) {
    wl(keys[i]);
    kd = kinds[i];
    if (kd === 1) { if (pv[i] !== 0) wa('true'); else wa('false'); }
    else if (kd === 2) wi(pv[i] | 0);
    else if (kd === 3) wi(pv[i] >>> 0);
    else wd(pv[i]);
  }
  wb(125);
  if (m === CT.location) { VF[2] = pv[CT.latitudeAt]; VF[3] = pv[CT.longitudeAt]; }
}
`;
