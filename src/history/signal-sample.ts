/**
 * The signals recent history, trips and charging sessions follow, read out of a record's canonical JSON.
 *
 * A full JSON.parse of every record would cost the main thread more than the rest of this stage, and
 * canonical JSON is deterministic (tesla-protocol.md section 4): every datum is written as
 * `{"key":"<Field>","value":{"<member>":<json>}}`. So one pass over the datums' keys picks out the
 * dozen that matter and reads only their values.
 */
import { fieldNames } from '../protocol/proto-schema.js';

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

  /** Did the record carry any followed signal? */
  get any(): boolean {
    return !(
      Number.isNaN(this.soc) && Number.isNaN(this.range) && Number.isNaN(this.speed) && Number.isNaN(this.packVoltage) &&
      Number.isNaN(this.packCurrent) && Number.isNaN(this.acChargingPower) && Number.isNaN(this.dcChargingPower) &&
      Number.isNaN(this.insideTemp) && Number.isNaN(this.outsideTemp) && Number.isNaN(this.latitude) &&
      Number.isNaN(this.gear) && Number.isNaN(this.charging) && Number.isNaN(this.odometer) && Number.isNaN(this.fastCharger)
    );
  }
}

type Setter = (sample: SignalSample, json: string, at: number) => void;

const numberInto =
  (apply: (sample: SignalSample, value: number) => void): Setter =>
  (sample, json, at) => {
    const value = numericValue(json, at);
    if (!Number.isNaN(value)) apply(sample, value);
  };

const FIELDS = new Map<string, Setter>([
  ['Soc', numberInto((s, v) => (s.soc = v))],
  // BatteryLevel is the displayed charge; cars configured without Soc still send it.
  ['BatteryLevel', numberInto((s, v) => (Number.isNaN(s.soc) ? (s.soc = v) : undefined))],
  ['EstBatteryRange', numberInto((s, v) => (s.range = v))],
  ['VehicleSpeed', numberInto((s, v) => (s.speed = v))],
  ['PackVoltage', numberInto((s, v) => (s.packVoltage = v))],
  ['PackCurrent', numberInto((s, v) => (s.packCurrent = v))],
  ['ACChargingPower', numberInto((s, v) => (s.acChargingPower = v))],
  ['DCChargingPower', numberInto((s, v) => (s.dcChargingPower = v))],
  ['InsideTemp', numberInto((s, v) => (s.insideTemp = v))],
  ['OutsideTemp', numberInto((s, v) => (s.outsideTemp = v))],
  ['Odometer', numberInto((s, v) => (s.odometer = v))],
  ['FastChargerPresent', numberInto((s, v) => (s.fastCharger = v))],
  ['Gear', (s, json, at) => {
    const code = GEAR_CODES[enumValue(json, at)];
    if (code !== undefined) s.gear = code;
  }],
  ['DetailedChargeState', (s, json, at) => {
    const code = CHARGING_CODES[enumValue(json, at)];
    if (code !== undefined) s.charging = code;
  }],
  ['Location', (s, json, at) => {
    // {"locationValue":{"latitude":37.39,"longitude":-122.15}}
    if (!json.startsWith('{"locationValue":{"latitude":', at)) return;
    const latStart = at + 29;
    const comma = json.indexOf(',"longitude":', latStart);
    if (comma < 0) return;
    const end = json.indexOf('}', comma);
    const latitude = Number(json.slice(latStart, comma));
    const longitude = Number(json.slice(comma + 13, end));
    if (Number.isFinite(latitude) && Number.isFinite(longitude) && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
      s.latitude = latitude;
      s.longitude = longitude;
    }
  }],
]);

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
    const setter = FIELDS.get(recordJson.slice(nameStart, nameEnd));
    if (setter !== undefined && recordJson.startsWith(VALUE, nameEnd)) setter(sample, recordJson, nameEnd + VALUE.length);
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

/** The setters by Field number (fieldNames()), for records that come with their datums' positions. */
const FIELDS_BY_NUMBER: Array<Setter | undefined> = fieldNames().map((name) => FIELDS.get(name));

/**
 * readSample for a record whose datums the decode stage already located: `datums` are triples
 * [Field number, valueStart, valueEnd] into `text` (BusRecord.datums), `createdAt` the record's
 * created_at (RFC 3339) or null. The same sample as readSample of its JSON, without scanning the text.
 */
export function readSampleFromDatums(datums: Int32Array, text: string, createdAt: string | null, receivedAt: number, sample: SignalSample): SignalSample {
  sample.reset(receivedAt);
  for (let i = 0; i < datums.length; i += 3) {
    const setter = FIELDS_BY_NUMBER[datums[i]!];
    if (setter !== undefined) setter(sample, text, datums[i + 1]!);
  }
  if (createdAt !== null) {
    const at = Date.parse(createdAt);
    if (Number.isFinite(at) && at <= receivedAt + 300_000) sample.at = at;
  }
  return sample;
}

/** `{"doubleValue":42.5}` and friends -> 42.5; `{"longValue":"12"}` -> 12; booleans -> 0/1; else NaN. */
function numericValue(json: string, at: number): number {
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

/** `{"shiftStateValue":"ShiftStateD"}` -> ShiftStateD; '' when the value is not an enum. */
function enumValue(json: string, at: number): string {
  const colon = json.indexOf(':', at);
  if (colon < 0 || json.charCodeAt(colon + 1) !== 34 /* " */) return '';
  const end = json.indexOf('"', colon + 2);
  return end < 0 ? '' : json.slice(colon + 2, end);
}
