import { expect } from 'chai';
import {
  fromKvKey,
  fromSubjectToken,
  kvKey,
  recordMessageId,
  recordSubject,
  subjectToken,
  vinSubjects,
} from '../../src/bus/nats/nats-names.js';

describe('nats names', () => {
  it('keeps VINs and the known topics readable', () => {
    expect(recordSubject('telemetry', '5YJ3E7EB0LF000001', 'V')).to.equal('telemetry.5YJ3E7EB0LF000001.V');
    expect(recordSubject('fleet.prod', '5YJ3E7EB0LF000001', 'alerts')).to.equal('fleet.prod.5YJ3E7EB0LF000001.alerts');
    expect(vinSubjects('telemetry', '5YJ3E7EB0LF000001')).to.equal('telemetry.5YJ3E7EB0LF000001.>');
  });

  it('escapes what would break a subject: dots, wildcards, spaces, the escape itself, empty', () => {
    for (const topic of ['a.b', '*', '>', 'with space', 'tab\t', '~7E', '', 'ünïcode', 'x\r\ny']) {
      const token = subjectToken(topic);
      expect(token, topic).to.match(/^[A-Za-z0-9_~-]+$/);
      expect(fromSubjectToken(token), topic).to.equal(topic);
    }
    expect(subjectToken('a.b')).to.not.equal(subjectToken('a~2Eb'));
  });

  it('makes KV keys of one token that round-trip', () => {
    for (const vin of ['5YJ3E7EB0LF000001', 'device-with.dots', 'a=b', '']) {
      const key = kvKey(vin);
      expect(key, vin).to.match(/^[A-Za-z0-9_=-]+$/);
      expect(fromKvKey(key), vin).to.equal(vin);
    }
  });

  it('builds one message id per (VIN, txid, topic) and different ids otherwise', () => {
    const id = recordMessageId('5YJ3E7EB0LF000001', 'de9a74cb3a9245f4bf5502-000000001', 'V');
    expect(id).to.equal(recordMessageId('5YJ3E7EB0LF000001', 'de9a74cb3a9245f4bf5502-000000001', 'V'));
    expect(id).to.not.equal(recordMessageId('5YJ3E7EB0LF000001', 'de9a74cb3a9245f4bf5502-000000001', 'alerts'));
    expect(recordMessageId('A', 'b.c', 'd')).to.not.equal(recordMessageId('A.b', 'c', 'd'));
  });
});
