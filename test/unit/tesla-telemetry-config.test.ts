import { expect } from 'chai';
import { fieldNames } from '../../src/protocol/proto-schema.js';
import { describePushResult, groupTelemetryErrors } from '../../src/cli/tesla-reports.js';
import { classifyTelemetryError } from '../../src/tesla/explain.js';
import {
  PRESETS,
  TelemetryConfigError,
  buildTelemetryConfig,
  configDifferences,
  estimateSignals,
  expiresSoon,
  fieldProblems,
  resolveFields,
} from '../../src/tesla/telemetry-config.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('fleet telemetry config', () => {
  it('has presets made only of schema fields with positive integer intervals', () => {
    expect(Object.keys(PRESETS)).to.deep.equal(['minimal', 'driving', 'charging', 'full']);
    for (const [name, fields] of Object.entries(PRESETS)) {
      expect(fieldProblems(fields), name).to.deep.equal([]);
      for (const field of Object.keys(fields!)) expect(fieldNames(), `${name}: ${field}`).to.include(field);
    }
  });

  it('refuses unknown fields, bad intervals and unknown options, one line each', () => {
    expect(
      fieldProblems({ Soc: { interval_seconds: -1 }, Gear: { interval_seconds: '10' }, Nope: { interval_seconds: 1 }, Odometer: { interval_seconds: 1, every: 2 } }),
    ).to.deep.equal([
      'field "Soc": interval_seconds must be a positive integer, got -1',
      'field "Gear": interval_seconds must be a positive integer, got "10"',
      'field "Nope" is not in the vehicle_data schema',
      'field "Odometer": unknown option "every" (allowed: interval_seconds, minimum_delta, resend_interval_seconds)',
    ]);
    expect(() => resolveFields({ preset: 'everything' })).to.throw(TelemetryConfigError, /unknown preset "everything"/);
  });

  it('builds the documented shape with an integer port and refuses a port that is not one', () => {
    const config = buildTelemetryConfig({ hostname: 't.example.com', port: 443, caPem: CA, fields: PRESETS.minimal, alertTypes: ['service'], exp: 2_000_000_000 });
    expect(config).to.deep.equal({
      hostname: 't.example.com',
      port: 443,
      ca: CA,
      fields: PRESETS.minimal,
      alert_types: ['service'],
      prefer_typed: true,
      delivery_policy: 'latest',
      exp: 2_000_000_000,
    });
    expect(() => buildTelemetryConfig({ hostname: 't.example.com', port: 0, caPem: CA, fields: PRESETS.minimal, alertTypes: [] })).to.throw(/port must be an integer from 1 to 65535/);
    expect(() => buildTelemetryConfig({ hostname: 't.example.com', port: 443, caPem: 'nope', fields: PRESETS.minimal, alertTypes: [] })).to.throw(/ca must hold/);
  });

  it('estimates signals per hour and their price at 150,000 per dollar', () => {
    const estimate = estimateSignals({ VehicleSpeed: { interval_seconds: 1 }, Soc: { interval_seconds: 3600 } });
    expect(estimate.signalsPerHour).to.equal(3601);
    expect(estimate.dollarsPerHour).to.be.closeTo(3601 / 150_000, 1e-12);
    expect(estimate.dollarsPer30Days).to.be.closeTo((3601 / 150_000) * 720, 1e-9);
  });

  it('tells what differs between the car\'s config and ours, and when it expires soon', () => {
    const ours = buildTelemetryConfig({ hostname: 't.example.com', port: 443, caPem: CA, fields: { Soc: { interval_seconds: 60 } }, alertTypes: ['service'] });
    expect(configDifferences(ours, { ...ours, ca: CA.replace(/\n/g, '\r\n'), fields: { Soc: { interval_seconds: 60, minimum_delta: 0 } } })).to.deep.equal([]);
    expect(configDifferences(ours, { ...ours, port: '443' })).to.deep.equal(['port is "443", want 443']);
    expect(configDifferences(ours, null)).to.deep.equal(['the car has no telemetry config from this app']);
    expect(configDifferences(ours, { ...ours, fields: { Soc: { interval_seconds: 30 } }, hostname: 'x.example.com' })).to.deep.equal([
      'hostname is "x.example.com", want "t.example.com"',
      'fields differ',
    ]);
    expect(expiresSoon(1000 + 86_400 * 8, 86_400 * 30, 1000)).to.equal(false);
    expect(expiresSoon(1000 + 86_400 * 7, 86_400 * 30, 1000)).to.equal(true);
    expect(expiresSoon(undefined, 0, 1000)).to.equal(false);
  });
});

describe('explaining Tesla\'s answers', () => {
  it('explains every skipped-vehicle reason in words', () => {
    const lines = describePushResult(
      { updated_vehicles: 0, skipped_vehicles: { missing_key: ['A'], unsupported_hardware: ['B'], unsupported_firmware: ['C'], max_configs: ['D'], new_reason: ['E'] } },
      't.example.com',
    );
    expect(lines[0]).to.equal('0 vehicles updated');
    expect(lines[1]).to.match(/^A skipped \(missing_key\): .*https:\/\/tesla\.com\/_ak\/t\.example\.com/);
    expect(lines[2]).to.match(/^B skipped \(unsupported_hardware\): the car is too old/);
    expect(lines[3]).to.match(/^C skipped \(unsupported_firmware\): .*software update/);
    expect(lines[4]).to.match(/^D skipped \(max_configs\): .*most fleet telemetry configs/);
    expect(lines[5]).to.equal('E skipped (new_reason): Tesla skipped it with reason "new_reason"');
  });

  it('classifies and groups telemetry errors', () => {
    expect(classifyTelemetryError('x509: certificate is valid for a.example.com, not b.example.com').kind).to.equal('hostname');
    expect(classifyTelemetryError('dial tcp 1.2.3.4:443: connect: connection refused').kind).to.equal('connection');
    expect(classifyTelemetryError('dial tcp 1.2.3.4:443: i/o timeout').kind).to.equal('timeout');
    expect(classifyTelemetryError('something new').kind).to.equal('other');
    const groups = groupTelemetryErrors([
      { name: 'a', error: 'e1', vin: 'V1' },
      { name: 'a', error: 'e2', vin: 'V1' },
      { name: 'a', error: 'e2', vin: 'V2' },
    ]);
    expect(groups.map((g) => [g.error, g.count, g.vins])).to.deep.equal([
      ['e2', 2, ['V1', 'V2']],
      ['e1', 1, ['V1']],
    ]);
  });
});
