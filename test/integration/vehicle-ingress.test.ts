import { expect } from 'chai';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import type { BusRecord } from '../../src/bus/record-bus.js';
import { createCertificateAuthority, issueCertificate } from '../../src/pki/dev-certs.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../src/protocol/payload-encoder.js';
import { CarClient } from '../../src/sim/car-client.js';
import { CRASH_TOPIC, HANG_TOPIC } from '../helpers/crashing-decode-worker.js';
import { TEST_VINS, startTestServer, type TestServer } from '../helpers/test-server.js';
import { eventually, holdsAfter } from '../helpers/eventually.js';
import { scrapeSum } from '../helpers/metrics-tools.js';

const [VIN_A, VIN_B, VIN_C] = TEST_VINS;

function vPayload(vin: string, speed: number): Uint8Array {
  return encodeVehicleData({
    vin,
    createdAt: new Date(),
    data: [
      { key: 'VehicleSpeed', value: { doubleValue: speed } },
      { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } },
      { key: 'Location', value: { stringValue: '(37.4000 N, 122.1000 W)' } },
    ],
  });
}

function collect(t: TestServer): BusRecord[] {
  const records: BusRecord[] = [];
  t.server.bus.subscribe((record) => records.push(record));
  return records;
}

function httpsGet(t: TestServer, path: string, withCert: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: t.server.vehiclePort,
        path,
        servername: 'localhost',
        ca: readFileSync(t.pki.caChain),
        ...(withCert ? { cert: readFileSync(t.pki.vehicleCert(VIN_A)), key: readFileSync(t.pki.vehicleKey(VIN_A)) } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('vehicle ingress end to end (real TLS, uWS, workers)', function () {
  this.timeout(30_000);
  let t: TestServer;

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.stop();
  });

  it('acks every topic with the frame txid and topic and publishes records in order per VIN', async () => {
    const records = collect(t);
    const car = await CarClient.connect(t.carOptions(VIN_A, { networkInterface: 'wifi', connectionTxid: 'c0ffee00-0000-4000-8000-000000000001' }));
    const sent: Array<{ txid: string; topic: string }> = [];
    const replies = [];
    for (let i = 0; i < 20; i++) {
      const txid = car.nextTxid();
      sent.push({ txid, topic: 'V' });
      replies.push(car.sendRecord('V', vPayload('WRONGVIN', i), txid));
    }
    const alertTxid = car.nextTxid();
    replies.push(car.sendRecord('alerts', encodeVehicleAlerts({ vin: VIN_A, createdAt: new Date(), alerts: [{ name: 'CUSTOMER_ALERT', audiences: [], startedAt: new Date() }] }), alertTxid));
    const errorTxid = car.nextTxid();
    replies.push(car.sendRecord('errors', encodeVehicleErrors({ vin: VIN_A, createdAt: new Date(), errors: [{ name: 'some_error', tags: {}, body: 'text' }] }), errorTxid));
    const opaqueTxid = car.nextTxid();
    replies.push(car.sendRecord('custom-topic', new Uint8Array([1, 2, 3]), opaqueTxid));

    const answered = await Promise.all(replies);
    expect(answered.map((r) => r.kind)).to.deep.equal(new Array(answered.length).fill('ack'));
    for (let i = 0; i < 20; i++) {
      expect(answered[i]!.txid).to.equal(sent[i]!.txid);
      expect(answered[i]!.topic).to.equal('V');
    }
    expect(answered[20]).to.include({ txid: alertTxid, topic: 'alerts' });
    expect(answered[21]).to.include({ txid: errorTxid, topic: 'errors' });
    expect(answered[22]).to.include({ txid: opaqueTxid, topic: 'custom-topic' });

    const mine = records.filter((r) => r.vin === VIN_A);
    expect(mine[0]!.topic).to.equal('connectivity');
    expect(JSON.parse(mine[0]!.recordJson!)).to.include({ status: 'CONNECTED', networkInterface: 'wifi' });
    const vRecords = mine.filter((r) => r.topic === 'V');
    expect(vRecords.map((r) => r.txid)).to.deep.equal(sent.map((s) => s.txid));
    const first = JSON.parse(vRecords[0]!.recordJson!);
    expect(first.vin).to.equal(VIN_A, 'VIN comes from the certificate, not the payload');
    const location = first.data.find((d: { key: string }) => d.key === 'Location');
    expect(location.value).to.deep.equal({ locationValue: { latitude: 37.4, longitude: -122.1 } });
    expect(mine.map((r) => r.topic).slice(-3)).to.deep.equal(['alerts', 'errors', 'custom-topic']);

    const actor = t.server.registry.get(VIN_A)!;
    expect(JSON.parse(actor.state.get('VehicleSpeed')!.value)).to.deep.equal({ doubleValue: 19 });

    await car.close();
    await eventually(() => records.some((r) => r.vin === VIN_A && r.topic === 'connectivity' && r.recordJson!.includes('DISCONNECTED')), 5000);
  });

  it('answers an undecodable payload and an unreadable envelope with the error reply and keeps the connection', async () => {
    const car = await CarClient.connect(t.carOptions(VIN_B));
    const bad = await car.sendRecord('V', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
    expect(bad.kind).to.equal('error');
    expect(bad.errorText).to.equal('incorrect message format');
    expect(bad.txid).to.not.equal('');

    const garbage = await car.sendFrame(new Uint8Array([1, 2, 3]), '', '');
    expect(garbage).to.include({ kind: 'error', txid: '' });

    const ok = await car.sendRecord('V', vPayload(VIN_B, 1));
    expect(ok.kind).to.equal('ack');
    await car.close();
  });

  it('acks a message that is not a stream message once, and publishes nothing for it', async () => {
    const records = collect(t);
    const car = await CarClient.connect(t.carOptions(VIN_B));
    // An envelope without a union value: the reference acks it (twice, by bug); we ack once.
    const { Builder } = await import('flatbuffers');
    const b = new Builder(64);
    const txidOffset = b.createByteVector(new TextEncoder().encode('no-union-000000001'));
    const topicOffset = b.createByteVector(new TextEncoder().encode('V'));
    b.startObject(5);
    b.addFieldOffset(0, txidOffset, 0);
    b.addFieldOffset(1, topicOffset, 0);
    b.finish(b.endObject());
    const reply = await car.sendFrame(b.asUint8Array(), 'no-union-000000001', 'V');
    expect(reply).to.include({ kind: 'ack', txid: 'no-union-000000001', topic: 'V' });
    // A record sent after it is the barrier: replies come in order, so a second ack for the first
    // frame would be taken as the barrier's reply, and the barrier's record proves the first was done.
    const barrier = await car.sendRecord('V', vPayload(VIN_B, 2), 'after-no-union-000000002');
    expect(barrier).to.include({ kind: 'ack', txid: 'after-no-union-000000002' });
    await holdsAfter(eventually(() => records.some((r) => r.txid === 'after-no-union-000000002'), 5000, 'the barrier record'), () => {
      expect(car.pendingReplies).to.equal(0);
      expect(records.filter((r) => r.txid === 'no-union-000000001')).to.have.length(0);
    });
    await car.close();
  });

  it('refuses an oversize frame with the error reply and an empty txid, and carries on', async () => {
    const car = await CarClient.connect(t.carOptions(VIN_B));
    const big = writeStreamEnvelope({ txid: 'big-000000001', topic: 'V', payload: new Uint8Array(1_000_001) });
    const reply = await car.sendFrame(big, '', 'V');
    expect(reply).to.include({ kind: 'error', txid: '', errorText: 'incorrect message format' });
    expect((await car.sendRecord('V', vPayload(VIN_B, 2))).kind).to.equal('ack');
    await car.close();
  });

  it('closes the connection on a text frame', async () => {
    const car = await CarClient.connect(t.carOptions(VIN_B));
    car.sendText('hello');
    const closed = await car.closed;
    expect(closed.code).to.equal(1003);
  });

  it('refuses a client without a certificate on the WebSocket and on /status', async () => {
    const options = t.carOptions(VIN_A);
    const socket = new WebSocket(options.url, { ca: options.caPem, servername: 'localhost' } as WebSocket.ClientOptions);
    const status = await new Promise<number>((resolve, reject) => {
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('open', () => reject(new Error('a client without certificate got a WebSocket')));
      socket.once('error', reject);
    });
    expect(status).to.equal(401);
    expect((await httpsGet(t, '/status', false)).status).to.equal(401);
    expect(await httpsGet(t, '/status', true)).to.deep.equal({ status: 200, body: 'mtls ok' });
    const refusals = await t.server.metrics.vehicle.connectionRefusals.get();
    expect(refusals.values.find((v) => v.labels.reason === 'no_certificate')?.value).to.be.greaterThan(0);
  });

  it('refuses a certificate from another CA in the TLS handshake (alert unknown_ca), before the application sees it', async () => {
    const rogueCa = await createCertificateAuthority({ commonName: 'Rogue CA' });
    const rogue = await issueCertificate({ issuer: rogueCa, commonName: VIN_A, clientAuth: true });
    const refusalsBefore = (await t.server.metrics.vehicle.connectionRefusals.get()).values.reduce((sum, v) => sum + v.value, 0);
    let failure: (Error & { code?: string }) | null = null;
    try {
      const car = await CarClient.connect(t.carOptions(VIN_A, { certPem: rogue.certPem, keyPem: rogue.keyPem }));
      await car.close();
    } catch (error) {
      failure = error as Error & { code?: string };
    }
    // OpenSSL's verify refuses it (TLS alert 48), not a later close: any other failure is not this refusal.
    expect(failure?.code, String(failure)).to.equal('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
    const refusalsAfter = (await t.server.metrics.vehicle.connectionRefusals.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(refusalsAfter, 'the identity check never ran').to.equal(refusalsBefore);
    // The same client with the fleet's certificate is let in: the refusal is about the CA alone.
    const car = await CarClient.connect(t.carOptions(VIN_A));
    await car.close();
  });

  it('publishes one CONNECTED and one DISCONNECTED per VIN for a car holding two sockets', async () => {
    const records = collect(t);
    const wifi = await CarClient.connect(t.carOptions(VIN_C, { networkInterface: 'wifi' }));
    const cellular = await CarClient.connect(t.carOptions(VIN_C, { networkInterface: 'cellular' }));
    expect((await cellular.sendRecord('V', vPayload(VIN_C, 3))).kind).to.equal('ack');
    const metricsUrl = `http://127.0.0.1:${t.server.metricsPort}/metrics`;
    const disconnects = await scrapeSum(metricsUrl, 'fleet_telemetry_vehicle_disconnects_total');
    await wifi.close();
    const connectivity = () => records.filter((r) => r.vin === VIN_C && r.topic === 'connectivity').map((r) => JSON.parse(r.recordJson!).status);
    // Once the server has counted the close, the car still holds a socket: no DISCONNECTED.
    const closeCounted = eventually(async () => (await scrapeSum(metricsUrl, 'fleet_telemetry_vehicle_disconnects_total')) > disconnects, 5000, 'the close counted');
    await holdsAfter(closeCounted, () => {
      expect(connectivity()).to.deep.equal(['CONNECTED']);
    });
    await cellular.close();
    await eventually(() => connectivity().length === 2, 5000);
    expect(connectivity()).to.deep.equal(['CONNECTED', 'DISCONNECTED']);
  });
});

describe('decode worker failure (real workers)', function () {
  this.timeout(30_000);
  let t: TestServer;

  before(async () => {
    t = await startTestServer({
      env: { DECODE_TASK_TIMEOUT_MS: '1500' },
      overrides: { workerFile: new URL('../helpers/crashing-decode-worker.js', import.meta.url) },
    });
  });
  after(async () => {
    await t.stop();
  });

  it('a frame that kills its worker gets an error reply, the car stays connected, other cars keep flowing', async () => {
    const victim = await CarClient.connect(t.carOptions(VIN_A));
    const bystander = await CarClient.connect(t.carOptions(VIN_B));
    const before = victim.sendRecord('V', vPayload(VIN_A, 1));
    const crash = victim.sendRecord(CRASH_TOPIC, new Uint8Array([1]));
    const others = Array.from({ length: 10 }, (_, i) => bystander.sendRecord('V', vPayload(VIN_B, i)));
    const after = victim.sendRecord('V', vPayload(VIN_A, 2));

    expect((await crash).kind).to.equal('error');
    expect((await before).kind).to.equal('ack');
    expect((await after).kind).to.equal('ack');
    expect((await Promise.all(others)).every((r) => r.kind === 'ack')).to.equal(true);
    expect((await victim.sendRecord('V', vPayload(VIN_A, 3))).kind).to.equal('ack', 'the replaced worker decodes');
    const failures = await t.server.metrics.decode.decodeWorkerFailures.get();
    expect(failures.values.reduce((sum, v) => sum + v.value, 0)).to.be.greaterThan(0);
    await victim.close();
    await bystander.close();
  });

  it('a frame that hangs its worker times out into an error reply', async () => {
    const car = await CarClient.connect(t.carOptions(VIN_C));
    const hang = await car.sendRecord(HANG_TOPIC, new Uint8Array([1]));
    expect(hang.kind).to.equal('error');
    expect((await car.sendRecord('V', vPayload(VIN_C, 1))).kind).to.equal('ack');
    await car.close();
  });
});
