import { assert, expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import {
  DEFAULT_DEV_VINS,
  DEV_VEHICLE_CA_NAME,
  createCertificateAuthority,
  ensureDevPki,
  issueCertificate,
  type DevPkiFiles,
} from '../../src/pki/dev-certs.js';
import { identifyDevice, isTeslaCaName, loadCaBundle, operatorCasOf } from '../../src/protocol/identity.js';

const DOMAIN = 'telemetry.example.test';

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** Every file of the PKI directory with its bytes, to tell reuse from regeneration. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) files.set(name, readFileSync(path, 'latin1'));
  }
  return files;
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.keys()].filter((name) => before.get(name) !== after.get(name)).sort();
}

interface Handshake {
  clientAuthorized: boolean;
  clientError: string | undefined;
  serverSawAuthorizedClient: boolean;
  clientCommonName: string | undefined;
}

/** A real TLS handshake on loopback: the dev server cert on one side, a vehicle cert on the other. */
async function handshake(pki: DevPkiFiles, vin: string, ca: string, servername: string): Promise<Handshake> {
  const seen: { authorized: boolean; cn: string | undefined } = { authorized: false, cn: undefined };
  const server = tls.createServer(
    {
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.vehicleCaCert),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => {
      seen.authorized = socket.authorized;
      const cn = socket.getPeerCertificate().subject?.CN;
      seen.cn = Array.isArray(cn) ? cn.at(-1) : cn;
      socket.end('ok');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise<Handshake>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: readFileSync(ca),
        servername,
        cert: readFileSync(pki.vehicleCert(vin)),
        key: readFileSync(pki.vehicleKey(vin)),
        rejectUnauthorized: false,
      });
      socket.on('error', (error) => resolve({ clientAuthorized: false, clientError: error.message, serverSawAuthorizedClient: false, clientCommonName: undefined }));
      socket.on('secureConnect', () => {
        const clientAuthorized = socket.authorized;
        const clientError = socket.authorizationError == null ? undefined : String(socket.authorizationError);
        socket.on('data', () => {});
        socket.on('end', () => {
          socket.destroy();
          resolve({ clientAuthorized, clientError, serverSawAuthorizedClient: seen.authorized, clientCommonName: seen.cn });
        });
      });
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('dev PKI', function () {
  this.timeout(30_000);
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'dev-pki-test-'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('writes the layout with private keys 0600, certificates 0644 and directories 0700', async () => {
    const dir = join(root, 'certs');
    const pki = await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    expect(pki.vins).to.deep.equal(DEFAULT_DEV_VINS);
    for (const dirPath of [dir, join(dir, 'vehicles')]) expect(mode(dirPath), dirPath).to.equal('700');
    for (const key of [pki.serverKey, pki.vehicleCaKey, ...DEFAULT_DEV_VINS.map((v) => pki.vehicleKey(v))]) {
      expect(mode(key), key).to.equal('600');
      expect(readFileSync(key, 'utf8')).to.match(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    }
    for (const cert of [pki.rootCaCert, pki.serverCaCert, pki.serverCert, pki.caChain, pki.vehicleCaCert, ...DEFAULT_DEV_VINS.map((v) => pki.vehicleCert(v))]) {
      expect(mode(cert), cert).to.equal('644');
    }
    expect([...snapshot(dir).keys()].sort()).to.deep.equal(
      [
        'ca-chain.pem',
        'root-ca.pem',
        'server-ca.pem',
        'server.key',
        'server.pem',
        'vehicle-ca.key',
        'vehicle-ca.pem',
        ...DEFAULT_DEV_VINS.flatMap((v) => [join('vehicles', `${v}.key`), join('vehicles', `${v}.pem`)]),
      ].sort(),
    );
  });

  it('issues a server certificate for the domain and loopback, chained root -> intermediate -> leaf', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: DOMAIN, vins: [] });
    const chain = loadCaBundle(readFileSync(pki.serverCert, 'utf8'));
    expect(chain).to.have.length(2);
    const [leaf, intermediate] = chain;
    assert.exists(leaf);
    assert.exists(intermediate);
    const rootCa = new X509Certificate(readFileSync(pki.rootCaCert));
    expect(leaf.checkHost(DOMAIN)).to.equal(DOMAIN);
    expect(leaf.checkHost('localhost')).to.equal('localhost');
    expect(leaf.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(leaf.checkIP('::1')).to.not.equal(undefined);
    expect(leaf.checkHost('other.example.test')).to.equal(undefined);
    expect(leaf.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
    expect(leaf.ca).to.equal(false);
    expect(intermediate.ca).to.equal(true);
    expect(intermediate.raw.equals(new X509Certificate(readFileSync(pki.serverCaCert)).raw)).to.equal(true);
    expect(leaf.verify(intermediate.publicKey)).to.equal(true);
    expect(intermediate.verify(rootCa.publicKey)).to.equal(true);
    expect(loadCaBundle(readFileSync(pki.caChain, 'utf8')).map((c) => c.fingerprint256)).to.deep.equal([
      intermediate.fingerprint256,
      rootCa.fingerprint256,
    ]);
  });

  it('completes mutual TLS: the car verifies the server with ca-chain, the server verifies the car with the vehicle CA', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: 'localhost', vins: [DEFAULT_DEV_VINS[0]] });
    const result = await handshake(pki, DEFAULT_DEV_VINS[0], pki.caChain, 'localhost');
    expect(result.clientError).to.equal(undefined);
    expect(result.clientAuthorized).to.equal(true);
    expect(result.serverSawAuthorizedClient).to.equal(true);
    expect(result.clientCommonName).to.equal(DEFAULT_DEV_VINS[0]);
  });

  it('serves the intermediate, so a car holding only the root verifies the server too', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: DOMAIN, vins: [DEFAULT_DEV_VINS[1]] });
    const result = await handshake(pki, DEFAULT_DEV_VINS[1], pki.rootCaCert, DOMAIN);
    expect(result.clientAuthorized, result.clientError).to.equal(true);
  });

  it('is refused by a car that trusts another root', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: 'localhost', vins: [DEFAULT_DEV_VINS[0]] });
    const result = await handshake(pki, DEFAULT_DEV_VINS[0], pki.vehicleCaCert, 'localhost');
    expect(result.clientAuthorized).to.equal(false);
    expect(result.clientError).to.match(/ISSUER|CERT/);
  });

  it('is refused for a name the server certificate does not cover', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: DOMAIN, vins: [DEFAULT_DEV_VINS[0]] });
    const result = await handshake(pki, DEFAULT_DEV_VINS[0], pki.caChain, 'not-covered.example.test');
    expect(result.clientAuthorized).to.equal(false);
    expect(result.clientError).to.match(/ALTNAME|does not match/i);
  });

  it('issues vehicle certificates (CN = VIN, clientAuth) from an operator CA', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    const vehicleCa = new X509Certificate(readFileSync(pki.vehicleCaCert));
    expect(vehicleCa.subject.split('\n')).to.include(`CN=${DEV_VEHICLE_CA_NAME}`);
    expect(isTeslaCaName(DEV_VEHICLE_CA_NAME)).to.equal(false);
    const operators = operatorCasOf(loadCaBundle(readFileSync(pki.vehicleCaCert, 'utf8')));
    for (const vin of DEFAULT_DEV_VINS) {
      const pem = readFileSync(pki.vehicleCert(vin), 'utf8');
      const cert = new X509Certificate(pem);
      expect(cert.checkIssued(vehicleCa) && cert.verify(vehicleCa.publicKey), vin).to.equal(true);
      expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
      expect(identifyDevice(pem, operators)).to.deep.equal({
        ok: true,
        identity: { deviceId: vin, kind: 'vehicle_device', issuerCommonName: DEV_VEHICLE_CA_NAME, fromOperatorCa: true },
      });
    }
  });

  it('reuses every file on a second call', async () => {
    const dir = join(root, 'certs');
    await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    const before = snapshot(dir);
    await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    expect(changed(before, snapshot(dir))).to.deep.equal([]);
  });

  it("adds only a new VIN's files, with the existing vehicle CA", async () => {
    const dir = join(root, 'certs');
    await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS.slice(0, 2) });
    const before = snapshot(dir);
    const added = DEFAULT_DEV_VINS[2];
    const pki = await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    expect(changed(before, snapshot(dir))).to.deep.equal([join('vehicles', `${added}.key`), join('vehicles', `${added}.pem`)]);
    const cert = new X509Certificate(readFileSync(pki.vehicleCert(added)));
    expect(cert.verify(new X509Certificate(readFileSync(pki.vehicleCaCert)).publicKey)).to.equal(true);
  });

  it('replaces the server chain, and only it, when the domain changes', async () => {
    const dir = join(root, 'certs');
    await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    const before = snapshot(dir);
    const pki = await ensureDevPki({ dir, domain: 'other.example.test', vins: DEFAULT_DEV_VINS });
    expect(changed(before, snapshot(dir))).to.deep.equal(['ca-chain.pem', 'root-ca.pem', 'server-ca.pem', 'server.key', 'server.pem']);
    expect(new X509Certificate(readFileSync(pki.serverCert)).checkHost('other.example.test')).to.equal('other.example.test');
  });

  it('puts an IP-address domain in the IP SANs', async () => {
    const pki = await ensureDevPki({ dir: join(root, 'certs'), domain: '192.0.2.10', vins: [] });
    const leaf = new X509Certificate(readFileSync(pki.serverCert));
    expect(leaf.checkIP('192.0.2.10')).to.equal('192.0.2.10');
    const before = snapshot(pki.dir);
    await ensureDevPki({ dir: pki.dir, domain: '192.0.2.10', vins: [] });
    expect(changed(before, snapshot(pki.dir))).to.deep.equal([]);
  });

  it('renews certificates close to expiry, and everything when forced', async () => {
    const dir = join(root, 'certs');
    await ensureDevPki({ dir, domain: DOMAIN, vins: [DEFAULT_DEV_VINS[0]], validDays: 0.5 });
    const shortLived = snapshot(dir);
    await ensureDevPki({ dir, domain: DOMAIN, vins: [DEFAULT_DEV_VINS[0]] });
    const renewed = snapshot(dir);
    // the vehicle CA has the default lifetime: kept; the half-day leaves are replaced
    expect(changed(shortLived, renewed)).to.deep.equal([
      'ca-chain.pem',
      'root-ca.pem',
      'server-ca.pem',
      'server.key',
      'server.pem',
      join('vehicles', `${DEFAULT_DEV_VINS[0]}.key`),
      join('vehicles', `${DEFAULT_DEV_VINS[0]}.pem`),
    ]);
    await ensureDevPki({ dir, domain: DOMAIN, vins: [DEFAULT_DEV_VINS[0]], force: true });
    expect(changed(renewed, snapshot(dir))).to.have.length(renewed.size);
  });

  it('replaces a vehicle certificate whose key does not match, and the set when the vehicle CA is lost', async () => {
    const dir = join(root, 'certs');
    const pki = await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    const [first, second] = DEFAULT_DEV_VINS;
    writeFileSync(pki.vehicleKey(first), readFileSync(pki.vehicleKey(second)));
    let before = snapshot(dir);
    await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    expect(changed(before, snapshot(dir))).to.deep.equal([join('vehicles', `${first}.key`), join('vehicles', `${first}.pem`)]);

    rmSync(pki.vehicleCaKey);
    before = snapshot(dir);
    await ensureDevPki({ dir, domain: DOMAIN, vins: DEFAULT_DEV_VINS });
    const after = snapshot(dir);
    expect(changed(before, after).filter((name) => !name.startsWith('vehicle'))).to.deep.equal([]);
    expect(changed(before, after)).to.include.members(['vehicle-ca.key', 'vehicle-ca.pem', join('vehicles', `${second}.pem`)]);
  });

  it('refuses a VIN that is not a safe file name, before writing anything', async () => {
    const dir = join(root, 'certs');
    for (const vin of ['../escape', 'a/b', '', 'x'.repeat(65), 'VIN.1']) {
      let error: unknown;
      await ensureDevPki({ dir, domain: DOMAIN, vins: [vin] }).catch((e: unknown) => (error = e));
      expect(error, JSON.stringify(vin)).to.be.instanceOf(Error);
    }
    expect(() => statSync(dir)).to.throw();
  });

  it('emits custom EKU OIDs in order and an OU in the subject', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test Issuing CA', organization: 'Test Org' });
    const issued = await issueCertificate({
      issuer: ca,
      commonName: 'device-1',
      organizationalUnit: 'Tesla Motors SN',
      extendedKeyUsages: ['1.3.6.1.4.1.49279.2.5.1.1', '1.3.6.1.4.1.49279.2.4.11'],
      clientAuth: true,
      serverAuth: true,
    });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject).to.equal('CN=device-1\nOU=Tesla Motors SN');
    expect(cert.issuer).to.equal('CN=Test Issuing CA\nO=Test Org');
    expect(cert.keyUsage).to.deep.equal([
      '1.3.6.1.4.1.49279.2.5.1.1',
      '1.3.6.1.4.1.49279.2.4.11',
      '1.3.6.1.5.5.7.3.1',
      '1.3.6.1.5.5.7.3.2',
    ]);
    expect(issued.chainPem, 'a root is never sent in the chain').to.equal(issued.certPem);
  });

  it('caps a certificate at its issuer lifetime and rejects an empty validity', async () => {
    const notAfter = new Date(Date.now() + 10 * 86_400_000);
    const ca = await createCertificateAuthority({ commonName: 'Short CA', notAfter });
    const leaf = new X509Certificate((await issueCertificate({ issuer: ca, commonName: 'x', validDays: 365 })).certPem);
    expect(Date.parse(leaf.validTo)).to.equal(Math.floor(notAfter.getTime() / 1000) * 1000);
    let error: unknown;
    await createCertificateAuthority({ commonName: 'Backwards', validDays: -1 }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(RangeError);
  });

  it('provides plausible 17-character default VINs', () => {
    expect(DEFAULT_DEV_VINS).to.have.length(3);
    for (const vin of DEFAULT_DEV_VINS) expect(vin).to.match(/^[A-HJ-NPR-Z0-9]{17}$/);
  });
});
