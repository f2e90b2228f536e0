// A development PKI: everything the demo, the tests and `certs dev` need to run the server and its
// simulated cars over real mutual TLS on one machine. Never for production: a real deployment uses
// a public server certificate and Tesla's vehicle CAs.
//
//   dev root CA -> dev server intermediate CA -> server leaf (SAN: domain, localhost, 127.0.0.1, ::1)
//   dev vehicle CA (an operator CA, deliberately not named like Tesla's) -> one client cert per VIN

// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API loaded
// first; ES modules evaluate imports in order, so this line must stay above the x509 import.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { certificateBlocks } from './pem.js';

type CryptoKeyT = webcrypto.CryptoKey;

// The typings of @peculiar/x509 name the DOM's Crypto type, which this project's lib set lacks.
const crypto = webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0];
x509.cryptoProvider.set(crypto);

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const DAY_MS = 86_400_000;
const DEFAULT_CA_DAYS = 3650;
const DEFAULT_LEAF_DAYS = 825;
/** Backdating absorbs small clock differences between the machine that issues and the one that checks. */
const BACKDATE_MS = 5 * 60_000;
/** A certificate this close to expiry is replaced rather than reused. */
const RENEW_MARGIN_MS = DAY_MS;

export interface CertificateAuthority {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  commonName: string;
  certificate: x509.X509Certificate;
  privateKey: CryptoKeyT;
  /** This CA's certificate followed by those of the CAs above it, root last. */
  chainPems: string[];
}

export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** The leaf followed by its issuing intermediates (the root excluded): what a TLS server sends. */
  chainPem: string;
}

interface Validity {
  notBefore?: Date;
  notAfter?: Date;
  validDays?: number;
}

export async function createCertificateAuthority(
  o: { commonName: string; organization?: string; parent?: CertificateAuthority } & Validity,
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(o, DEFAULT_CA_DAYS, o.parent);
  const subject = nameOf([
    ['CN', o.commonName],
    ['O', o.organization],
  ]);
  const extensions: x509.Extension[] = [
    // An intermediate may sign leaves only; the root's path length is left open.
    new x509.BasicConstraintsExtension(true, o.parent ? 0 : undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
  ];
  let certificate: x509.X509Certificate;
  if (o.parent) {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(o.parent.certificate.publicKey, false, crypto));
    certificate = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(),
        subject,
        issuer: o.parent.certificate.subjectName,
        notBefore,
        notAfter,
        publicKey: keys.publicKey,
        signingKey: o.parent.privateKey,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions,
      },
      crypto,
    );
  } else {
    certificate = await x509.X509CertificateGenerator.createSelfSigned(
      { serialNumber: serialNumber(), name: subject, notBefore, notAfter, keys, signingAlgorithm: SIGNING_ALGORITHM, extensions },
      crypto,
    );
  }
  const certPem = pemOf(certificate);
  return {
    certPem,
    keyPem: await privateKeyPem(keys.privateKey),
    commonName: o.commonName,
    certificate,
    privateKey: keys.privateKey,
    chainPems: [certPem, ...(o.parent?.chainPems ?? [])],
  };
}

/**
 * A CA from its PEM files, to issue more certificates with (e.g. a new VIN under an existing
 * vehicle CA). `chainPems` lists the CAs above it, if any. Throws when the key does not belong to
 * the certificate.
 */
export async function loadCertificateAuthority(certPem: string, keyPem: string, chainPems: string[] = []): Promise<CertificateAuthority> {
  if (!keyMatches(new X509Certificate(certPem), keyPem)) {
    throw new Error('CA private key does not belong to the CA certificate');
  }
  const certificate = new x509.X509Certificate(certPem);
  const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, true, ['sign']);
  return {
    certPem: pemOf(certificate),
    keyPem,
    commonName: certificate.subjectName.getField('CN').at(-1) ?? '',
    certificate,
    privateKey,
    chainPems: [pemOf(certificate), ...chainPems],
  };
}

export async function issueCertificate(
  o: {
    issuer: CertificateAuthority;
    /** '' leaves the subject without a CN. */
    commonName: string;
    organizationalUnit?: string;
    /** Extended key usage OIDs, written in this order before serverAuth/clientAuth. */
    extendedKeyUsages?: string[];
    dnsNames?: string[];
    ipAddresses?: string[];
    serverAuth?: boolean;
    clientAuth?: boolean;
  } & Validity,
): Promise<IssuedCertificate> {
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(o, DEFAULT_LEAF_DAYS, o.issuer);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    await x509.AuthorityKeyIdentifierExtension.create(o.issuer.certificate.publicKey, false, crypto),
  ];
  const usages = [...(o.extendedKeyUsages ?? [])];
  if (o.serverAuth) usages.push(OID_SERVER_AUTH);
  if (o.clientAuth) usages.push(OID_CLIENT_AUTH);
  const uniqueUsages = [...new Set(usages)];
  if (uniqueUsages.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(uniqueUsages));
  const altNames: x509.JsonGeneralNames = [
    ...(o.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));

  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: nameOf([
        ['CN', o.commonName === '' ? undefined : o.commonName],
        ['OU', o.organizationalUnit],
      ]),
      issuer: o.issuer.certificate.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: o.issuer.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions,
    },
    crypto,
  );
  const certPem = pemOf(certificate);
  // A self-signed issuer is a root: clients must already hold it, so it is not sent.
  const intermediates = o.issuer.chainPems.filter((pem) => !isSelfSigned(pem));
  return { certPem, keyPem: await privateKeyPem(keys.privateKey), chainPem: [certPem, ...intermediates].join('') };
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  // extractable, so the private key can be written out as PKCS#8
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKeyT): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return withFinalNewline(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

function pemOf(certificate: x509.X509Certificate): string {
  return withFinalNewline(certificate.toString('pem'));
}

function withFinalNewline(pem: string): string {
  const unix = pem.replace(/\r\n/g, '\n');
  return unix.endsWith('\n') ? unix : `${unix}\n`;
}

/** A positive 128-bit serial (the top bit clear, so DER needs no sign byte; never zero). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function validity(o: Validity, defaultDays: number, issuer?: CertificateAuthority): { notBefore: Date; notAfter: Date } {
  const notBefore = o.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  let notAfter = o.notAfter ?? new Date(notBefore.getTime() + (o.validDays ?? defaultDays) * DAY_MS);
  // Nothing can outlive the CA that vouches for it.
  if (issuer && notAfter > issuer.certificate.notAfter) notAfter = issuer.certificate.notAfter;
  if (!(notAfter > notBefore)) {
    throw new RangeError(`certificate validity ends (${notAfter.toISOString()}) before it begins (${notBefore.toISOString()})`);
  }
  return { notBefore, notAfter };
}

/** An X.509 name from (type, value) pairs in order, values taken literally (no DN-string parsing). */
function nameOf(parts: Array<[string, string | undefined]>): x509.Name {
  const rdns = parts
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([type, value]) => ({ [type]: [{ utf8String: value }] }));
  return new x509.Name(rdns);
}

function isSelfSigned(pem: string): boolean {
  const cert = new X509Certificate(pem);
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    return fromKey.equals(cert.publicKey.export({ type: 'spki', format: 'der' }));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The dev PKI on disk

export const DEFAULT_DEV_VINS: [string, string, string] = ['5YJ3E1EA9PF000001', '7SAYGDEE5PA000002', 'LRW3E7FA8PC000003'];

export const DEV_ROOT_CA_NAME = 'Fleet Telemetry Dev Root CA';
export const DEV_SERVER_CA_NAME = 'Fleet Telemetry Dev Server CA';
export const DEV_VEHICLE_CA_NAME = 'Fleet Telemetry Dev Vehicle CA';
const DEV_ORGANIZATION = 'Fleet Telemetry Development';

export interface DevPkiFiles {
  dir: string;
  rootCaCert: string;
  serverCaCert: string;
  /** Server leaf followed by the server intermediate CA. */
  serverCert: string;
  serverKey: string;
  /** Server intermediate CA followed by the root: the `ca` a car is configured with. */
  caChain: string;
  vehicleCaCert: string;
  vehicleCaKey: string;
  vehicleCert(vin: string): string;
  vehicleKey(vin: string): string;
  vins: string[];
}

/** A VIN becomes a file name, so only letters, digits and '-' are accepted. */
const VIN_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

/**
 * Makes sure `dir` holds a complete, valid dev PKI for `domain` and `vins`, creating only what is
 * missing or unusable:
 * - the server chain (root, intermediate, leaf) is made anew when any part is missing, mismatched,
 *   within a day of expiry, or the leaf does not cover `domain`. The root and intermediate keys are
 *   not kept: the server chain is always replaced as a whole, and no one can mint more from it;
 * - the vehicle CA is kept (its key too, to issue certificates for new VINs) unless it is missing,
 *   mismatched or about to expire;
 * - each VIN's certificate is issued when missing, expired or not from the current vehicle CA.
 * `force` replaces everything. Keys are written 0600, certificates 0644, directories 0700.
 */
export async function ensureDevPki(o: { dir: string; domain: string; vins: string[]; force?: boolean; validDays?: number }): Promise<DevPkiFiles> {
  const domain = o.domain.trim();
  if (domain === '' || /[\s/\\]/.test(domain)) throw new Error(`dev PKI: '${o.domain}' is not a usable domain name`);
  const vins = [...new Set(o.vins)];
  for (const vin of vins) {
    if (!VIN_PATTERN.test(vin)) throw new Error(`dev PKI: '${vin}' is not a usable VIN (letters, digits and '-' only)`);
  }
  const dir = o.dir;
  const vehiclesDir = join(dir, 'vehicles');
  const files: DevPkiFiles = {
    dir,
    rootCaCert: join(dir, 'root-ca.pem'),
    serverCaCert: join(dir, 'server-ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    caChain: join(dir, 'ca-chain.pem'),
    vehicleCaCert: join(dir, 'vehicle-ca.pem'),
    vehicleCaKey: join(dir, 'vehicle-ca.key'),
    vehicleCert: (vin) => join(vehiclesDir, `${vin}.pem`),
    vehicleKey: (vin) => join(vehiclesDir, `${vin}.key`),
    vins,
  };
  await ensurePrivateDir(dir);
  await ensurePrivateDir(vehiclesDir);
  const now = Date.now();
  const force = o.force === true;

  if (force || !(await serverChainUsable(files, domain, now))) {
    await writeServerChain(files, domain, o.validDays);
  }

  let vehicleCa = force ? null : await loadVehicleCa(files, now);
  const freshVehicleCa = vehicleCa === null;
  if (vehicleCa === null) {
    vehicleCa = await createCertificateAuthority({ commonName: DEV_VEHICLE_CA_NAME, organization: DEV_ORGANIZATION });
    await writeKey(files.vehicleCaKey, vehicleCa.keyPem);
    await writeCert(files.vehicleCaCert, vehicleCa.certPem);
  }
  const vehicleCaCert = new X509Certificate(vehicleCa.certPem);
  for (const vin of vins) {
    if (!freshVehicleCa && (await vehicleCertUsable(files, vin, vehicleCaCert, now))) continue;
    const issued = await issueCertificate({ issuer: vehicleCa, commonName: vin, clientAuth: true, validDays: o.validDays });
    await writeKey(files.vehicleKey(vin), issued.keyPem);
    await writeCert(files.vehicleCert(vin), issued.certPem);
  }
  return files;
}

async function writeServerChain(files: DevPkiFiles, domain: string, validDays: number | undefined): Promise<void> {
  const root = await createCertificateAuthority({ commonName: DEV_ROOT_CA_NAME, organization: DEV_ORGANIZATION });
  const intermediate = await createCertificateAuthority({ commonName: DEV_SERVER_CA_NAME, organization: DEV_ORGANIZATION, parent: root });
  const names = [...new Set([domain, 'localhost', '127.0.0.1', '::1'])];
  const server = await issueCertificate({
    issuer: intermediate,
    commonName: domain,
    dnsNames: names.filter((n) => isIP(n) === 0),
    ipAddresses: names.filter((n) => isIP(n) !== 0),
    serverAuth: true,
    validDays,
  });
  await writeCert(files.rootCaCert, root.certPem);
  await writeCert(files.serverCaCert, intermediate.certPem);
  await writeCert(files.caChain, intermediate.certPem + root.certPem);
  await writeKey(files.serverKey, server.keyPem);
  await writeCert(files.serverCert, server.chainPem);
}

async function serverChainUsable(files: DevPkiFiles, domain: string, now: number): Promise<boolean> {
  try {
    const rootPem = await readFile(files.rootCaCert, 'utf8');
    const root = new X509Certificate(rootPem);
    const intermediatePem = await readFile(files.serverCaCert, 'utf8');
    const intermediate = new X509Certificate(intermediatePem);
    if ((await readFile(files.caChain, 'utf8')) !== intermediatePem + rootPem) return false;
    const chain = certificateBlocks(await readFile(files.serverCert, 'utf8'));
    if (chain.length !== 2 || chain[1] !== intermediatePem) return false;
    const leaf = new X509Certificate(chain[0]!);
    const covers = isIP(domain) === 0 ? leaf.checkHost(domain) !== undefined : leaf.checkIP(domain) !== undefined;
    return (
      covers &&
      issued(leaf, intermediate) &&
      issued(intermediate, root) &&
      [root, intermediate, leaf].every((c) => current(c, now)) &&
      keyMatches(leaf, await readFile(files.serverKey, 'utf8'))
    );
  } catch {
    return false; // missing or unreadable: made anew
  }
}

async function loadVehicleCa(files: DevPkiFiles, now: number): Promise<CertificateAuthority | null> {
  try {
    const certPem = await readFile(files.vehicleCaCert, 'utf8');
    const cert = new X509Certificate(certPem);
    if (!current(cert, now) || !cert.ca) return null;
    return await loadCertificateAuthority(certPem, await readFile(files.vehicleCaKey, 'utf8'));
  } catch {
    return null;
  }
}

async function vehicleCertUsable(files: DevPkiFiles, vin: string, ca: X509Certificate, now: number): Promise<boolean> {
  try {
    const cert = new X509Certificate(await readFile(files.vehicleCert(vin), 'utf8'));
    return (
      issued(cert, ca) &&
      current(cert, now) &&
      (cert.subject ?? '').split('\n').includes(`CN=${vin}`) &&
      keyMatches(cert, await readFile(files.vehicleKey(vin), 'utf8'))
    );
  } catch {
    return false;
  }
}

function issued(cert: X509Certificate, by: X509Certificate): boolean {
  return cert.checkIssued(by) && cert.verify(by.publicKey);
}

function current(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && Date.parse(cert.validTo) - RENEW_MARGIN_MS > now;
}

async function ensurePrivateDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  // Tighten only what this call made: `dir` may be a directory the user already shares.
  if (created !== undefined) await chmod(dir, 0o700);
}

function writeKey(path: string, pem: string): Promise<void> {
  return writeAtomically(path, pem, 0o600);
}

function writeCert(path: string, pem: string): Promise<void> {
  return writeAtomically(path, pem, 0o644);
}

/**
 * Write-then-rename (write-file-atomic: the temporary file is fsynced before the rename and removed on
 * failure), so an interrupted run or a power cut never leaves half a key, certificate or token file.
 * The mode is set exactly, whatever the umask.
 */
export async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  await writeFileAtomic(path, content, { mode, encoding: 'utf8' });
}
