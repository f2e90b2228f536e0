// What a certificate from the operator's own CA (or a Tesla CA the server did not know) could pass off as
// a car (issue #12): server or Wi-Fi EAP certificates, device ids with NUL, newlines, '/', '*', bidi
// overrides or 20,000 characters. Each must be refused at the upgrade and leave no registry entry.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createCertificateAuthority, issueCertificate, loadCertificateAuthority, type CertificateAuthority } from '../../src/pki/dev-certs.js';
import { TEST_VINS, startTestServer, testPki, type TestServer } from '../helpers/test-server.js';
import { recordFigures, type FigureRow } from './helpers/figures.js';
import { eventually } from '../helpers/eventually.js';

const [VIN] = TEST_VINS;
const TESLA_EKU = '1.3.6.1.4.1.49279.2';
const WIFI_EAP_EKU = `${TESLA_EKU}.5.1.1`;
const VEHICLE_EKU = `${TESLA_EKU}.5.1`;
const rows: FigureRow[] = [];
after(() => recordFigures('insider-identity', rows));

/** status 0: refused in the TLS handshake (OpenSSL's purpose check), before any route. */
type Outcome = { opened: true } | { opened: false; status: number; body: string };

function attempt(port: number, certPem: string, keyPem: string, caPem: Buffer): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`wss://127.0.0.1:${port}/`, { cert: certPem, key: keyPem, ca: caPem, servername: 'localhost' } as WebSocket.ClientOptions);
    socket.once('open', () => {
      socket.close();
      resolve({ opened: true });
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ opened: false, status: res.statusCode ?? 0, body }));
    });
    socket.once('error', (error: Error) => {
      if (/alert/.test(error.message)) resolve({ opened: false, status: 0, body: error.message });
      else reject(error);
    });
  });
}

describe('robustness: what an operator-CA certificate can pass off as a car (real server)', function () {
  this.timeout(60_000);
  let t: TestServer;
  let operatorCa: CertificateAuthority;
  let productAccessCa: CertificateAuthority;
  let caPem: Buffer;

  before(async () => {
    const pki = await testPki();
    operatorCa = await loadCertificateAuthority(readFileSync(pki.vehicleCaCert, 'utf8'), readFileSync(pki.vehicleCaKey, 'utf8'));
    productAccessCa = await createCertificateAuthority({ commonName: 'Tesla Product Access Issuing CA' });
    const bundle = join(mkdtempSync(join(tmpdir(), 'fleet-telemetry-identity-')), 'vehicle-cas.pem');
    writeFileSync(bundle, `${readFileSync(pki.vehicleCaCert, 'utf8').trim()}\n${productAccessCa.certPem.trim()}\n`);
    t = await startTestServer({ env: { VEHICLE_CA_FILE: bundle } });
    caPem = readFileSync(pki.caChain);
  });
  after(async () => t?.stop());

  /** `tlsMayRefuse`: OpenSSL already refuses a client certificate whose EKU lacks clientAuth. */
  async function expectRefused(issued: { certPem: string; keyPem: string }, reason: string, tlsMayRefuse = false): Promise<void> {
    const before = t.server.registry.size;
    const outcome = await attempt(t.server.vehiclePort, issued.certPem, issued.keyPem, caPem);
    expect(outcome.opened, `accepted a certificate that should be refused (${reason})`).to.equal(false);
    if (!outcome.opened && !(tlsMayRefuse && outcome.status === 0)) {
      expect(outcome.status).to.equal(403);
      expect(outcome.body).to.include(reason);
    }
    expect(t.server.registry.size, 'no registry entry for a refused device').to.equal(before);
  }

  it('refuses operator-CA certificates that are not for client authentication, or are Wi-Fi EAP', async () => {
    await expectRefused(await issueCertificate({ issuer: operatorCa, commonName: VIN, serverAuth: true }), 'unrecognised_eku', true);
    await expectRefused(await issueCertificate({ issuer: operatorCa, commonName: VIN, extendedKeyUsages: [WIFI_EAP_EKU], clientAuth: true }), 'wifi_eap_certificate');
    // A client certificate of the same CA still connects.
    const good = await issueCertificate({ issuer: operatorCa, commonName: VIN, clientAuth: true });
    expect((await attempt(t.server.vehiclePort, good.certPem, good.keyPem, caPem)).opened).to.equal(true);
    rows.push({ scenario: 'operator-CA server and Wi-Fi EAP certificates', count: 2, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: 'refused 403 unrecognised_eku / wifi_eap_certificate' });
  });

  const hostileIds: Array<[string, string]> = [
    ['NUL', `${VIN.slice(0, 16)}\u0000`],
    ['newline', `${VIN}\nOU=x`],
    ['slash', `5YJ3E7EB0LF/00001`],
    ['star', `5YJ3E7EB0LF*00001`],
    ['NATS wildcard', `5YJ3E7EB0LF>00001`],
    ['bidi override', `\u202E${VIN.slice(1)}`],
    ['20,000 characters', 'A'.repeat(20_000)],
    ['lower case', VIN.toLowerCase()],
  ];
  it(`refuses ${hostileIds.length} malformed device ids from the operator CA, adding no registry entry`, async () => {
    for (const [, cn] of hostileIds) {
      await expectRefused(await issueCertificate({ issuer: operatorCa, commonName: cn, clientAuth: true }), 'malformed_device_id');
    }
    rows.push({ scenario: 'malformed device ids from the operator CA', count: hostileIds.length, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: `refused 403 malformed_device_id: ${hostileIds.map(([name]) => name).join(', ')}` });
  });

  it("knows 'Tesla Product Access Issuing CA': its certificates are decided by EKU, not taken as the operator's", async () => {
    await expectRefused(await issueCertificate({ issuer: productAccessCa, commonName: VIN, clientAuth: true }), 'unrecognised_eku');
    await expectRefused(await issueCertificate({ issuer: productAccessCa, commonName: VIN, extendedKeyUsages: [WIFI_EAP_EKU], clientAuth: true }), 'wifi_eap_certificate');
    const car = await issueCertificate({ issuer: productAccessCa, commonName: VIN, extendedKeyUsages: [VEHICLE_EKU], clientAuth: true });
    expect((await attempt(t.server.vehiclePort, car.certPem, car.keyPem, caPem)).opened).to.equal(true);
  });
});

describe('robustness: devices long gone are forgotten (real server)', function () {
  this.timeout(60_000);
  let t: TestServer;
  let operatorCa: CertificateAuthority;
  let caPem: Buffer;
  const DEVICES = 40;

  before(async () => {
    const pki = await testPki();
    operatorCa = await loadCertificateAuthority(readFileSync(pki.vehicleCaCert, 'utf8'), readFileSync(pki.vehicleCaKey, 'utf8'));
    t = await startTestServer({ env: { WATCHDOG_STALE_AFTER_SECONDS: '2', WATCHDOG_SWEEP_INTERVAL_SECONDS: '1', WATCHDOG_FORGET_AFTER_SECONDS: '2', TESLA_VIN: VIN } });
    caPem = readFileSync(pki.caChain);
  });
  after(async () => t?.stop());

  it(`drops the registry entries of ${DEVICES} devices that connected once and left, keeps a configured VIN`, async () => {
    const baseline = t.server.registry.size;
    for (let i = 0; i < DEVICES; i++) {
      const cert = await issueCertificate({ issuer: operatorCa, commonName: `5YJ3GXNE0AB${String(i).padStart(6, '0')}`, clientAuth: true });
      expect((await attempt(t.server.vehiclePort, cert.certPem, cert.keyPem, caPem)).opened).to.equal(true);
    }
    // Every device registered is the event (well before WATCHDOG_FORGET_AFTER_SECONDS can forget one).
    await eventually(() => t.server.registry.size >= baseline + DEVICES, 1_500, 'every device registered');
    const peak = t.server.registry.size;
    expect(peak).to.equal(baseline + DEVICES);
    const until = Date.now() + 10_000;
    while (t.server.registry.size > baseline && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200));
    rows.push({ scenario: `${DEVICES} devices connecting once`, count: DEVICES, lost: 0, peakMemoryMb: null, worstAckMs: null, notes: `registry ${baseline} -> ${peak} -> ${t.server.registry.size} after WATCHDOG_FORGET_AFTER_SECONDS (2 s in the test)` });
    expect(t.server.registry.size).to.equal(baseline);
    expect(t.server.registry.get(VIN), 'a TESLA_VIN car is never forgotten').to.not.equal(undefined);
  });
});
