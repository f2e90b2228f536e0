import { expect } from 'chai';
import { parseStoredState } from '../../src/bus/nats/kv-state.js';
import { decodeResultOf, storedOutcomesOf } from '../../src/decode/worker-replies.js';
import { FRAME_SLOTS, resultRowOf, type DecodeResult } from '../../src/decode/decode-task.js';
import { SAMPLE_VALUES } from '../../src/history/signal-sample.js';
import { withoutLocation } from '../../src/dashboard/location-filter.js';
import { readSessionRecord } from '../../src/dashboard/session-store.js';
import { decodeStoredBody, StoredBodyError } from '../../src/protocol/stored-body.js';
import { ShapeError, objectAt, stringField } from '../../src/safety/json-reader.js';

const utf8 = new TextEncoder();
const VIN = '5YJ3E7EB0LF000001';

const SESSION = {
  id: 'abc',
  subject: null,
  accessToken: 'a',
  refreshToken: 'r',
  accessExpiresAt: 1,
  accessIssuedAt: 0,
  scopes: ['openid'],
  vins: [VIN],
  vinsFetchedAt: 0,
  createdAt: 0,
  expiresAt: 2,
};

describe('untrusted input is read as unknown and checked field by field', () => {
  it('the readers name the field and what it held, never the value', () => {
    expect(() => objectAt([1], 'x')).to.throw(ShapeError, 'x: an object expected, got an array');
    expect(() => stringField({ token: 42 }, 'token', 'file')).to.throw(ShapeError, 'file.token: a string expected, got a number');
    expect(() => stringField({ token: 'secret-value' }, 'other', 'file')).to.throw(ShapeError).that.satisfies((e: Error) => !e.message.includes('secret'));
  });

  it('a stored session with a missing or wrong-typed field is refused with its name', () => {
    expect(readSessionRecord(SESSION, 's')).to.deep.equal(SESSION);
    const { refreshToken: _dropped, ...missing } = SESSION;
    expect(() => readSessionRecord(missing, 's')).to.throw(ShapeError, 's.refreshToken: a string expected, got nothing');
    expect(() => readSessionRecord({ ...SESSION, vins: [VIN, 7] }, 's')).to.throw(ShapeError, 's.vins[1]: a string expected, got a number');
    expect(() => readSessionRecord(null, 's')).to.throw(ShapeError, 's: an object expected, got null');
  });

  it('a KV state entry keeps its good fields and names the bad one', () => {
    const problems: string[] = [];
    const stored = parseStoredState(
      utf8.encode(JSON.stringify({ lastSeenAt: 5, state: { Odometer: { value: '{"doubleValue":1}', at: '2026-01-01T00:00:00Z' }, Soc: 3, Gear: null } })),
      (problem) => problems.push(problem),
    );
    expect(stored.lastSeenAt).to.equal(5);
    expect(Object.keys(stored.state)).to.deep.equal(['Odometer']);
    expect(problems).to.deep.equal([
      'stored state.state.Soc: {value, at} strings expected, got a number',
      'stored state.state.Gear: {value, at} strings expected, got null',
    ]);
    expect(() => parseStoredState(utf8.encode('[1]'))).to.throw(ShapeError, 'stored state: an object expected, got an array');
  });

  it('a JSON stream body that is not a V object, or whose datum is not an object, is a StoredBodyError', () => {
    const body = (text: string) => ({ topic: 'V', vin: VIN, encoding: 'json', normalised: false, body: utf8.encode(text) });
    expect(() => decodeStoredBody(body('null'))).to.throw(StoredBodyError, 'is null, not a V record object');
    expect(() => decodeStoredBody(body('{"data":[{"key":"Soc","value":{"intValue":1}},null]}'))).to.throw(StoredBodyError, 'data[1] is null');
    expect(decodeStoredBody(body('{"data":[{"key":"Soc","value":{"intValue":1}}]}')).state).to.deep.equal([{ field: 'Soc', value: '{"intValue":1}' }]);
  });

  it('a decode worker reply of the wrong shape is an error, not records', () => {
    const rowBytes = FRAME_SLOTS * 4;
    const result = { buffer: new ArrayBuffer(rowBytes + 10), count: 1, stateAt: rowBytes, repliesAt: rowBytes, textAt: rowBytes + 10, normalisedAt: rowBytes + 10 };
    expect(decodeResultOf({ ...result, internalErrors: [] }).internalErrors).to.deep.equal([]);
    expect(() => decodeResultOf({ ...result, buffer: [1, 2], internalErrors: [] })).to.throw(TypeError, 'without the DecodeResult buffer');
    // Sections that do not lie in order inside the buffer would be read out of bounds.
    expect(() => decodeResultOf({ ...result, normalisedAt: rowBytes + 11, internalErrors: [] })).to.throw(TypeError, 'without the DecodeResult buffer');
    expect(() => decodeResultOf({ ...result, count: 2, internalErrors: [] })).to.throw(TypeError, 'without the DecodeResult buffer');
    expect(() => decodeResultOf({ ...result, repliesAt: rowBytes + 2, internalErrors: [] })).to.throw(TypeError, 'without the DecodeResult buffer');
    // Samples: 8-byte aligned, after the normalised records, whole rows up to the buffer's end.
    const withSamples = { ...result, buffer: new ArrayBuffer(rowBytes + 16 + 8 * SAMPLE_VALUES), samplesAt: rowBytes + 16, internalErrors: [] };
    expect(decodeResultOf(withSamples).samplesAt).to.equal(rowBytes + 16);
    expect(() => decodeResultOf({ ...withSamples, samplesAt: rowBytes + 12 })).to.throw(TypeError, 'without the DecodeResult buffer');
    expect(() => decodeResultOf({ ...withSamples, samplesAt: rowBytes + 24 })).to.throw(TypeError, 'without the DecodeResult buffer');
    expect(() => decodeResultOf({ ...withSamples, samplesAt: rowBytes })).to.throw(TypeError, 'without the DecodeResult buffer');
    expect(() => decodeResultOf(undefined)).to.throw(TypeError);
    // As it crosses the port: the row, read back as the same result, checked the same way.
    const full: DecodeResult = { ...result, samplesAt: rowBytes + 10, end: rowBytes + 10, internalErrors: [] };
    expect(decodeResultOf(resultRowOf(full))).to.deep.equal(full);
    expect(decodeResultOf(resultRowOf({ ...full, internalErrors: ['boom', 'bang'] })).internalErrors).to.deep.equal(['boom', 'bang']);
    expect(() => decodeResultOf(resultRowOf({ ...full, count: 2 }))).to.throw(TypeError, 'without the DecodeResult buffer');
    expect(() => decodeResultOf([full.buffer, 1, rowBytes])).to.throw(TypeError, 'instead of the DecodeResult\'s row');
    expect(() => decodeResultOf([[1, 2], ...resultRowOf(full).slice(1)])).to.throw(TypeError, 'without the DecodeResult buffer');
    const good = { recordJson: '{}', isResend: false, state: null, createdAt: null };
    expect(storedOutcomesOf([good, { error: 'bad body' }], 2)).to.deep.equal([good, { error: 'bad body' }]);
    expect(() => storedOutcomesOf([good], 2)).to.throw(TypeError, 'instead of 2 stored-record outcomes');
    expect(() => storedOutcomesOf([{ ...good, state: [{ field: 1 }] }], 1)).to.throw(TypeError, 'malformed state');
  });

  it('the location filter passes a message that is JSON but not an object through untouched', () => {
    expect(withoutLocation('["Location"]')).to.equal('["Location"]');
    expect(withoutLocation('{"type":"record","record":{"data":[null,{"key":"Location"},{"key":"Soc"}]}}')).to.equal('{"type":"record","record":{"data":[null,{"key":"Soc"}]}}');
  });
});
