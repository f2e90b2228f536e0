import { expect } from 'chai';
import { redactUrl } from '../../src/config/formats.js';
import { isoTime } from '../../src/dashboard/dashboard-protocol.js';
import { contentSecurityPolicy, securityHeaders } from '../../src/dashboard/security-headers.js';
import { withoutLocation } from '../../src/dashboard/location-filter.js';
import { SocketsPerVin, maxPayloadFor } from '../../src/vehicle/socket-caps.js';

describe('hardening helpers', () => {
  it('SocketsPerVin hands back the oldest socket past the cap, per VIN', () => {
    const caps = new SocketsPerVin<string>(2);
    expect(caps.add('A', 'a1')).to.equal(null);
    expect(caps.add('A', 'a2')).to.equal(null);
    expect(caps.add('B', 'b1')).to.equal(null);
    expect(caps.add('A', 'a3')).to.equal('a1');
    caps.remove('A', 'a1'); // already handed back: a no-op
    caps.remove('A', 'a2');
    expect(caps.count('A')).to.equal(1);
    expect(caps.add('A', 'a4')).to.equal(null);
    expect(() => new SocketsPerVin(0)).to.throw(RangeError);
  });

  it('bounds the uWS payload to the frame limit plus the answered margin', () => {
    expect(maxPayloadFor(1_000_000)).to.equal(1_250_000);
  });

  it('isoTime gives null instead of throwing for instants a Date cannot hold', () => {
    expect(isoTime(0)).to.equal('1970-01-01T00:00:00.000Z');
    expect(isoTime(9_999_999_999_999 * 1000)).to.equal(null);
    expect(isoTime(1e303)).to.equal(null);
    expect(isoTime(Number.NaN)).to.equal(null);
  });

  it('redactUrl hides user, password, query values and fragment, parseable or not', () => {
    expect(redactUrl('https://u:p@idp.example.com/jwks?token=abc&x=1#frag')).to.equal('https://[redacted]:[redacted]@idp.example.com/jwks?token=[redacted]&x=[redacted]#[redacted]');
    expect(redactUrl('https://idp.example.com/jwks')).to.equal('https://idp.example.com/jwks');
    expect(redactUrl('garbage u:p@host?token=abc')).to.equal('garbage [redacted]@host?[redacted]');
  });

  it('withoutLocation strips location from records and snapshots, leaves the rest byte for byte', () => {
    const record = JSON.stringify({ type: 'record', vin: 'V', topic: 'V', record: { data: [{ key: 'Location', value: {} }, { key: 'Soc', value: { doubleValue: 1 } }] } });
    expect(JSON.parse(withoutLocation(record)).record.data).to.deep.equal([{ key: 'Soc', value: { doubleValue: 1 } }]);
    const snapshot = JSON.stringify({ type: 'snapshot', state: { GpsHeading: { value: 1 }, Soc: { value: 2 } } });
    expect(Object.keys(JSON.parse(withoutLocation(snapshot)).state)).to.deep.equal(['Soc']);
    const plain = '{"type":"record","record":{"data":[{"key":"Soc"}]}}';
    expect(withoutLocation(plain)).to.equal(plain);
  });

  it('builds one CSP that extra origins extend without a second header', () => {
    const csp = contentSecurityPolicy({ imgSources: ['https://tiles.example.com'] });
    expect(csp).to.include("img-src 'self' data: https://tiles.example.com");
    expect(securityHeaders().filter(([name]) => name === 'Content-Security-Policy')).to.have.length(1);
  });
});
