import { isIP } from 'node:net';
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { certificateBlocks } from '../pki/pem.js';
import { readTextFile } from './config-file.js';

/**
 * Content checks of the PEM files the listeners will load. uWS reports a bad certificate or key only
 * as a failed listen, long after the operator's mistake; here each file is opened, parsed and checked
 * against the others so the start-up error names the setting and the reason.
 */

export interface Reporter {
  error(env: string, message: string): void;
  warn(env: string, message: string): void;
}

/** A file setting: its ENV name, the absolute path to read and the path as the operator wrote it. */
export interface FileRef {
  env: string;
  path: string;
  shown: string;
}

const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;
const MAX_CHAIN_DEPTH = 8;

export function describeDuration(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000);
  const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds < 120) return plural(seconds, 'second');
  if (seconds < 2 * 3600) return plural(Math.round(seconds / 60), 'minute');
  if (seconds < 2 * 86400) return plural(Math.round(seconds / 3600), 'hour');
  return plural(Math.round(seconds / 86400), 'day');
}

function readPem(file: FileRef, report: Reporter): string | undefined {
  const result = readTextFile(file.path, file.shown);
  if ('missing' in result) {
    report.error(file.env, `file not found: ${file.shown}`);
    return undefined;
  }
  if ('problem' in result) {
    report.error(file.env, result.problem);
    return undefined;
  }
  return result.text;
}

/** All certificates of a PEM file, in file order; undefined (and reported) when there are none. */
/** A certificate file's contents, leaf first: never empty, so the leaf needs no check at each use. */
export type CertificateChain = [leaf: X509Certificate, ...intermediates: X509Certificate[]];

export function readCertificates(file: FileRef, report: Reporter): CertificateChain | undefined {
  const text = readPem(file, report);
  if (text === undefined) return undefined;
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) {
    const hint = /PRIVATE KEY-----/.test(text) ? ' (it holds a private key)' : '';
    report.error(file.env, `no PEM certificate found in ${file.shown}${hint}`);
    return undefined;
  }
  const certificates: X509Certificate[] = [];
  let broken = false;
  blocks.forEach((block, index) => {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      broken = true;
      report.error(file.env, `certificate #${index + 1} in ${file.shown} cannot be parsed`);
    }
  });
  const [leaf, ...intermediates] = certificates;
  return broken || leaf === undefined ? undefined : [leaf, ...intermediates];
}

function subjectName(certificate: X509Certificate): string {
  return certificate.subject.replace(/\n/g, ', ');
}

/** Expired and not-yet-valid are errors: a car refuses both. Expiring soon is worth a warning. */
function checkValidity(env: string, certificate: X509Certificate, now: Date, what: string, report: Reporter): void {
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  const nowMs = now.getTime();
  if (nowMs > notAfter.getTime()) {
    report.error(
      env,
      `${what} expired ${describeDuration(nowMs - notAfter.getTime())} ago (notAfter ${notAfter.toISOString()})`,
    );
  } else if (nowMs < notBefore.getTime()) {
    report.error(
      env,
      `${what} is not valid yet: valid from ${notBefore.toISOString()} (in ${describeDuration(notBefore.getTime() - nowMs)}); check the clock`,
    );
  } else if (notAfter.getTime() - nowMs < EXPIRY_WARNING_MS) {
    report.warn(env, `${what} expires in ${describeDuration(notAfter.getTime() - nowMs)} (notAfter ${notAfter.toISOString()})`);
  }
}

function readPrivateKey(file: FileRef, passphrase: string, report: Reporter): KeyObject | undefined {
  const text = readPem(file, report);
  if (text === undefined) return undefined;
  if (!/PRIVATE KEY-----/.test(text)) {
    const hint = /BEGIN CERTIFICATE-----/.test(text) ? ' (it holds a certificate)' : '';
    report.error(file.env, `no PEM private key found in ${file.shown}${hint}`);
    return undefined;
  }
  const encrypted = /ENCRYPTED/.test(text);
  try {
    return createPrivateKey({ key: text, format: 'pem', passphrase: passphrase === '' ? undefined : passphrase });
  } catch {
    // OpenSSL's wording differs by version and says nothing an operator can act on; ours does.
    if (encrypted && passphrase === '') {
      report.error(file.env, `private key in ${file.shown} is encrypted: set TLS_KEY_PASSPHRASE`);
    } else if (encrypted) {
      report.error(file.env, `private key in ${file.shown} cannot be decrypted with TLS_KEY_PASSPHRASE (wrong passphrase?)`);
    } else {
      report.error(file.env, `private key in ${file.shown} cannot be parsed`);
    }
    return undefined;
  }
}

export interface KeyPairCheck {
  cert: FileRef;
  key: FileRef;
  passphrase: string;
  now: Date;
}

/**
 * The certificate file (leaf first, intermediates after) and its key: both parse, the key belongs to
 * the leaf, every certificate is inside its validity period. Returns the certificates when the leaf
 * is usable, for the domain and chain checks that follow.
 */
export function checkKeyPair(check: KeyPairCheck, report: Reporter): CertificateChain | undefined {
  const certificates = readCertificates(check.cert, report);
  const key = readPrivateKey(check.key, check.passphrase, report);
  if (certificates === undefined) return undefined;
  const [leaf, ...intermediates] = certificates;
  checkValidity(check.cert.env, leaf, check.now, 'certificate', report);
  intermediates.forEach((certificate, index) =>
    checkValidity(check.cert.env, certificate, check.now, `intermediate certificate #${index + 2} ("${subjectName(certificate)}")`, report),
  );
  if (key !== undefined && !leaf.checkPrivateKey(key)) {
    report.error(check.key.env, `private key in ${check.key.shown} does not match the certificate in ${check.cert.env} (${check.cert.shown})`);
  }
  return certificates;
}

/** Whether the leaf covers the name a car connects to, checked the way a TLS client does. */
export function coversDomain(leaf: X509Certificate, domain: string): boolean {
  return isIP(domain) !== 0 ? leaf.checkIP(domain) !== undefined : leaf.checkHost(domain) !== undefined;
}

export function describeNames(leaf: X509Certificate): string {
  return leaf.subjectAltName ?? `no subjectAltName; subject ${subjectName(leaf)}`;
}

function issuedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

/**
 * Whether the server's chain reaches one of the anchors: the check a car makes with the `ca` of its
 * telemetry config. Intermediates come from the server's own certificate file (uWS sends them).
 */
export function chainReachesAnchor(chain: CertificateChain, anchors: X509Certificate[]): boolean {
  const [leaf, ...intermediates] = chain;
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    if (anchors.some((anchor) => anchor.fingerprint256 === current.fingerprint256)) return true;
    if (anchors.some((anchor) => issuedBy(current, anchor))) return true;
    const next = intermediates.find((candidate) => candidate !== current && issuedBy(current, candidate));
    if (next === undefined) return false;
    current = next;
  }
  return false;
}

/**
 * A CA bundle: at least one certificate, all parseable. `warnExpired` is off for the vehicle CA
 * bundles: Tesla's own bundle carries an expired CA, and a warning on every start that the operator
 * cannot act on teaches them to ignore warnings.
 */
export function checkCaBundle(file: FileRef, now: Date, warnExpired: boolean, report: Reporter): X509Certificate[] | undefined {
  const certificates = readCertificates(file, report);
  if (certificates === undefined || !warnExpired) return certificates;
  for (const certificate of certificates) {
    if (now.getTime() > new Date(certificate.validTo).getTime()) {
      report.warn(file.env, `CA certificate "${subjectName(certificate)}" in ${file.shown} has expired`);
    }
  }
  return certificates;
}

/**
 * The app public key Tesla fetches from the domain: a P-256 public key. A private key here would be
 * published to the world, so that is refused outright.
 */
export function checkPublicKeyFile(file: FileRef, report: Reporter): void {
  const text = readPem(file, report);
  if (text === undefined) return;
  if (/PRIVATE KEY-----/.test(text)) {
    report.error(file.env, `${file.shown} holds a private key; it must hold only the public key (it is served publicly)`);
    return;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch {
    report.error(file.env, `no PEM public key found in ${file.shown}`);
    return;
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const got = key.asymmetricKeyType === 'ec' ? `EC ${curve ?? 'unknown curve'}` : String(key.asymmetricKeyType);
    report.error(file.env, `public key in ${file.shown} must be an EC P-256 (prime256v1) key, got ${got}`);
  }
}
