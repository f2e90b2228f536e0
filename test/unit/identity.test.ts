import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { X509Certificate, webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '../../src/pki/dev-certs.js';
import {
  commonNameOf,
  identifyDevice,
  isTeslaCaName,
  loadCaBundle,
  operatorCasOf,
  parseDistinguishedName,
  type DeviceKind,
  type IdentityResult,
} from '../../src/protocol/identity.js';

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'test', 'fixtures', 'tesla-ca-bundles.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('project root not found');
    dir = up;
  }
  return dir;
}
const ROOT = projectRoot();
/** Subjects and issuers of Tesla's published CA bundles, in bundle order (scripts/tesla-ca-facts.mjs). */
const TESLA_CA_FACTS = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'tesla-ca-bundles.json'), 'utf8')) as Record<
  'prod_ca.pem' | 'eng_ca.pem',
  Array<{ subject: string; issuer: string }>
>;

const VIN = '5YJ3E1EA9PF000001';
const TESLA_EKU = '1.3.6.1.4.1.49279.2';
const WIFI_EAP = `${TESLA_EKU}.5.1.1`;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const PRODUCT_ISSUERS = [
  'Tesla Motors Product Issuing CA',
  'Tesla Motors Product RSA Issuing CA',
  'Tesla Motors GF3 Product Issuing CA',
  'Tesla Motors GF3 Product RSA Issuing CA',
  'Tesla Motors GF0 Product Issuing CA',
  'Tesla Motors GF Austin Product Issuing CA',
  'Tesla Motors GF Berlin Product Issuing CA',
  'Tesla Energy Product Issuing CA',
  'Tesla Energy GF0 Product Issuing CA',
  'Tesla China Product Access Issuing CA',
  'Tesla GF0 Product Access Issuing CA',
  'Tesla GF3 Product Access Issuing CA',
  'Tesla GF Austin Product Access Issuing CA',
  'Tesla GF Berlin Product Access Issuing CA',
];

const EKU_TABLE: Array<[number, DeviceKind]> = [
  [1, 'vehicle_device'],
  [11, 'vehicle_board_device'],
  [2, 'energy_device'],
  [12, 'das_device'],
  [14, 'vehicle_service'],
  [15, 'das_service'],
  [16, 'energy_service'],
  [28, 'robotics_device'],
];

function accepted(result: IdentityResult) {
  if (!result.ok) expect.fail(`refused: ${result.reason} (${result.detail})`);
  return result.identity;
}

function refusedFor(result: IdentityResult): string {
  if (result.ok) expect.fail(`accepted as ${result.identity.kind}`);
  expect(result.detail).to.be.a('string').and.not.equal('');
  return result.reason;
}

describe('certificate identity', function () {
  const cas = new Map<string, CertificateAuthority>();
  let operatorCa: CertificateAuthority;
  let impostorCa: CertificateAuthority;
  let strangerCa: CertificateAuthority;

  async function ca(name: string): Promise<CertificateAuthority> {
    let found = cas.get(name);
    if (!found) {
      found = await createCertificateAuthority({ commonName: name });
      cas.set(name, found);
    }
    return found;
  }

  before(async () => {
    operatorCa = await createCertificateAuthority({ commonName: 'Example Fleet Vehicle CA', organization: 'Example Fleet' });
    // Same name as the operator CA, different key: must not pass as it
    impostorCa = await createCertificateAuthority({ commonName: 'Example Fleet Vehicle CA', organization: 'Example Fleet' });
    strangerCa = await createCertificateAuthority({ commonName: 'Some Other CA' });
  });

  const operators = () => [new X509Certificate(operatorCa.certPem)];

  describe('Tesla vehicle issuers', () => {
    for (const issuer of ['TeslaMotors', 'Tesla Issuing CA', 'Tesla Motors Products CA']) {
      it(`'${issuer}' issues vehicles, whatever their EKU`, async () => {
        const leaf = await issueCertificate({ issuer: await ca(issuer), commonName: VIN, extendedKeyUsages: [WIFI_EAP], clientAuth: true });
        const identity = accepted(identifyDevice(leaf.certPem, operators()));
        expect(identity).to.deep.equal({ deviceId: VIN, kind: 'vehicle_device', issuerCommonName: issuer, fromOperatorCa: false });
      });
    }

    it("'Tesla Motors Products CA' with OU 'Tesla Motors SN' issues vehicle boards", async () => {
      const leaf = await issueCertificate({ issuer: await ca('Tesla Motors Products CA'), commonName: 'board-17', organizationalUnit: 'Tesla Motors SN' });
      expect(accepted(identifyDevice(leaf.certPem, [])).kind).to.equal('vehicle_board_device');
    });

    it("the board OU counts only under 'Tesla Motors Products CA'", async () => {
      const leaf = await issueCertificate({ issuer: await ca('TeslaMotors'), commonName: VIN, organizationalUnit: 'Tesla Motors SN' });
      expect(accepted(identifyDevice(leaf.certPem, [])).kind).to.equal('vehicle_device');
      const other = await issueCertificate({ issuer: await ca('Tesla Motors Products CA'), commonName: VIN, organizationalUnit: 'Tesla Motors' });
      expect(accepted(identifyDevice(other.certPem, [])).kind).to.equal('vehicle_device');
    });

    it('a CN cannot forge the board OU with an embedded line break (and such a CN is no device id)', async () => {
      const leaf = await issueCertificate({ issuer: await ca('Tesla Motors Products CA'), commonName: `${VIN}\nOU=Tesla Motors SN` });
      expect(refusedFor(identifyDevice(leaf.certPem, []))).to.equal('malformed_device_id');
    });
  });

  describe('Tesla product issuers (decided by EKU)', () => {
    let n = 0;
    for (const [number, kind] of EKU_TABLE) {
      for (const arc of [4, 5]) {
        const oid = `${TESLA_EKU}.${arc}.${number}`;
        const issuer = PRODUCT_ISSUERS[n++ % PRODUCT_ISSUERS.length]!;
        it(`${oid} from '${issuer}' -> ${kind}`, async () => {
          const leaf = await issueCertificate({ issuer: await ca(issuer), commonName: 'device.serial.1', extendedKeyUsages: [oid], clientAuth: true });
          const identity = accepted(identifyDevice(leaf.certPem, []));
          expect(identity).to.deep.equal({ deviceId: 'device-serial-1', kind, issuerCommonName: issuer, fromOperatorCa: false });
        });
      }
    }

    it('every issuer of the family is recognised', async () => {
      for (const issuer of PRODUCT_ISSUERS) {
        const leaf = await issueCertificate({ issuer: await ca(issuer), commonName: VIN, extendedKeyUsages: [`${TESLA_EKU}.5.1`] });
        expect(accepted(identifyDevice(leaf.certPem, [])).kind, issuer).to.equal('vehicle_device');
      }
    });

    it('refuses a Wi-Fi EAP certificate even when a vehicle OID follows', async () => {
      const leaf = await issueCertificate({
        issuer: await ca(PRODUCT_ISSUERS[0]!),
        commonName: VIN,
        extendedKeyUsages: [WIFI_EAP, `${TESLA_EKU}.5.1`, `${TESLA_EKU}.4.1`],
      });
      expect(refusedFor(identifyDevice(leaf.certPem, []))).to.equal('wifi_eap_certificate');
    });

    it('takes the first recognised OID in certificate order, skipping unknown ones', async () => {
      const leaf = await issueCertificate({
        issuer: await ca(PRODUCT_ISSUERS[1]!),
        commonName: VIN,
        extendedKeyUsages: [CLIENT_AUTH, `${TESLA_EKU}.5.99`, `${TESLA_EKU}.5.12`, WIFI_EAP, `${TESLA_EKU}.5.1`],
      });
      expect(accepted(identifyDevice(leaf.certPem, [])).kind).to.equal('das_device');
    });

    it('refuses a certificate with no recognised EKU', async () => {
      const issuer = await ca(PRODUCT_ISSUERS[2]!);
      const standardOnly = await issueCertificate({ issuer, commonName: VIN, clientAuth: true, extendedKeyUsages: [`${TESLA_EKU}.5.3`] });
      expect(refusedFor(identifyDevice(standardOnly.certPem, []))).to.equal('unrecognised_eku');
      const none = await issueCertificate({ issuer, commonName: VIN });
      expect(refusedFor(identifyDevice(none.certPem, []))).to.equal('unrecognised_eku');
    });
  });

  describe('operator CAs', () => {
    it('a certificate from an operator CA is a vehicle with CN = VIN', async () => {
      const leaf = await issueCertificate({ issuer: operatorCa, commonName: VIN, clientAuth: true });
      expect(accepted(identifyDevice(leaf.certPem, operators()))).to.deep.equal({
        deviceId: VIN,
        kind: 'vehicle_device',
        issuerCommonName: 'Example Fleet Vehicle CA',
        fromOperatorCa: true,
      });
    });

    it('is found among several operator CAs', async () => {
      const leaf = await issueCertificate({ issuer: operatorCa, commonName: VIN, clientAuth: true });
      const many = [new X509Certificate(strangerCa.certPem), new X509Certificate(impostorCa.certPem), ...operators()];
      expect(accepted(identifyDevice(leaf.certPem, many)).fromOperatorCa).to.equal(true);
    });

    it('a CA with the same name but another key is not the operator CA', async () => {
      const forged = await issueCertificate({ issuer: impostorCa, commonName: VIN, clientAuth: true });
      expect(refusedFor(identifyDevice(forged.certPem, operators()))).to.equal('unknown_issuer');
    });

    it("a certificate naming the operator CA as issuer but signed by another key is refused", async () => {
      // No key identifiers, so only the signature tells the two CAs apart.
      const crypto = webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0];
      const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const forged = await x509.X509CertificateGenerator.create(
        {
          serialNumber: '0badc0de',
          subject: new x509.Name([{ CN: [{ utf8String: VIN }] }]),
          issuer: operatorCa.certificate.subjectName,
          publicKey: keys.publicKey,
          signingKey: impostorCa.privateKey,
          signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        },
        crypto,
      );
      const forgedPem = forged.toString('pem');
      expect(new X509Certificate(forgedPem).checkIssued(operators()[0]!), 'names alone match').to.equal(true);
      expect(refusedFor(identifyDevice(forgedPem, operators()))).to.equal('unknown_issuer');
    });

    it('refuses any other issuer', async () => {
      const leaf = await issueCertificate({ issuer: strangerCa, commonName: VIN, clientAuth: true });
      expect(refusedFor(identifyDevice(leaf.certPem, operators()))).to.equal('unknown_issuer');
      expect(refusedFor(identifyDevice(leaf.certPem, []))).to.equal('unknown_issuer');
    });

    it('a certificate chained through an operator intermediate is found when the intermediate is listed', async () => {
      const intermediate = await createCertificateAuthority({ commonName: 'Example Fleet Issuing CA', parent: operatorCa });
      const leaf = await issueCertificate({ issuer: intermediate, commonName: VIN, clientAuth: true });
      expect(refusedFor(identifyDevice(leaf.certPem, operators()))).to.equal('unknown_issuer');
      const identity = accepted(identifyDevice(leaf.certPem, [...operators(), new X509Certificate(intermediate.certPem)]));
      expect(identity.issuerCommonName).to.equal('Example Fleet Issuing CA');
    });
  });

  describe('common name and input', () => {
    it("replaces every '.' of the CN with '-'", async () => {
      const leaf = await issueCertificate({ issuer: await ca('Tesla Issuing CA'), commonName: 'a.b..c.' });
      expect(accepted(identifyDevice(leaf.certPem, [])).deviceId).to.equal('a-b--c-');
    });

    it('reads RFC 2253 special characters of the CN literally, and refuses them as a device id', async () => {
      const cn = 'VIN, "x"+y=z\\;<#>';
      const leaf = await issueCertificate({ issuer: await ca('Tesla Issuing CA'), commonName: cn });
      expect(refusedFor(identifyDevice(leaf.certPem, []))).to.equal('malformed_device_id');
      expect(parseDistinguishedName(new X509Certificate(leaf.certPem).subject).find((a) => a.key === 'CN')?.value).to.equal(cn);
    });

    it('refuses an empty common name', async () => {
      const fromOperator = await issueCertificate({ issuer: operatorCa, commonName: '', dnsNames: ['car.invalid'] });
      expect(refusedFor(identifyDevice(fromOperator.certPem, operators()))).to.equal('empty_common_name');
      const fromTesla = await issueCertificate({ issuer: await ca('TeslaMotors'), commonName: '', organizationalUnit: 'x' });
      expect(refusedFor(identifyDevice(fromTesla.certPem, []))).to.equal('empty_common_name');
    });

    it('reports a missing certificate', () => {
      expect(refusedFor(identifyDevice('', operators()))).to.equal('no_certificate');
      expect(refusedFor(identifyDevice('  \n', operators()))).to.equal('no_certificate');
    });

    it('reports an unparseable certificate', () => {
      expect(refusedFor(identifyDevice('not a certificate', operators()))).to.equal('unparseable_certificate');
      const corrupt = '-----BEGIN CERTIFICATE-----\nTUlJQmFkQmFkQmFk\n-----END CERTIFICATE-----\n';
      expect(refusedFor(identifyDevice(corrupt, operators()))).to.equal('unparseable_certificate');
    });
  });

  describe('distinguished names as Node prints them', () => {
    it('splits lines and multi-valued RDNs, unescaping values', () => {
      expect(parseDistinguishedName('CN=a\\, b \\+ c + OU=m\\+n\nO=Tesla\\\\Inc\\0Ax\nC=US')).to.deep.equal([
        { key: 'CN', value: 'a, b + c' },
        { key: 'OU', value: 'm+n' },
        { key: 'O', value: 'Tesla\\Inc\nx' },
        { key: 'C', value: 'US' },
      ]);
    });

    it('keeps escaped spaces at the ends of a value and decodes UTF-8 hex escapes', () => {
      expect(parseDistinguishedName('CN=\\ lead\\  + OU=\\C3\\A9t\\C3\\A9\nO=\\#1 =eq')).to.deep.equal([
        { key: 'CN', value: ' lead ' },
        { key: 'OU', value: 'été' },
        { key: 'O', value: '#1 =eq' },
      ]);
      expect(parseDistinguishedName('CN=é ü 中 😀')).to.deep.equal([{ key: 'CN', value: 'é ü 中 😀' }]);
    });

    it('takes the last CN, as the reference does', () => {
      expect(commonNameOf('CN=first\nOU=x\nCN=second')).to.equal('second');
      expect(commonNameOf('O=no common name')).to.equal('');
      expect(commonNameOf(undefined), 'Node renders an empty name as undefined').to.equal('');
    });
  });

  describe('CA bundles', () => {
    it('knows Tesla CA names and nothing else', () => {
      for (const name of [...PRODUCT_ISSUERS, 'TeslaMotors', 'Tesla Issuing CA', 'Tesla Motors Products CA', 'Tesla Motors Root CA', 'Tesla Product Root CA']) {
        expect(isTeslaCaName(name), name).to.equal(true);
      }
      for (const name of ['Fleet Telemetry Dev Vehicle CA', 'Tesla', 'teslamotors', 'Tesla Issuing CA ', '']) {
        expect(isTeslaCaName(name), name).to.equal(false);
      }
    });

    it('loads every certificate of a bundle, ignoring text between blocks', async () => {
      const tesla = await ca('Tesla Motors Root CA');
      const pem = `# operator CA\n${operatorCa.certPem}\nsome comment\n${tesla.certPem.replace(/\n/g, '\r\n')}${strangerCa.certPem}`;
      const bundle = loadCaBundle(pem);
      expect(bundle.map((c) => commonNameOf(c.subject))).to.deep.equal(['Example Fleet Vehicle CA', 'Tesla Motors Root CA', 'Some Other CA']);
      expect(operatorCasOf(bundle).map((c) => commonNameOf(c.subject))).to.deep.equal(['Example Fleet Vehicle CA', 'Some Other CA']);
    });

    it('names what is wrong with a bad bundle, without quoting key material', () => {
      expect(() => loadCaBundle('')).to.throw(/no PEM certificate/);
      expect(() => loadCaBundle('just text')).to.throw(/no PEM certificate/);
      const key = operatorCa.keyPem;
      expect(() => loadCaBundle(operatorCa.certPem + key)).to.throw(/block #2 is a private key/).and.satisfy((e: Error) => {
        return !e.message.includes(key.split('\n')[1]!);
      });
      expect(() => loadCaBundle(operatorCa.certPem.replace(/-----END CERTIFICATE-----\n$/, ''))).to.throw(/no matching END/);
      expect(() => loadCaBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).to.throw(/certificate #1 cannot be parsed/);
      expect(() => loadCaBundle('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')).to.throw(/not a CERTIFICATE/);
    });

    it("finds no operator CA in Tesla's published bundles (CAs made with their subjects and issuers)", async () => {
      // The bundles are Tesla's reference data; their names are committed as facts and the CAs
      // are made here, each signed by the key of the bundle's CA its issuer names.
      const crypto = webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0];
      const algorithm = { name: 'ECDSA', hash: 'SHA-256' } as const;
      const keys = new Map<string, webcrypto.CryptoKeyPair>();
      const keysOf = async (dn: string) => {
        let found = keys.get(dn);
        if (!found) keys.set(dn, (found = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])));
        return found;
      };
      const nameOf = (dn: string) => new x509.Name(dn.split('\n').map((rdn) => {
        const at = rdn.indexOf('=');
        return { [rdn.slice(0, at)]: [rdn.slice(at + 1)] };
      }));
      for (const [file, count] of [['prod_ca.pem', 14], ['eng_ca.pem', 8]] as const) {
        const facts = TESLA_CA_FACTS[file];
        expect(facts, file).to.have.length(count);
        const known = new Set(facts.map((f) => f.subject));
        const pems: string[] = [];
        for (const { subject, issuer } of facts) {
          expect(known.has(issuer), `${file}: the issuer of ${subject} is in the bundle`).to.equal(true);
          const cert = await x509.X509CertificateGenerator.create(
            {
              serialNumber: String(pems.length + 1).padStart(2, '0'),
              subject: nameOf(subject),
              issuer: nameOf(issuer),
              publicKey: (await keysOf(subject)).publicKey,
              signingKey: (await keysOf(issuer)).privateKey,
              signingAlgorithm: algorithm,
              extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
            },
            crypto,
          );
          pems.push(cert.toString('pem'));
        }
        const bundle = loadCaBundle(`# ${file}\n${pems.join('\n')}\n`);
        expect(bundle.map((c) => ({ subject: c.subject, issuer: c.issuer })), file).to.deep.equal(facts);
        expect(operatorCasOf(bundle).map((c) => c.subject), file).to.deep.equal([]);
      }
    });

    it("the committed facts are those of Tesla's published bundles, when those are beside the clone", function () {
      const dir = resolve(process.env.TESLA_CA_DIR ?? join(ROOT, '..', 'shared', 'tesla-ca'));
      if (!existsSync(join(dir, 'prod_ca.pem'))) {
        // Tesla's bundles are reference data, not part of the repository: said, not hidden.
        this.test!.title += ` (pending: no ${dir}; set TESLA_CA_DIR to compare)`;
        this.skip();
      }
      for (const file of ['prod_ca.pem', 'eng_ca.pem'] as const) {
        const bundle = loadCaBundle(readFileSync(join(dir, file), 'utf8'));
        expect(bundle.map((c) => ({ subject: c.subject, issuer: c.issuer })), file).to.deep.equal(TESLA_CA_FACTS[file]);
        expect(operatorCasOf(bundle).map((c) => c.subject), file).to.deep.equal([]);
      }
    });
  });
});
