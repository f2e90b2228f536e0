/**
 * The signals recent history, trips and charging sessions follow, read out of a record's canonical JSON.
 *
 * A full JSON.parse of every record would cost the main thread more than the rest of this stage, and
 * canonical JSON is deterministic (tesla-protocol.md section 4): every datum is written as
 * `{"key":"<Field>","value":{"<member>":<json>}}`. So one pass over the datums' keys picks out the
 * dozen that matter and reads only their values.
 */
import { fieldNames, protoSchema } from '../protocol/proto-schema.js';
import { DATUM_VALUE_COLUMNS, DATUM_VALUE_KIND, type DatumValues } from '../protocol/transcoder.js';

/**
 * Where each followed signal sits in a samples row (SAMPLE_VALUES numbers; DecodeResult.samplesAt):
 * the one layout the decode stage writes (writeSampleRowFromDatumValues), SignalSample reads and
 * writes, and the history folds from (CarActivity.addRow, CarHistory.addRow).
 */
export const ROW_SOC = 0;
export const ROW_RANGE = 1;
export const ROW_SPEED = 2;
export const ROW_PACK_VOLTAGE = 3;
export const ROW_PACK_CURRENT = 4;
export const ROW_AC_CHARGING_POWER = 5;
export const ROW_DC_CHARGING_POWER = 6;
export const ROW_INSIDE_TEMP = 7;
export const ROW_OUTSIDE_TEMP = 8;
export const ROW_LATITUDE = 9;
export const ROW_LONGITUDE = 10;
export const ROW_GEAR = 11;
export const ROW_CHARGING = 12;
export const ROW_ODOMETER = 13;
export const ROW_FAST_CHARGER = 14;

/** Columns of the recent history, in the order they are stored and sent. */
export const HISTORY_COLUMNS = [
  'soc',
  'range',
  'speed',
  'power',
  'chargerPower',
  'insideTemp',
  'outsideTemp',
  'latitude',
  'longitude',
  'gear',
  'charging',
  'odometer',
] as const;
export type HistoryColumn = (typeof HISTORY_COLUMNS)[number];

/** Gear codes in the `gear` column (small integers so they fit a numeric column). */
export const GEAR_CODES: Record<string, number> = { ShiftStateP: 0, ShiftStateR: 1, ShiftStateN: 2, ShiftStateD: 3 };
export const GEAR_NAMES = ['P', 'R', 'N', 'D'];
/** Charging codes in the `charging` column. */
export const CHARGING_CODES: Record<string, number> = {
  DetailedChargeStateDisconnected: 0,
  DetailedChargeStateNoPower: 1,
  DetailedChargeStateStarting: 2,
  DetailedChargeStateCharging: 3,
  DetailedChargeStateComplete: 4,
  DetailedChargeStateStopped: 5,
};
export const CHARGING_NAMES = ['Disconnected', 'NoPower', 'Starting', 'Charging', 'Complete', 'Stopped'];

/** What one record says about the followed signals; NaN where it says nothing. Reused between records. */
export class SignalSample {
  /** Epoch ms the car sampled the record (created_at), else when the server received it. */
  at = 0;
  soc = NaN;
  range = NaN;
  /** mph, as the car sends it. */
  speed = NaN;
  packVoltage = NaN;
  packCurrent = NaN;
  acChargingPower = NaN;
  dcChargingPower = NaN;
  insideTemp = NaN;
  outsideTemp = NaN;
  latitude = NaN;
  longitude = NaN;
  gear = NaN;
  charging = NaN;
  /** Miles, as the car sends it. */
  odometer = NaN;
  fastCharger = NaN;

  reset(at: number): void {
    this.at = at;
    this.soc = this.range = this.speed = this.packVoltage = this.packCurrent = NaN;
    this.acChargingPower = this.dcChargingPower = this.insideTemp = this.outsideTemp = NaN;
    this.latitude = this.longitude = this.gear = this.charging = this.odometer = this.fastCharger = NaN;
  }

  /**
   * The signals from a decode batch's samples section (SAMPLE_VALUES values from `at`, in SAMPLE_ORDER),
   * written there by the decode stage (readSampleFromBytes); `at` (the time) is left to the caller.
   */
  readRow(values: Float64Array, at: number): void {
    this.soc = values[at + ROW_SOC]!;
    this.range = values[at + ROW_RANGE]!;
    this.speed = values[at + ROW_SPEED]!;
    this.packVoltage = values[at + ROW_PACK_VOLTAGE]!;
    this.packCurrent = values[at + ROW_PACK_CURRENT]!;
    this.acChargingPower = values[at + ROW_AC_CHARGING_POWER]!;
    this.dcChargingPower = values[at + ROW_DC_CHARGING_POWER]!;
    this.insideTemp = values[at + ROW_INSIDE_TEMP]!;
    this.outsideTemp = values[at + ROW_OUTSIDE_TEMP]!;
    this.latitude = values[at + ROW_LATITUDE]!;
    this.longitude = values[at + ROW_LONGITUDE]!;
    this.gear = values[at + ROW_GEAR]!;
    this.charging = values[at + ROW_CHARGING]!;
    this.odometer = values[at + ROW_ODOMETER]!;
    this.fastCharger = values[at + ROW_FAST_CHARGER]!;
  }

  /** The signals into a samples section (see readRow). */
  writeRow(values: Float64Array, at: number): void {
    values[at + ROW_SOC] = this.soc;
    values[at + ROW_RANGE] = this.range;
    values[at + ROW_SPEED] = this.speed;
    values[at + ROW_PACK_VOLTAGE] = this.packVoltage;
    values[at + ROW_PACK_CURRENT] = this.packCurrent;
    values[at + ROW_AC_CHARGING_POWER] = this.acChargingPower;
    values[at + ROW_DC_CHARGING_POWER] = this.dcChargingPower;
    values[at + ROW_INSIDE_TEMP] = this.insideTemp;
    values[at + ROW_OUTSIDE_TEMP] = this.outsideTemp;
    values[at + ROW_LATITUDE] = this.latitude;
    values[at + ROW_LONGITUDE] = this.longitude;
    values[at + ROW_GEAR] = this.gear;
    values[at + ROW_CHARGING] = this.charging;
    values[at + ROW_ODOMETER] = this.odometer;
    values[at + ROW_FAST_CHARGER] = this.fastCharger;
  }

  /** Did the record carry any followed signal? */
  get any(): boolean {
    return this.hasAny();
  }

  /** `any` as a method, for the per-record path. */
  hasAny(): boolean {
    return !(
      Number.isNaN(this.soc) && Number.isNaN(this.range) && Number.isNaN(this.speed) && Number.isNaN(this.packVoltage) &&
      Number.isNaN(this.packCurrent) && Number.isNaN(this.acChargingPower) && Number.isNaN(this.dcChargingPower) &&
      Number.isNaN(this.insideTemp) && Number.isNaN(this.outsideTemp) && Number.isNaN(this.latitude) &&
      Number.isNaN(this.gear) && Number.isNaN(this.charging) && Number.isNaN(this.odometer) && Number.isNaN(this.fastCharger)
    );
  }
}

/**
 * Values per record in a decode batch's samples section (DecodeResult.samplesAt): the followed signals
 * of SignalSample but its time, in the order of SignalSample.readRow / writeRow.
 */
export const SAMPLE_VALUES = 15;

// The followed signals, as small codes: a datum is routed by its Field number (or, in readSample, its
// name) to one switch, with no closure or object per signal.
const SOC = 1;
const BATTERY_LEVEL = 2;
const RANGE = 3;
const SPEED = 4;
const PACK_VOLTAGE = 5;
const PACK_CURRENT = 6;
const AC_CHARGING_POWER = 7;
const DC_CHARGING_POWER = 8;
const INSIDE_TEMP = 9;
const OUTSIDE_TEMP = 10;
const ODOMETER = 11;
const FAST_CHARGER = 12;
const GEAR = 13;
const CHARGE_STATE = 14;
const LOCATION = 15;

const SIGNAL_BY_NAME = new Map<string, number>([
  ['Soc', SOC],
  // BatteryLevel is the displayed charge; cars configured without Soc still send it.
  ['BatteryLevel', BATTERY_LEVEL],
  ['EstBatteryRange', RANGE],
  ['VehicleSpeed', SPEED],
  ['PackVoltage', PACK_VOLTAGE],
  ['PackCurrent', PACK_CURRENT],
  ['ACChargingPower', AC_CHARGING_POWER],
  ['DCChargingPower', DC_CHARGING_POWER],
  ['InsideTemp', INSIDE_TEMP],
  ['OutsideTemp', OUTSIDE_TEMP],
  ['Odometer', ODOMETER],
  ['FastChargerPresent', FAST_CHARGER],
  ['Gear', GEAR],
  ['DetailedChargeState', CHARGE_STATE],
  ['Location', LOCATION],
]);

/** Signal code by Field number (fieldNames()); 0 for a Field nobody follows. */
const SIGNAL_BY_NUMBER = Uint8Array.from(fieldNames(), (name) => SIGNAL_BY_NAME.get(name) ?? 0);

/** Enum names after their common prefix, in code order (GEAR_CODES, CHARGING_CODES). */

function suffixes(codes: Record<string, number>, prefix: string): string[] {
  const out: string[] = [];
  for (const [name, code] of Object.entries(codes)) {
    if (!name.startsWith(prefix)) throw new Error(`${name} does not start with ${prefix}`);
    out[code] = name.slice(prefix.length);
  }
  return out;
}

/** Put what the datum's Value JSON (starting at `at` in `json`) says about `signal` into the sample. */
function readSignal(sample: SignalSample, signal: number, json: string, at: number): void {
  switch (signal) {
    case GEAR: {
      const code = enumCode(json, at, GEAR_ENUM);
      if (code >= 0) sample.gear = code;
      return;
    }
    case CHARGE_STATE: {
      const code = enumCode(json, at, CHARGING_ENUM);
      if (code >= 0) sample.charging = code;
      return;
    }
    case LOCATION:
      readLocation(sample, json, at);
      return;
    case BATTERY_LEVEL:
      // Read only when no Soc came first: most records carry both.
      if (Number.isNaN(sample.soc)) sample.soc = numericValue(json, at);
      return;
    default:
      putNumber(sample, signal, numericValue(json, at));
  }
}

/** A numeric signal's value (not BatteryLevel: see the readers) into the sample: the one place that says which field each fills. */
function putNumber(sample: SignalSample, signal: number, value: number): void {
  switch (signal) {
    case SOC:
      sample.soc = keep(sample.soc, value);
      return;
    case RANGE:
      sample.range = keep(sample.range, value);
      return;
    case SPEED:
      sample.speed = keep(sample.speed, value);
      return;
    case PACK_VOLTAGE:
      sample.packVoltage = keep(sample.packVoltage, value);
      return;
    case PACK_CURRENT:
      sample.packCurrent = keep(sample.packCurrent, value);
      return;
    case AC_CHARGING_POWER:
      sample.acChargingPower = keep(sample.acChargingPower, value);
      return;
    case DC_CHARGING_POWER:
      sample.dcChargingPower = keep(sample.dcChargingPower, value);
      return;
    case INSIDE_TEMP:
      sample.insideTemp = keep(sample.insideTemp, value);
      return;
    case OUTSIDE_TEMP:
      sample.outsideTemp = keep(sample.outsideTemp, value);
      return;
    case ODOMETER:
      sample.odometer = keep(sample.odometer, value);
      return;
    case FAST_CHARGER:
      sample.fastCharger = keep(sample.fastCharger, value);
      return;
  }
}

/** A value that says nothing (NaN) leaves what an earlier datum of the record said. */
function keep(previous: number, value: number): number {
  return Number.isNaN(value) ? previous : value;
}

const KEY = '{"key":"';
const VALUE = '","value":';

/**
 * Fills `sample` from the canonical JSON of a vehicle-data record (topic V). `receivedAt` stands in for
 * the record's time when it has no created_at, or one more than five minutes ahead of the server's clock.
 */
export function readSample(recordJson: string, receivedAt: number, sample: SignalSample): SignalSample {
  sample.reset(receivedAt);
  let position = recordJson.indexOf(KEY);
  while (position >= 0) {
    const nameStart = position + KEY.length;
    const nameEnd = recordJson.indexOf('"', nameStart);
    if (nameEnd < 0) break;
    const signal = SIGNAL_BY_NAME.get(recordJson.slice(nameStart, nameEnd));
    if (signal !== undefined && recordJson.startsWith(VALUE, nameEnd)) readSignal(sample, signal, recordJson, nameEnd + VALUE.length);
    position = recordJson.indexOf(KEY, nameEnd);
  }
  const created = recordJson.lastIndexOf('"createdAt":"');
  if (created >= 0) {
    const end = recordJson.indexOf('"', created + 13);
    const at = Date.parse(recordJson.slice(created + 13, end));
    if (Number.isFinite(at) && at <= receivedAt + 300_000) sample.at = at;
  }
  return sample;
}

/**
 * readSample for a record whose datums the decode stage already located: `datums` are triples
 * [Field number, valueStart, valueEnd] into `text` (BusRecord.datums), `createdAt` the record's
 * created_at (RFC 3339) or null, `createdAtMs` its epoch ms when already parsed, `base` what the
 * positions exceed positions in `text` by (BusRecord.datumBase). The same sample as readSample of its JSON, without scanning the text:
 * followed Fields are picked by number and their values parsed in place (no string made per datum).
 */
export function readSampleFromDatums(datums: Int32Array, text: string, createdAt: string | null, receivedAt: number, sample: SignalSample, createdAtMs = 0, base = 0): SignalSample {
  sample.reset(receivedAt);
  const count = datums.length;
  for (let i = 0; i < count; i += 3) {
    const signal = SIGNAL_BY_NUMBER[datums[i]!];
    if (signal !== undefined && signal !== 0) readSignal(sample, signal, text, datums[i + 1]! - base);
  }
  sampleTimeOf(sample, createdAt, receivedAt, createdAtMs);
  return sample;
}

/**
 * The sample's time: the record's created_at (RFC 3339, or null), `createdAtMs` being its epoch ms when
 * the decode stage parsed it (0: it did not), unless it is more than five minutes ahead of `receivedAt`,
 * which `reset` left in `sample.at`.
 */
export function sampleTimeOf(sample: SignalSample, createdAt: string | null, receivedAt: number, createdAtMs = 0): void {
  if (createdAt !== null) {
    // The decode stage's parse (BusRecord.createdAtMs) when it had one: 0 means it did not parse there.
    const at = createdAtMs > 0 ? createdAtMs : rfc3339Ms(createdAt);
    if (Number.isFinite(at) && at <= receivedAt + 300_000) sample.at = at;
  }
}

/**
 * readSampleFromDatums in the decode stage, before any string is made: `bytes` holds the record's
 * canonical JSON as UTF-8 up to `end` (the end of its text), `state` the datums' triples [Field number,
 * valueStart, valueEnd] (byte positions) from `from` to `to`. The same signals as readSampleFromDatums
 * of the text (a property test holds them equal): canonical values are read from the bytes, anything
 * else is decoded to text from the value on and read by the text readers. `sample.at` is left 0 (the
 * time is the main thread's: sampleTimeOf).
 */
export function readSampleFromBytes(bytes: Uint8Array, state: Int32Array, from: number, to: number, end: number, sample: SignalSample): SignalSample {
  sample.reset(0);
  for (let i = from; i < to; i += 3) {
    const signal = SIGNAL_BY_NUMBER[state[i]!];
    if (signal !== undefined && signal !== 0) readSignalFromBytes(sample, signal, bytes, state[i + 1]!, end);
  }
  return sample;
}

/**
 * The followed signals' values the transcoder gathers as it writes a V record (DatumValues), kept
 * across records: `signals` routes a Field number to its signal code (0: not followed).
 */
export class DatumValueList implements DatumValues {
  readonly signals = SIGNAL_BY_NUMBER;
  values = new Float64Array(DATUM_VALUE_COLUMNS * 64);
  n = 0;

  room(): void {
    const values = new Float64Array(this.values.length * 2);
    values.set(this.values);
    this.values = values;
  }
}

/**
 * readSampleFromBytes for a record the transcoder wrote with `datums` gathered: the numbers and
 * locations it had in hand are taken as they are (each is what its JSON text reads as), any other
 * value is read from the JSON bytes as readSampleFromBytes reads it (`bytes`, the text ending at
 * `end`). The same signals, datum by datum in the same order (a property test holds them equal).
 * The decode stage writes rows with writeSampleRowFromDatumValues; this reader, built from the sample's
 * own rules, is what its property test (test/unit/sample-row.test.ts) holds it to.
 */
export function readSampleFromDatumValues(datums: DatumValueList, bytes: Uint8Array, end: number, sample: SignalSample): SignalSample {
  sample.reset(0);
  const values = datums.values;
  const n = datums.n;
  for (let i = 0; i < n; i += DATUM_VALUE_COLUMNS) {
    const signal = values[i]!;
    const kind = values[i + 1]!;
    if (kind === DATUM_VALUE_KIND.NUMBER) {
      putDatumNumber(sample, signal, values[i + 2]!);
    } else if (kind === DATUM_VALUE_KIND.ENUM) {
      putDatumEnum(sample, signal, values[i + 2]!, values[i + 3]!, bytes, values[i + 4]!, end);
    } else if (kind === DATUM_VALUE_KIND.LOCATION) {
      // Any other signal reads nothing from a locationValue (numericValue: NaN; enumCode: -1).
      if (signal === LOCATION) putLocation(sample, values[i + 2]!, values[i + 3]!);
    } else {
      readSignalFromBytes(sample, signal, bytes, values[i + 4]!, end);
    }
  }
  return sample;
}

/**
 * The sample column (SignalSample.writeRow's order) of each numeric signal code; -1 for the signals
 * with a rule of their own (BatteryLevel, Gear, DetailedChargeState, Location).
 */
const NUMBER_COLUMN = Int8Array.from({ length: LOCATION + 1 }, (_, signal) => {
  switch (signal) {
    case SOC: return ROW_SOC;
    case RANGE: return ROW_RANGE;
    case SPEED: return ROW_SPEED;
    case PACK_VOLTAGE: return ROW_PACK_VOLTAGE;
    case PACK_CURRENT: return ROW_PACK_CURRENT;
    case AC_CHARGING_POWER: return ROW_AC_CHARGING_POWER;
    case DC_CHARGING_POWER: return ROW_DC_CHARGING_POWER;
    case INSIDE_TEMP: return ROW_INSIDE_TEMP;
    case OUTSIDE_TEMP: return ROW_OUTSIDE_TEMP;
    case ODOMETER: return ROW_ODOMETER;
    case FAST_CHARGER: return ROW_FAST_CHARGER;
    default: return -1;
  }
});
/** The sample a rare datum (a value read back from the JSON) goes through (see writeSampleRowFromDatumValues). */
const ROW_SAMPLE = new SignalSample();

/**
 * readSampleFromDatumValues(...).writeRow(row, at), written straight into the row: a SignalSample's
 * sixteen double fields are each a boxed number, so resetting, filling and copying one cost the decode
 * worker ~0.2 µs a record (BENCHMARKS.md, engineer F, session 10). The row holds the whole sample but
 * its time, so a datum whose value is read back from the JSON (the rare members) goes through the
 * sample's own reader: the row read into a sample, the datum read, the sample written back.
 */
export function writeSampleRowFromDatumValues(datums: DatumValueList, bytes: Uint8Array, end: number, row: Float64Array, at: number): void {
  for (let c = 0; c < SAMPLE_VALUES; c++) row[at + c] = NaN;
  const values = datums.values;
  const n = datums.n;
  for (let i = 0; i < n; i += DATUM_VALUE_COLUMNS) {
    const signal = values[i]!;
    const kind = values[i + 1]!;
    if (kind === DATUM_VALUE_KIND.NUMBER) {
      const value = values[i + 2]!;
      // putDatumNumber: a value that is not finite says nothing; BatteryLevel only when no Soc came first.
      if (!Number.isFinite(value)) continue;
      const column = NUMBER_COLUMN[signal]!;
      if (column >= 0) row[at + column] = value;
      else if (signal === BATTERY_LEVEL && Number.isNaN(row[at + ROW_SOC]!)) row[at + ROW_SOC] = value;
    } else if (kind === DATUM_VALUE_KIND.ENUM) {
      const member = values[i + 3]!;
      if (signal === GEAR && member === GEAR_BY_NUMBER.member) {
        const code = GEAR_BY_NUMBER.codeOf(values[i + 2]!);
        if (code >= 0) row[at + ROW_GEAR] = code;
      } else if (signal === CHARGE_STATE && member === CHARGING_BY_NUMBER.member) {
        const code = CHARGING_BY_NUMBER.codeOf(values[i + 2]!);
        if (code >= 0) row[at + ROW_CHARGING] = code;
      } else if (signal === GEAR || signal === CHARGE_STATE) {
        readDatumThroughSample(signal, bytes, values[i + 4]!, end, row, at);
      }
    } else if (kind === DATUM_VALUE_KIND.LOCATION) {
      const latitude = values[i + 2]!;
      const longitude = values[i + 3]!;
      // putLocation's rule.
      if (signal === LOCATION && Number.isFinite(latitude) && Number.isFinite(longitude) && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
        row[at + ROW_LATITUDE] = latitude;
        row[at + ROW_LONGITUDE] = longitude;
      }
    } else {
      readDatumThroughSample(signal, bytes, values[i + 4]!, end, row, at);
    }
  }
}

/** readSignalFromBytes of one datum onto the row (see writeSampleRowFromDatumValues). */
function readDatumThroughSample(signal: number, bytes: Uint8Array, valueAt: number, end: number, row: Float64Array, at: number): void {
  ROW_SAMPLE.readRow(row, at);
  readSignalFromBytes(ROW_SAMPLE, signal, bytes, valueAt, end);
  ROW_SAMPLE.writeRow(row, at);
}

/** What readSignalFromBytes reads from a numeric member whose text reads as `value`. */
function putDatumNumber(sample: SignalSample, signal: number, value: number): void {
  switch (signal) {
    case GEAR:
    case CHARGE_STATE:
    case LOCATION:
      // enumCode of a number is -1; readLocation wants a locationValue.
      return;
    case BATTERY_LEVEL:
      if (Number.isNaN(sample.soc)) sample.soc = Number.isFinite(value) ? value : NaN;
      return;
    default:
      putNumber(sample, signal, Number.isFinite(value) ? value : NaN);
  }
}

/**
 * What readSignalFromBytes reads from an enum member `member` (field number) holding `value`: a
 * numeric signal or Location reads nothing from an enum member (no numeric member shares an enum's
 * first letter and length, see member()); Gear and DetailedChargeState read their own enum's names by
 * number; any other case (another enum's member on Gear, say) is read from the JSON bytes.
 */
function putDatumEnum(sample: SignalSample, signal: number, value: number, member: number, bytes: Uint8Array, at: number, end: number): void {
  if (signal === GEAR && member === GEAR_BY_NUMBER.member) {
    const code = GEAR_BY_NUMBER.codeOf(value);
    if (code >= 0) sample.gear = code;
  } else if (signal === CHARGE_STATE && member === CHARGING_BY_NUMBER.member) {
    const code = CHARGING_BY_NUMBER.codeOf(value);
    if (code >= 0) sample.charging = code;
  } else if (signal === GEAR || signal === CHARGE_STATE) {
    readSignalFromBytes(sample, signal, bytes, at, end);
  }
}

/**
 * An enum signal's codes by the number of its own member's value: the code of the name the canonical
 * writer gives that number (the first name declared for it), -1 when it is none of the followed ones.
 */
class EnumCodes {
  readonly member: number;
  private readonly codes: Int8Array;

  constructor(memberName: string, signal: EnumSignal) {
    const field = protoSchema().value.fields[memberName]!;
    this.member = field.id;
    const values = (field.resolvedType as unknown as { values: Record<string, number> }).values;
    const max = Math.max(0, ...Object.values(values).filter((n) => n >= 0 && n < 4096));
    this.codes = new Int8Array(max + 1).fill(-1);
    const seen = new Set<number>();
    for (const [name, number] of Object.entries(values)) {
      if (seen.has(number)) continue;
      seen.add(number);
      if (number >= 0 && number <= max) this.codes[number] = signal.names.indexOf(name.slice(signal.prefix.length));
    }
  }

  codeOf(value: number): number {
    return value >= 0 && value < this.codes.length ? this.codes[value]! : -1;
  }
}

/** Both coordinates of a location, when both are valid (readLocation's rule). */
function putLocation(sample: SignalSample, latitude: number, longitude: number): void {
  if (Number.isFinite(latitude) && Number.isFinite(longitude) && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
    sample.latitude = latitude;
    sample.longitude = longitude;
  }
}

const utf8 = new TextDecoder();

/** The text from `at` to `end`: what a text reader would see from the value on (the rare, non-canonical values). */
function textFrom(bytes: Uint8Array, at: number, end: number): string {
  return utf8.decode(bytes.subarray(at, end));
}

/** readSignal of the Value JSON at bytes[at] (the record's text ending at `end`). */
function readSignalFromBytes(sample: SignalSample, signal: number, bytes: Uint8Array, at: number, end: number): void {
  switch (signal) {
    case GEAR: {
      const code = enumCodeFromBytes(bytes, at, end, GEAR_ENUM);
      if (code >= 0) sample.gear = code;
      return;
    }
    case CHARGE_STATE: {
      const code = enumCodeFromBytes(bytes, at, end, CHARGING_ENUM);
      if (code >= 0) sample.charging = code;
      return;
    }
    case LOCATION:
      readLocationFromBytes(sample, bytes, at, end);
      return;
    case BATTERY_LEVEL:
      if (Number.isNaN(sample.soc)) sample.soc = numericValueFromBytes(bytes, at, end);
      return;
    default:
      putNumber(sample, signal, numericValueFromBytes(bytes, at, end));
  }
}

/** Exact powers of ten as doubles (10^22 is the largest one). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const TWO_TO_53 = 2 ** 53;
/** Where the last parseNumber stopped; -1 when the text there is not a JSON number. */
let parsedEnd = -1;

/**
 * The JSON number at `p`, exactly as Number() of its text would give it, read without making a string:
 * a mantissa below 2^53 with a power of ten up to 22 is one correctly rounded IEEE operation (Clinger's
 * fast path); any other number is handed to Number(). NaN with parsedEnd -1 when it is not a number.
 */
function parseNumber(text: string, p: number): number {
  const start = p;
  let c = text.charCodeAt(p);
  const negative = c === 45; /* - */
  if (negative) c = text.charCodeAt(++p);
  let mantissa = 0;
  let exponent = 0;
  if (c === 48 /* 0 */) {
    c = text.charCodeAt(++p);
  } else if (c >= 49 && c <= 57) {
    do {
      mantissa = mantissa * 10 + (c - 48);
      c = text.charCodeAt(++p);
    } while (c >= 48 && c <= 57);
  } else {
    parsedEnd = -1;
    return NaN;
  }
  if (c === 46 /* . */) {
    c = text.charCodeAt(++p);
    if (!(c >= 48 && c <= 57)) {
      parsedEnd = -1;
      return NaN;
    }
    do {
      mantissa = mantissa * 10 + (c - 48);
      exponent--;
      c = text.charCodeAt(++p);
    } while (c >= 48 && c <= 57);
  }
  if (c === 101 || c === 69 /* e E */) {
    c = text.charCodeAt(++p);
    const negativeExponent = c === 45;
    if (c === 45 || c === 43) c = text.charCodeAt(++p);
    if (!(c >= 48 && c <= 57)) {
      parsedEnd = -1;
      return NaN;
    }
    let e = 0;
    do {
      // Capped: such a number takes Number()'s path below anyway.
      if (e < 100_000) e = e * 10 + (c - 48);
      c = text.charCodeAt(++p);
    } while (c >= 48 && c <= 57);
    exponent += negativeExponent ? -e : e;
  }
  parsedEnd = p;
  // A growing mantissa that stayed below 2^53 was exact at every step.
  if (mantissa < TWO_TO_53 && exponent >= -22 && exponent <= 22) {
    const value = exponent >= 0 ? mantissa * POW10[exponent]! : mantissa / POW10[-exponent]!;
    return negative ? -value : value;
  }
  return Number(text.slice(start, p));
}

/**
 * A Value member of canonical JSON told by its first letter and its length alone (no string compare: a
 * startsWith costs more than the rest of reading the value). The writer writes only the schema's member
 * names, so this holds as long as no other member shares both; checked here when the module loads.
 */
interface Member {
  first: number;
  /** Position of the closing quote of the member name, from the `{` of the Value. */
  quote: number;
}

function member(name: string): Member {
  const clash = protoSchema().value.fieldsArray.find((f) => f.name !== name && f.name[0] === name[0] && f.name.length === name.length);
  if (clash !== undefined) throw new Error(`Value members ${name} and ${clash.name} share their first letter and length: signal-sample.ts must compare them in full`);
  return { first: name.charCodeAt(0), quote: 2 + name.length };
}

const DOUBLE = member('doubleValue');
const FLOAT = member('floatValue');
const INT = member('intValue');
const LONG = member('longValue');
const BOOLEAN = member('booleanValue');
const LOCATION_MEMBER = member('locationValue');

/** An enum signal: its codes' names after their common prefix (in code order), and the Value member of its enum. */
interface EnumSignal {
  prefix: string;
  names: string[];
  member: Member;
}

/** Every name of the member's enum starts with `prefix` (checked here), so its value's prefix need not be compared. */
function enumSignal(memberName: string, codes: Record<string, number>, prefix: string): EnumSignal {
  const values = (protoSchema().value.fields[memberName]?.resolvedType as { values?: Record<string, number> } | null | undefined)?.values;
  if (values === undefined) throw new Error(`Value member ${memberName} is not an enum`);
  for (const name of Object.keys(values)) if (!name.startsWith(prefix)) throw new Error(`${name} of ${memberName} does not start with ${prefix}`);
  return { prefix, names: suffixes(codes, prefix), member: member(memberName) };
}

const GEAR_ENUM = enumSignal('shiftStateValue', GEAR_CODES, 'ShiftState');
const CHARGING_ENUM = enumSignal('detailedChargeStateValue', CHARGING_CODES, 'DetailedChargeState');
const GEAR_BY_NUMBER = new EnumCodes('shiftStateValue', GEAR_ENUM);
const CHARGING_BY_NUMBER = new EnumCodes('detailedChargeStateValue', CHARGING_ENUM);

/** Is the Value JSON at `at` `{"<member>":`? */
function isMember(json: string, at: number, m: Member): boolean {
  return json.charCodeAt(at + 2) === m.first && json.charCodeAt(at + m.quote) === 34 /* " */ && json.charCodeAt(at + m.quote + 1) === 58 /* : */;
}

/**
 * `{"doubleValue":42.5}` and friends -> 42.5; `{"longValue":"12"}` -> 12; booleans -> 0/1; else NaN.
 * Canonical JSON is read in place; anything else takes the general reader (the same answer, slower).
 */
function numericValue(json: string, at: number): number {
  if (json.charCodeAt(at) !== 123 /* { */ || json.charCodeAt(at + 1) !== 34 /* " */) return numericValueOfText(json, at);
  let p: number;
  if (isMember(json, at, DOUBLE)) p = at + DOUBLE.quote + 2;
  else if (isMember(json, at, FLOAT)) p = at + FLOAT.quote + 2;
  else if (isMember(json, at, INT)) p = at + INT.quote + 2;
  else if (isMember(json, at, LONG)) {
    p = at + LONG.quote + 2;
    if (json.charCodeAt(p) !== 34) return numericValueOfText(json, at);
    const value = parseNumber(json, p + 1);
    if (parsedEnd < 0 || json.charCodeAt(parsedEnd) !== 34 || json.charCodeAt(parsedEnd + 1) !== 125) return numericValueOfText(json, at);
    return Number.isFinite(value) ? value : NaN;
  } else if (isMember(json, at, BOOLEAN)) {
    p = at + BOOLEAN.quote + 2;
    const c = json.charCodeAt(p);
    if (c === 116 /* t */ && json.charCodeAt(p + 4) === 125) return 1;
    if (c === 102 /* f */ && json.charCodeAt(p + 5) === 125) return 0;
    return numericValueOfText(json, at);
  } else {
    return numericValueOfText(json, at);
  }
  const value = parseNumber(json, p);
  if (parsedEnd < 0 || json.charCodeAt(parsedEnd) !== 125 /* } */) return numericValueOfText(json, at);
  // NaN and the infinities are written as strings (not numbers here), and are no use on a chart.
  return Number.isFinite(value) ? value : NaN;
}

/** Does `json` hold `text` at `p`? (A loop of charCodeAt: cheaper than startsWith for these short names.) */
function holds(json: string, p: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (json.charCodeAt(p + i) !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * `{"shiftStateValue":"ShiftStateD"}` -> index of `D` in `names`; -1 when the value is none of them. Any
 * member holding the name counts (a car may send an enum as a string).
 */
function enumCode(json: string, at: number, signal: EnumSignal): number {
  const { prefix, names, member } = signal;
  let from: number;
  if (json.charCodeAt(at) === 123 && json.charCodeAt(at + 1) === 34 && isMember(json, at, member) && json.charCodeAt(at + member.quote + 2) === 34) {
    // The enum's own member: its value is one of the enum's names, all of which start with the prefix.
    from = at + member.quote + 3 + prefix.length;
  } else {
    const colon = json.indexOf(':', at);
    if (colon < 0 || json.charCodeAt(colon + 1) !== 34 /* " */ || !holds(json, colon + 2, prefix)) return -1;
    from = colon + 2 + prefix.length;
  }
  for (let code = 0; code < names.length; code++) {
    const name = names[code]!;
    if (json.charCodeAt(from + name.length) === 34 && holds(json, from, name)) return code;
  }
  return -1;
}

const LATITUDE = '{"latitude":';
const LONGITUDE = ',"longitude":';

/** `{"locationValue":{"latitude":37.39,"longitude":-122.15}}`: both coordinates, when both are valid. */
function readLocation(sample: SignalSample, json: string, at: number): void {
  if (json.charCodeAt(at) !== 123 || json.charCodeAt(at + 1) !== 34 || !isMember(json, at, LOCATION_MEMBER)) return;
  const head = at + LOCATION_MEMBER.quote + 2;
  if (!holds(json, head, LATITUDE)) return;
  const latStart = head + LATITUDE.length;
  let latitude = parseNumber(json, latStart);
  let longitude = NaN;
  if (parsedEnd >= 0 && holds(json, parsedEnd, LONGITUDE)) longitude = parseNumber(json, parsedEnd + LONGITUDE.length);
  if (parsedEnd < 0 || json.charCodeAt(parsedEnd) !== 125 /* } */) {
    // Not canonical: read it as text, as far as it goes.
    const comma = json.indexOf(LONGITUDE, latStart);
    if (comma < 0) return;
    const end = json.indexOf('}', comma);
    latitude = Number(json.slice(latStart, comma));
    longitude = Number(json.slice(comma + LONGITUDE.length, end));
  }
  if (Number.isFinite(latitude) && Number.isFinite(longitude) && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
    sample.latitude = latitude;
    sample.longitude = longitude;
  }
}

/** Where the last parseNumberFromBytes stopped; -1 when the bytes there are not a JSON number. */
let parsedEndInBytes = -1;

/** parseNumber of bytes (the same reading; the bytes of a JSON number are ASCII). */
function parseNumberFromBytes(bytes: Uint8Array, p: number, end: number): number {
  const start = p;
  let c = p < end ? bytes[p]! : -1;
  const negative = c === 45; /* - */
  if (negative) c = ++p < end ? bytes[p]! : -1;
  let mantissa = 0;
  let exponent = 0;
  if (c === 48 /* 0 */) {
    c = ++p < end ? bytes[p]! : -1;
  } else if (c >= 49 && c <= 57) {
    do {
      mantissa = mantissa * 10 + (c - 48);
      c = ++p < end ? bytes[p]! : -1;
    } while (c >= 48 && c <= 57);
  } else {
    parsedEndInBytes = -1;
    return NaN;
  }
  if (c === 46 /* . */) {
    c = ++p < end ? bytes[p]! : -1;
    if (!(c >= 48 && c <= 57)) {
      parsedEndInBytes = -1;
      return NaN;
    }
    do {
      mantissa = mantissa * 10 + (c - 48);
      exponent--;
      c = ++p < end ? bytes[p]! : -1;
    } while (c >= 48 && c <= 57);
  }
  if (c === 101 || c === 69 /* e E */) {
    c = ++p < end ? bytes[p]! : -1;
    const negativeExponent = c === 45;
    if (c === 45 || c === 43) c = ++p < end ? bytes[p]! : -1;
    if (!(c >= 48 && c <= 57)) {
      parsedEndInBytes = -1;
      return NaN;
    }
    let e = 0;
    do {
      if (e < 100_000) e = e * 10 + (c - 48);
      c = ++p < end ? bytes[p]! : -1;
    } while (c >= 48 && c <= 57);
    exponent += negativeExponent ? -e : e;
  }
  parsedEndInBytes = p;
  if (mantissa < TWO_TO_53 && exponent >= -22 && exponent <= 22) {
    const value = exponent >= 0 ? mantissa * POW10[exponent]! : mantissa / POW10[-exponent]!;
    return negative ? -value : value;
  }
  return Number(textFrom(bytes, start, p));
}

/** The byte at `p` of a text ending at `end`; -1 past it (as charCodeAt's NaN, it equals no character). */
function byteAt(bytes: Uint8Array, p: number, end: number): number {
  return p < end ? bytes[p]! : -1;
}

function isMemberInBytes(bytes: Uint8Array, at: number, end: number, m: Member): boolean {
  return byteAt(bytes, at + 2, end) === m.first && byteAt(bytes, at + m.quote, end) === 34 && byteAt(bytes, at + m.quote + 1, end) === 58;
}

function holdsInBytes(bytes: Uint8Array, p: number, end: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (byteAt(bytes, p + i, end) !== text.charCodeAt(i)) return false;
  return true;
}

/** numericValue of bytes: canonical values read here, anything else by the text reader. */
function numericValueFromBytes(bytes: Uint8Array, at: number, end: number): number {
  if (byteAt(bytes, at, end) !== 123 || byteAt(bytes, at + 1, end) !== 34) return numericValueOfText(textFrom(bytes, at, end), 0);
  let p: number;
  if (isMemberInBytes(bytes, at, end, DOUBLE)) p = at + DOUBLE.quote + 2;
  else if (isMemberInBytes(bytes, at, end, FLOAT)) p = at + FLOAT.quote + 2;
  else if (isMemberInBytes(bytes, at, end, INT)) p = at + INT.quote + 2;
  else if (isMemberInBytes(bytes, at, end, LONG)) {
    p = at + LONG.quote + 2;
    if (byteAt(bytes, p, end) !== 34) return numericValueOfText(textFrom(bytes, at, end), 0);
    const value = parseNumberFromBytes(bytes, p + 1, end);
    if (parsedEndInBytes < 0 || byteAt(bytes, parsedEndInBytes, end) !== 34 || byteAt(bytes, parsedEndInBytes + 1, end) !== 125) return numericValueOfText(textFrom(bytes, at, end), 0);
    return Number.isFinite(value) ? value : NaN;
  } else if (isMemberInBytes(bytes, at, end, BOOLEAN)) {
    p = at + BOOLEAN.quote + 2;
    const c = byteAt(bytes, p, end);
    if (c === 116 /* t */ && byteAt(bytes, p + 4, end) === 125) return 1;
    if (c === 102 /* f */ && byteAt(bytes, p + 5, end) === 125) return 0;
    return numericValueOfText(textFrom(bytes, at, end), 0);
  } else {
    return numericValueOfText(textFrom(bytes, at, end), 0);
  }
  const value = parseNumberFromBytes(bytes, p, end);
  if (parsedEndInBytes < 0 || byteAt(bytes, parsedEndInBytes, end) !== 125 /* } */) return numericValueOfText(textFrom(bytes, at, end), 0);
  return Number.isFinite(value) ? value : NaN;
}

/** enumCode of bytes: the enum's own member read here, anything else by the text reader. */
function enumCodeFromBytes(bytes: Uint8Array, at: number, end: number, signal: EnumSignal): number {
  const { prefix, names, member } = signal;
  if (byteAt(bytes, at, end) === 123 && byteAt(bytes, at + 1, end) === 34 && isMemberInBytes(bytes, at, end, member) && byteAt(bytes, at + member.quote + 2, end) === 34) {
    const from = at + member.quote + 3 + prefix.length;
    for (let code = 0; code < names.length; code++) {
      const name = names[code]!;
      if (byteAt(bytes, from + name.length, end) === 34 && holdsInBytes(bytes, from, end, name)) return code;
    }
    return -1;
  }
  return enumCode(textFrom(bytes, at, end), 0, signal);
}

/** readLocation of bytes: the canonical form read here, anything else by the text reader. */
function readLocationFromBytes(sample: SignalSample, bytes: Uint8Array, at: number, end: number): void {
  if (byteAt(bytes, at, end) !== 123 || byteAt(bytes, at + 1, end) !== 34 || !isMemberInBytes(bytes, at, end, LOCATION_MEMBER)) return;
  const head = at + LOCATION_MEMBER.quote + 2;
  if (!holdsInBytes(bytes, head, end, LATITUDE)) return;
  const latitude = parseNumberFromBytes(bytes, head + LATITUDE.length, end);
  if (parsedEndInBytes >= 0 && holdsInBytes(bytes, parsedEndInBytes, end, LONGITUDE)) {
    const longitude = parseNumberFromBytes(bytes, parsedEndInBytes + LONGITUDE.length, end);
    if (parsedEndInBytes >= 0 && byteAt(bytes, parsedEndInBytes, end) === 125 /* } */) {
      if (Number.isFinite(latitude) && Number.isFinite(longitude) && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
        sample.latitude = latitude;
        sample.longitude = longitude;
      }
      return;
    }
  }
  readLocation(sample, textFrom(bytes, at, end), 0);
}

const digit = (text: string, p: number): number => text.charCodeAt(p) - 48;

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Epoch ms of an RFC 3339 UTC time as the canonical writer makes it (`YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z`),
 * as Date.parse gives it (sub-millisecond digits dropped), without Date.parse's general parser; any
 * other text (offsets, years before 1970, out-of-range parts) is Date.parse's.
 */
export function rfc3339Ms(text: string): number {
  const length = text.length;
  if (
    (length === 20 || length === 24 || length === 27 || length === 30) &&
    text.charCodeAt(4) === 45 && text.charCodeAt(7) === 45 && text.charCodeAt(10) === 84 /* T */ &&
    text.charCodeAt(13) === 58 && text.charCodeAt(16) === 58 && text.charCodeAt(length - 1) === 90 /* Z */
  ) {
    const y0 = digit(text, 0), y1 = digit(text, 1), y2 = digit(text, 2), y3 = digit(text, 3);
    const mo0 = digit(text, 5), mo1 = digit(text, 6), d0 = digit(text, 8), d1 = digit(text, 9);
    const h0 = digit(text, 11), h1 = digit(text, 12), mi0 = digit(text, 14), mi1 = digit(text, 15);
    const s0 = digit(text, 17), s1 = digit(text, 18);
    let ms = 0;
    // d | (9 - d) is negative exactly when d is not a digit.
    let digits =
      (y0 | (9 - y0) | y1 | (9 - y1) | y2 | (9 - y2) | y3 | (9 - y3) | mo0 | (9 - mo0) | mo1 | (9 - mo1) | d0 | (9 - d0) | d1 | (9 - d1) |
        h0 | (9 - h0) | h1 | (9 - h1) | mi0 | (9 - mi0) | mi1 | (9 - mi1) | s0 | (9 - s0) | s1 | (9 - s1)) >= 0;
    if (length > 20) {
      const f0 = digit(text, 20), f1 = digit(text, 21), f2 = digit(text, 22);
      ms = f0 * 100 + f1 * 10 + f2;
      // Sub-millisecond digits are dropped, as Date.parse does, but must be digits.
      let rest = 0;
      for (let p = 23; p < length - 1; p++) {
        const d = digit(text, p);
        rest |= d | (9 - d);
      }
      digits &&= text.charCodeAt(19) === 46 /* . */ && (f0 | (9 - f0) | f1 | (9 - f1) | f2 | (9 - f2) | rest) >= 0;
    }
    const year = y0 * 1000 + y1 * 100 + y2 * 10 + y3;
    const month = mo0 * 10 + mo1;
    const day = d0 * 10 + d1;
    const hour = h0 * 10 + h1;
    const minute = mi0 * 10 + mi1;
    const second = s0 * 10 + s1;
    if (digits && year >= 1970 && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month) && hour <= 23 && minute <= 59 && second <= 59) {
      return Date.UTC(year, month - 1, day, hour, minute, second, ms);
    }
  }
  return Date.parse(text);
}

/** numericValue's general reader: the member and its value as text. */
function numericValueOfText(json: string, at: number): number {
  if (json.charCodeAt(at) !== 123 /* { */) return NaN;
  const colon = json.indexOf(':', at);
  const end = json.indexOf('}', colon);
  if (colon < 0 || end < 0) return NaN;
  const member = json.slice(at + 2, colon - 1);
  let text = json.slice(colon + 1, end);
  switch (member) {
    case 'doubleValue':
    case 'floatValue':
    case 'intValue':
      break;
    case 'longValue':
      text = text.replace(/"/g, '');
      break;
    case 'booleanValue':
      return text === 'true' ? 1 : text === 'false' ? 0 : NaN;
    default:
      return NaN;
  }
  // NaN and the infinities are written as strings, and are no use on a chart.
  const value = Number(text);
  return Number.isFinite(value) ? value : NaN;
}
