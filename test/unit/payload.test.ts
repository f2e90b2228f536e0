import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { PAYLOAD_LIMITS, PayloadError, decodeRecord, type DecodedRecord } from '../../src/protocol/payload.js';
import { connectivityRecordJson, encodeConnectivity, encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../src/protocol/payload-encoder.js';
import { fieldNames, protoSchema, readProtoRoot } from '../../src/protocol/proto-schema.js';
import { parseLocationString, rewriteScientific } from '../../src/protocol/normalise.js';
import { floatToJson, formatTimestamp } from '../../src/protocol/canonical-json.js';

const CERT_VIN = '5YJ3E1EA7KF000001';

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'proto', 'vehicle_data.proto'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('project root not found');
    dir = up;
  }
  return dir;
}
const ROOT = projectRoot();
// The schema facts proto/ declares, committed (scripts/schema-facts.mjs writes them): the drift checks
// below run on any clone. Tesla's own facts, when beside the clone (or named by TESLA_SCHEMA_DIR),
// are compared with them so a change upstream shows here.
const SCHEMA_DIR = join(ROOT, 'test', 'fixtures', 'tesla-schema');
const UPSTREAM_SCHEMA_DIR = resolve(process.env.TESLA_SCHEMA_DIR ?? join(ROOT, '..', 'shared', 'tesla-schema'));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
function parsed(r: DecodedRecord): any {
  expect(r.json).to.be.a('string');
  return JSON.parse(r.json as string);
}

function expectPayloadError(fn: () => unknown, kind: 'protobuf' | 'invalid'): PayloadError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PayloadError);
    expect((err as PayloadError).kind).to.equal(kind);
    return err as PayloadError;
  }
  expect.fail(`expected PayloadError(${kind})`);
}

// Wire helpers for frames built by hand, independent of our encoder.
type W = protobuf.Writer;
const tag = (w: W, field: number, wireType: number): W => w.uint32((field << 3) | wireType);
function datum(w: W, key: number, value?: (v: W) => void): void {
  tag(w, 1, 2).fork();
  tag(w, 1, 0).uint32(key);
  if (value) {
    tag(w, 2, 2).fork();
    value(w);
    w.ldelim();
  }
  w.ldelim();
}
function timestamp(w: W, field: number, seconds: number, nanos: number): void {
  tag(w, field, 2).fork();
  tag(w, 1, 0).int64(seconds);
  if (nanos) tag(w, 2, 0).int32(nanos);
  w.ldelim();
}

describe('payload: schema (proto/ and fieldNames())', () => {
  it('fieldNames() matches the Field enum written in proto/vehicle_data.proto', () => {
    const text = readFileSync(join(ROOT, 'proto', 'vehicle_data.proto'), 'utf8');
    const body = /enum Field \{([^}]*)\}/.exec(text)?.[1];
    expect(body, 'enum Field in vehicle_data.proto').to.be.a('string');
    const entries = [...(body as string).matchAll(/(\w+) = (\d+);/g)].map((m) => [m[1], Number(m[2])] as const);
    expect(entries).to.have.length(260);
    for (const [name, num] of entries) expect(fieldNames()[num], name).to.equal(name);
    expect(fieldNames()).to.have.length(260);
    expect(fieldNames()[0]).to.equal('Unknown');
    expect(fieldNames()[21]).to.equal('Location');
  });

  it('every Field name of enums.tsv is in fieldNames() with its number', () => {
    const file = join(SCHEMA_DIR, 'enums.tsv');
    const rows = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t'))
      .filter((c) => c[0] === 'telemetry.vehicle_data' && c[1] === 'Field');
    expect(rows).to.have.length(260);
    for (const [, , num, name] of rows) expect(fieldNames()[Number(num)], name).to.equal(name);
  });

  it('proto/ is exactly what scripts/gen-proto.mjs makes from the schema facts', () => {
    const out = mkdtempSync(join(tmpdir(), 'gen-proto-'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'gen-proto.mjs'), SCHEMA_DIR, out], { stdio: 'pipe' });
      const made = readdirSync(out).sort();
      expect(made).to.deep.equal(readdirSync(join(ROOT, 'proto')).filter((f) => f.endsWith('.proto')).sort());
      for (const f of made) {
        expect(readFileSync(join(out, f), 'utf8'), f).to.equal(readFileSync(join(ROOT, 'proto', f), 'utf8'));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('every message field of messages.tsv is declared in proto/ with its number and type', () => {
    const file = join(SCHEMA_DIR, 'messages.tsv');
    const root = protobuf.loadSync(readdirSync(join(ROOT, 'proto')).map((f) => join(ROOT, 'proto', f)));
    root.resolveAll();
    const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
    expect(rows.length).to.be.greaterThan(100);
    for (const [pkg, message, num, name, type, label, oneof] of rows) {
      const t = root.lookupType(`${pkg}.${message}`);
      const f = t.fieldsById[Number(num)]!;
      expect(f, `${pkg}.${message}.${name}`).to.not.equal(undefined);
      expect(f.protoName ?? f.name).to.equal(name);
      expect(f.repeated && !f.map).to.equal(label === 'repeated');
      expect(f.partOf?.name ?? '').to.equal(oneof ?? '');
      if (f.map) expect(type).to.equal(`map<${(f as unknown as protobuf.MapField).keyType},${f.type}>`);
      else if (f.resolvedType) expect(f.resolvedType.fullName).to.equal(`.${type}`);
      else expect(f.type).to.equal(type);
    }
  });

  it('the committed schema facts are what scripts/schema-facts.mjs reads from proto/', () => {
    const out = mkdtempSync(join(tmpdir(), 'schema-facts-'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'schema-facts.mjs'), out], { stdio: 'pipe' });
      expect(readdirSync(out).sort()).to.deep.equal(['enums.tsv', 'messages.tsv']);
      for (const f of ['enums.tsv', 'messages.tsv']) {
        expect(readFileSync(join(out, f), 'utf8'), f).to.equal(readFileSync(join(SCHEMA_DIR, f), 'utf8'));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("the committed schema facts are Tesla's schema facts, when those are beside the clone", function () {
    if (!existsSync(join(UPSTREAM_SCHEMA_DIR, 'messages.tsv'))) {
      // Tesla's facts are reference data, not part of the repository: said, not hidden.
      this.test!.title += ` (pending: no ${UPSTREAM_SCHEMA_DIR}; set TESLA_SCHEMA_DIR to compare)`;
      this.skip();
    }
    for (const f of ['enums.tsv', 'messages.tsv']) {
      expect(readFileSync(join(SCHEMA_DIR, f), 'utf8'), f).to.equal(readFileSync(join(UPSTREAM_SCHEMA_DIR, f), 'utf8'));
    }
  });

  it('Doors fields are numbered DriverFront 1, DriverRear 2, PassengerFront 3, PassengerRear 4, TrunkFront 5, TrunkRear 6', () => {
    const names = ['DriverFront', 'DriverRear', 'PassengerFront', 'PassengerRear', 'TrunkFront', 'TrunkRear'];
    for (let n = 1; n <= 6; n++) {
      // Value.door_value = 21, one bool set by its wire number.
      const w = protobuf.Writer.create();
      datum(w, 59 /* DoorState */, (v) => {
        tag(v, 21, 2).fork();
        tag(v, n, 0).bool(true);
        v.ldelim();
      });
      const doors = parsed(decodeRecord('V', w.finish(), CERT_VIN)).data[0].value.doorValue;
      const expected = Object.fromEntries(names.map((name, i) => [name, i + 1 === n]));
      expect(doors, `door field ${n}`).to.deep.equal(expected);
    }
  });
});

describe('payload: the present-only oneof setter', () => {
  it('decodes every Value member to the same message as protobufjs\'s stock setter, and leaves the shared protobufjs as it was', () => {
    const stock = readProtoRoot().lookupType('telemetry.vehicle_data.Payload');
    const ours = protoSchema().payload;
    expect(ours.ctor).to.not.equal(stock.ctor);
    const values: Array<Record<string, unknown> | null> = [
      { stringValue: '80' }, { intValue: 3 }, { longValue: 123n }, { floatValue: 1.5 }, { doubleValue: 2.25 },
      { booleanValue: true }, { locationValue: { latitude: 1, longitude: 2 } }, { invalid: true },
      { shiftStateValue: 'ShiftStateD' }, { doorValue: { DriverFront: true } }, { timeValue: { hour: 1, minute: 2, second: 3 } }, null,
    ];
    const bytes = encodeVehicleData({ vin: CERT_VIN, data: values.map((value, i) => ({ key: i + 1, value })) });
    // One more datum whose Value carries two members on the wire (stringValue "hi", then intValue 5):
    // the last one read wins with either setter.
    const twice = new Uint8Array([...bytes, 0x0a, 0x0a, 0x08, 0x01, 0x12, 0x06, 0x0a, 0x02, 0x68, 0x69, 0x10, 0x05]);
    const options = { longs: String, enums: String, defaults: false };
    for (const payload of [bytes, twice]) {
      expect(ours.toObject(ours.decode(payload), options)).to.deep.equal(stock.toObject(stock.decode(payload), options));
    }
    const last = (ours.toObject(ours.decode(twice), options) as { data: Array<{ value: Record<string, unknown> }> }).data.at(-1);
    expect(last?.value).to.deep.equal({ intValue: 5 });
    // The shared module's setter is protobufjs's own again (ours walks Object.keys(this)).
    expect(String((protobuf.util as unknown as { oneOfSetter: unknown }).oneOfSetter)).to.not.include('Object.keys(this)');
  });
});

describe('payload: V records', () => {
  it('decodes, normalises and writes the canonical JSON of a typical payload', () => {
    const bytes = encodeVehicleData({
      vin: 'WRONGVIN0000000000',
      createdAt: new Date('2026-11-28T04:19:33.123Z'),
      data: [
        { key: 'VehicleSpeed', value: { doubleValue: 80.5 } },
        { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } },
        { key: 'Soc', value: { stringValue: '1.1920928955078125e-05' } },
        { key: 'Location', value: { stringValue: '(37.412374 S, 122.145867 W)' } },
        { key: 'BatteryHeaterOn', value: { invalid: true } },
        { key: 'Odometer', value: { longValue: -9007199254740993n } },
        { key: 'InsideTemp', value: { floatValue: 21.1 } },
        { key: 'DoorState', value: { doorValue: { PassengerFront: true } } },
        { key: 'ChargeAmps' },
      ],
    });
    const r = decodeRecord('V', bytes, CERT_VIN);
    expect(r.topic).to.equal('V');
    expect(r.signals).to.equal(9);
    expect(r.isResend).to.equal(false);
    expect(r.createdAt).to.equal('2026-11-28T04:19:33.123Z');
    expect(parsed(r)).to.deep.equal({
      data: [
        { key: 'VehicleSpeed', value: { doubleValue: 80.5 } },
        { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } },
        { key: 'Soc', value: { stringValue: '0.00001' } },
        { key: 'Location', value: { locationValue: { latitude: -37.412374, longitude: -122.145867 } } },
        { key: 'BatteryHeaterOn', value: { invalid: true } },
        { key: 'Odometer', value: { longValue: '-9007199254740993' } },
        { key: 'InsideTemp', value: { floatValue: 21.1 } },
        {
          key: 'DoorState',
          value: {
            doorValue: {
              DriverFront: false,
              DriverRear: false,
              PassengerFront: true,
              PassengerRear: false,
              TrunkFront: false,
              TrunkRear: false,
            },
          },
        },
        { key: 'ChargeAmps', value: null },
      ],
      createdAt: '2026-11-28T04:19:33.123Z',
      vin: CERT_VIN,
      isResend: false,
    });
    expect(r.state).to.deep.equal([
      { field: 'VehicleSpeed', value: '{"doubleValue":80.5}' },
      { field: 'Gear', value: '{"shiftStateValue":"ShiftStateD"}' },
      { field: 'Soc', value: '{"stringValue":"0.00001"}' },
      { field: 'Location', value: '{"locationValue":{"latitude":-37.412374,"longitude":-122.145867}}' },
      { field: 'BatteryHeaterOn', value: '{"invalid":true}' },
      { field: 'Odometer', value: '{"longValue":"-9007199254740993"}' },
      { field: 'InsideTemp', value: '{"floatValue":21.1}' },
      {
        field: 'DoorState',
        value:
          '{"doorValue":{"DriverFront":false,"DriverRear":false,"PassengerFront":true,"PassengerRear":false,"TrunkFront":false,"TrunkRear":false}}',
      },
      { field: 'ChargeAmps', value: 'null' },
    ]);
  });

  it('writes the exact canonical text: declaration order, no spaces, defaults shown', () => {
    const r = decodeRecord(
      'V',
      encodeVehicleData({ vin: '', data: [{ key: 'Gear', value: { shiftStateValue: 'ShiftStateP' } }] }),
      'VIN',
    );
    expect(r.json).to.equal(
      '{"data":[{"key":"Gear","value":{"shiftStateValue":"ShiftStateP"}}],"createdAt":null,"vin":"VIN","isResend":false}',
    );
    expect(r.createdAt).to.equal(null);
  });

  it('reads a hand-built frame: unknown Field number, unknown enum value, unknown Value member, unknown fields', () => {
    const w = protobuf.Writer.create();
    datum(w, 300, (v) => tag(v, 5, 1).double(1.25)); // Field number newer than the schema
    datum(w, 10, (v) => tag(v, 9, 0).int32(42)); // Gear with a ShiftState the schema lacks
    datum(w, 4, (v) => tag(v, 55, 0).uint32(7)); // a Value member from newer firmware
    datum(w, 4, (v) => {
      tag(v, 1, 2).string('12.5'); // two members on the wire: the last one wins
      tag(v, 2, 0).int32(13);
    });
    datum(w, 44, (v) => {
      tag(v, 31, 2).fork(); // time_value
      tag(v, 1, 0).int32(7);
      tag(v, 3, 0).int32(30);
      v.ldelim();
    });
    timestamp(w, 2, 1_764_303_573, 5_000);
    tag(w, 3, 2).string('SOMEVIN');
    tag(w, 4, 0).bool(true);
    tag(w, 99, 2).string('field from the future'); // unknown top-level field: skipped
    const r = decodeRecord('V', w.finish(), CERT_VIN);
    expect(parsed(r)).to.deep.equal({
      data: [
        { key: 300, value: { doubleValue: 1.25 } },
        { key: 'Gear', value: { shiftStateValue: 42 } },
        { key: 'VehicleSpeed', value: {} },
        { key: 'VehicleSpeed', value: { intValue: 13 } },
        { key: 'ScheduledChargingStartTime', value: { timeValue: { hour: 7, minute: 0, second: 30 } } },
      ],
      createdAt: '2025-11-28T04:19:33.000005Z',
      vin: CERT_VIN,
      isResend: true,
    });
    expect(r.isResend).to.equal(true);
    expect(r.state?.map((s) => s.field)).to.deep.equal(['300', 'Gear', 'VehicleSpeed', 'VehicleSpeed', 'ScheduledChargingStartTime']);
    expect(r.state?.[1]!.value).to.equal('{"shiftStateValue":42}');
  });

  it('encodes unknown Field numbers and enum numbers too (newer-firmware imitation)', () => {
    const r = decodeRecord(
      'V',
      encodeVehicleData({
        vin: 'x',
        isResend: true,
        data: [
          { key: 260, value: { stringValue: 'a' } },
          { key: 'Gear', value: { shiftStateValue: 17 } },
        ],
      }),
      CERT_VIN,
    );
    expect(parsed(r).data).to.deep.equal([
      { key: 260, value: { stringValue: 'a' } },
      { key: 'Gear', value: { shiftStateValue: 17 } },
    ]);
    expect(r.isResend).to.equal(true);
    expect(parsed(r).isResend).to.equal(true);
  });

  it('turns only the first string Location into a LocationValue and leaves malformed ones', () => {
    const r = decodeRecord(
      'V',
      encodeVehicleData({
        vin: 'x',
        data: [
          { key: 'Location', value: { stringValue: '(51.5 N, 0.12 E)' } },
          { key: 'Location', value: { stringValue: '(1 N, 2 E)' } },
        ],
      }),
      CERT_VIN,
    );
    expect(parsed(r).data).to.deep.equal([
      { key: 'Location', value: { locationValue: { latitude: 51.5, longitude: 0.12 } } },
      { key: 'Location', value: { stringValue: '(1 N, 2 E)' } },
    ]);
    const bad = decodeRecord(
      'V',
      encodeVehicleData({ vin: 'x', data: [{ key: 'Location', value: { stringValue: '37.4, -122.1' } }] }),
      CERT_VIN,
    );
    expect(parsed(bad).data[0].value).to.deep.equal({ stringValue: '37.4, -122.1' });
  });

  it('keeps strings that are not scientific notation with a decimal point', () => {
    const strings = ['1e-05', '80.5', '-12', 'abc', '1.5e', '2.0E+02'];
    const r = decodeRecord(
      'V',
      encodeVehicleData({ vin: 'x', data: strings.map((s) => ({ key: 'Soc', value: { stringValue: s } })) }),
      CERT_VIN,
    );
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
    expect(parsed(r).data.map((d: any) => d.value.stringValue)).to.deep.equal([
      '1e-05',
      '80.5',
      '-12',
      'abc',
      '1.5e',
      '200.00000',
    ]);
  });

  it('accepts an empty payload', () => {
    const r = decodeRecord('V', new Uint8Array(0), CERT_VIN);
    expect(parsed(r)).to.deep.equal({ data: [], createdAt: null, vin: CERT_VIN, isResend: false });
    expect(r.signals).to.equal(0);
    expect(r.state).to.deep.equal([]);
  });

  it('writes Timestamps with 0, 3, 6 or 9 fractional digits', () => {
    const cases: [number, string][] = [
      [0, '2026-11-28T04:19:33Z'],
      [120_000_000, '2026-11-28T04:19:33.120Z'],
      [123_400_000, '2026-11-28T04:19:33.123400Z'],
      [123_456_789, '2026-11-28T04:19:33.123456789Z'],
      [1, '2026-11-28T04:19:33.000000001Z'],
    ];
    for (const [nanos, text] of cases) {
      const r = decodeRecord(
        'V',
        encodeVehicleData({ vin: 'x', createdAt: { seconds: 1_795_839_573, nanos }, data: [] }),
        CERT_VIN,
      );
      expect(r.createdAt).to.equal(text);
      expect(parsed(r).createdAt).to.equal(text);
    }
    expect(formatTimestamp(-62_135_596_800, 0)).to.equal('0001-01-01T00:00:00Z');
    expect(formatTimestamp(253_402_300_799, 999_999_999)).to.equal('9999-12-31T23:59:59.999999999Z');
  });

  it('writes floats as their shortest float32 text and doubles as given, non-finite as strings', () => {
    expect(floatToJson(Math.fround(0.1))).to.equal('0.1');
    expect(floatToJson(Math.fround(16777217))).to.equal('16777216');
    expect(floatToJson(Math.fround(1e20))).to.equal('100000000000000000000');
    const r = decodeRecord(
      'V',
      encodeVehicleData({
        vin: 'x',
        data: [
          { key: 'Soc', value: { floatValue: 0.3 } },
          { key: 'Soc', value: { doubleValue: Number.NaN } },
          { key: 'Soc', value: { doubleValue: -Infinity } },
          { key: 'Soc', value: { doubleValue: 0.1 + 0.2 } },
          { key: 'Soc', value: { doubleValue: 0 } },
        ],
      }),
      CERT_VIN,
    );
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
    expect(parsed(r).data.map((d: any) => d.value)).to.deep.equal([
      { floatValue: 0.3 },
      { doubleValue: 'NaN' },
      { doubleValue: '-Infinity' },
      { doubleValue: 0.30000000000000004 },
      { doubleValue: 0 },
    ]);
  });
});

describe('payload: alerts, errors, connectivity', () => {
  it('alerts: converts millisecond timestamps, keeps unknown audiences, overwrites the VIN', () => {
    const bytes = encodeVehicleAlerts({
      vin: 'OTHER',
      createdAt: new Date('2026-01-02T03:04:05Z'),
      alerts: [
        {
          name: 'ChargePort_a123_latchFault',
          audiences: ['Customer', 'Service', 7],
          startedAt: { seconds: 1_767_323_045_678n },
          endedAt: { seconds: 1_767_323_100 }, // ordinary seconds stay as they are
        },
        { name: 'BMS_w035', startedAt: new Date('2026-01-02T03:00:00.250Z') },
      ],
    });
    const r = decodeRecord('alerts', bytes, CERT_VIN);
    expect(r.signals).to.equal(2);
    expect(r.state).to.equal(null);
    expect(r.isResend).to.equal(false);
    expect(r.createdAt).to.equal('2026-01-02T03:04:05Z');
    expect(parsed(r)).to.deep.equal({
      alerts: [
        {
          name: 'ChargePort_a123_latchFault',
          audiences: ['Customer', 'Service', 7],
          startedAt: '2026-01-02T03:04:05.678Z',
          endedAt: '2026-01-02T03:05:00Z',
        },
        { name: 'BMS_w035', audiences: [], startedAt: '2026-01-02T03:00:00.250Z', endedAt: null },
      ],
      createdAt: '2026-01-02T03:04:05Z',
      vin: CERT_VIN,
    });
  });

  it('alerts: the millisecond threshold itself is converted', () => {
    const w = protobuf.Writer.create();
    tag(w, 1, 2).fork();
    tag(w, 1, 2).string('x');
    timestamp(w, 3, 315_576_000_000, 0);
    w.ldelim();
    const r = decodeRecord('alerts', w.finish(), CERT_VIN);
    expect(parsed(r).alerts[0].startedAt).to.equal('1980-01-01T12:00:00Z');
  });

  it('errors: tags sorted, defaults shown, VIN overwritten', () => {
    const r = decodeRecord(
      'errors',
      encodeVehicleErrors({
        vin: 'OTHER',
        createdAt: new Date('2026-03-04T05:06:07.008Z'),
        errors: [
          { name: 'config_error', body: 'bad field', tags: { zeta: '1', alpha: 'two' }, createdAt: new Date(0) },
          { name: 'other' },
        ],
      }),
      CERT_VIN,
    );
    expect(r.signals).to.equal(2);
    expect(r.createdAt).to.equal('2026-03-04T05:06:07.008Z');
    expect(r.json).to.equal(
      '{"errors":[{"createdAt":"1970-01-01T00:00:00Z","name":"config_error","tags":{"alpha":"two","zeta":"1"},"body":"bad field"},' +
        '{"createdAt":null,"name":"other","tags":{},"body":""}],"createdAt":"2026-03-04T05:06:07.008Z","vin":"5YJ3E1EA7KF000001"}',
    );
  });

  it('connectivity: the server-made record decodes to the same canonical JSON', () => {
    const input = {
      vin: CERT_VIN,
      connectionId: 'de9a74cb3a9245f4bf5502',
      status: 'DISCONNECTED' as const,
      createdAt: new Date('2026-05-06T07:08:09.010Z'),
      networkInterface: 'wifi',
    };
    const json = connectivityRecordJson(input);
    expect(JSON.parse(json)).to.deep.equal({
      vin: CERT_VIN,
      connectionId: 'de9a74cb3a9245f4bf5502',
      status: 'DISCONNECTED',
      createdAt: '2026-05-06T07:08:09.010Z',
      networkInterface: 'wifi',
    });
    const r = decodeRecord('connectivity', encodeConnectivity(input), CERT_VIN);
    expect(r.json).to.equal(json);
    expect(r.signals).to.equal(1);
    expect(r.createdAt).to.equal('2026-05-06T07:08:09.010Z');
    const noInterface = JSON.parse(connectivityRecordJson({ ...input, status: 'CONNECTED', networkInterface: undefined }));
    expect(noInterface.status).to.equal('CONNECTED');
    expect(noInterface.networkInterface).to.equal('');
  });

  it('passes unknown topics through without decoding', () => {
    const r = decodeRecord('energy', Uint8Array.from([0xff, 0x00, 0x13]), CERT_VIN);
    expect(r).to.deep.equal({ topic: 'energy', json: null, signals: 0, state: null, createdAt: null, isResend: false });
  });
});

describe('payload: errors', () => {
  it('garbage bytes are PayloadError protobuf for every known topic', () => {
    const garbage = [
      Uint8Array.from([0x0a, 0xff, 0xff]), // length beyond the end
      Uint8Array.from([0x0f, 0x01]), // wire type 7 does not exist
      Uint8Array.from([0x0b]), // start group that never ends
      Uint8Array.from([0x20, 0x80]), // varint cut off
      Uint8Array.from([0x12, 0x03, 0x08, 0x01]), // field 2's length runs past the end
    ];
    for (const topic of ['V', 'alerts', 'errors', 'connectivity']) {
      for (const g of garbage) expectPayloadError(() => decodeRecord(topic, g, CERT_VIN), 'protobuf');
    }
  });

  it('invalid UTF-8 in a string is PayloadError protobuf', () => {
    const w = protobuf.Writer.create();
    tag(w, 3, 2).bytes(Uint8Array.from([0x56, 0xc3, 0x28]));
    const err = expectPayloadError(() => decodeRecord('V', w.finish(), CERT_VIN), 'protobuf');
    expect(err.message).to.match(/^V: /);
  });

  it('a Timestamp with no RFC 3339 form is PayloadError invalid', () => {
    const w = protobuf.Writer.create();
    timestamp(w, 2, 253_402_300_800, 0); // 10000-01-01
    expectPayloadError(() => decodeRecord('V', w.finish(), CERT_VIN), 'invalid');
    const n = protobuf.Writer.create();
    timestamp(n, 2, 0, 1_000_000_000);
    expectPayloadError(() => decodeRecord('V', n.finish(), CERT_VIN), 'invalid');
    // milliseconds converted are still beyond 9999-12-31: a microsecond count, say
    const a = encodeVehicleAlerts({ alerts: [{ name: 'x', endedAt: { seconds: 1_767_323_045_678_000n } }] });
    expectPayloadError(() => decodeRecord('alerts', a, CERT_VIN), 'invalid');
  });

  it('more entries than the limit are PayloadError invalid', () => {
    const n = PAYLOAD_LIMITS.maxEntries + 1;
    const w = protobuf.Writer.create();
    for (let i = 0; i < n; i++) tag(w, 1, 2).uint32(0); // empty datums: 2 bytes each
    expectPayloadError(() => decodeRecord('V', w.finish(), CERT_VIN), 'invalid');
    const a = protobuf.Writer.create();
    tag(a, 1, 2).fork();
    tag(a, 2, 2).fork();
    for (let i = 0; i < n; i++) a.int32(1); // packed audiences
    a.ldelim().ldelim();
    expectPayloadError(() => decodeRecord('alerts', a.finish(), CERT_VIN), 'invalid');
    const ok = protobuf.Writer.create();
    for (let i = 0; i < PAYLOAD_LIMITS.maxEntries; i++) tag(ok, 1, 2).uint32(0);
    expect(decodeRecord('V', ok.finish(), CERT_VIN).signals).to.equal(PAYLOAD_LIMITS.maxEntries);
  });

  it('the encoders refuse bad input with a clear error', () => {
    expect(() => encodeVehicleData({ vin: 'x', data: [{ key: 'NoSuchField', value: { doubleValue: 1 } }] })).to.throw(
      RangeError,
      /Field has no value NoSuchField/,
    );
    expect(() => encodeVehicleData({ vin: 'x', data: [{ key: 'Soc', value: { doubleValue: 1, intValue: 2 } }] })).to.throw(
      RangeError,
      /oneof value/,
    );
    expect(() => encodeVehicleData({ vin: 'x', data: [{ key: 'Soc', value: { doubleValue: '1' } }] })).to.throw(
      TypeError,
      /number expected/,
    );
    expect(() => encodeVehicleData({ vin: 'x', data: [{ key: 'Soc', value: { colour: 'red' } }] })).to.throw(
      RangeError,
      /no field colour/,
    );
  });
});

describe('payload: normalisation helpers', () => {
  it('parseLocationString reads hemispheres and refuses other shapes', () => {
    expect(parseLocationString('(37.412374 N, 122.145867 W)')).to.deep.equal({ latitude: 37.412374, longitude: -122.145867 });
    expect(parseLocationString('(33.9 S, 151.2 E)')).to.deep.equal({ latitude: -33.9, longitude: 151.2 });
    for (const bad of ['', '(37.4 N 122.1 W)', '(37.4 X, 122.1 W)', '(-37.4 N, 122.1 W)', '(91 N, 0 E)', '(0 N, 181 E)', 'x(1 N, 1 E)']) {
      expect(parseLocationString(bad), bad).to.equal(null);
    }
  });

  it('rewriteScientific writes 5 decimals, half to even on exact ties', () => {
    expect(rewriteScientific('1.1920928955078125e-05')).to.equal('0.00001');
    expect(rewriteScientific('-3.5e-07')).to.equal('-0.00000');
    expect(rewriteScientific('7.8125e-02')).to.equal('0.07812'); // 0.078125 exactly: tie, 2 is even
    expect(rewriteScientific('7.8135e-02')).to.equal('0.07813'); // the double lies just below the tie
    expect(rewriteScientific('1.5e+25')).to.equal('15000000000000000285212672.00000');
    expect(rewriteScientific('1.0e400')).to.equal('1.0e400');
  });
});
