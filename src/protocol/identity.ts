// Who is on the other end of a vehicle connection, decided only from its verified client
// certificate (never from message contents). Rules: protocol facts, section 1.
//
// The TLS layer has already verified the chain against Tesla's CAs plus the operator's; these rules
// then say what kind of device the certificate names, and refuse the ones that are not cars.

import { X509Certificate, type KeyObject } from 'node:crypto';
import { VIN_PATTERN } from './vin.js';

export type DeviceKind =
  | 'vehicle_device'
  | 'vehicle_board_device'
  | 'energy_device'
  | 'das_device'
  | 'vehicle_service'
  | 'das_service'
  | 'energy_service'
  | 'robotics_device';

export type RefusalReason =
  | 'no_certificate'
  | 'unparseable_certificate'
  | 'unknown_issuer'
  | 'wifi_eap_certificate'
  | 'unrecognised_eku'
  | 'empty_common_name'
  | 'malformed_device_id';

export interface DeviceIdentity {
  /** Subject CN with every '.' replaced by '-': the VIN for a car. */
  deviceId: string;
  kind: DeviceKind;
  issuerCommonName: string;
  /** Issued by one of the operator's own CAs (dev, test or private fleet) rather than Tesla's. */
  fromOperatorCa: boolean;
}

export type IdentityResult =
  | { ok: true; identity: DeviceIdentity }
  | { ok: false; reason: RefusalReason; detail: string };

/** Issuers whose certificates are cars, whatever their extended key usages. */
const VEHICLE_ISSUERS: ReadonlySet<string> = new Set(['TeslaMotors', 'Tesla Issuing CA', 'Tesla Motors Products CA']);
/** Within VEHICLE_ISSUERS, this issuer plus a first subject OU of BOARD_UNIT marks a board, not a car. */
const BOARD_ISSUER = 'Tesla Motors Products CA';
const BOARD_UNIT = 'Tesla Motors SN';

/** Issuers that sign many device kinds; the kind is carried by a Tesla extended key usage OID. */
const PRODUCT_ISSUERS: ReadonlySet<string> = new Set([
  'Tesla Motors Product Issuing CA',
  'Tesla Motors Product RSA Issuing CA',
  'Tesla Motors GF3 Product Issuing CA',
  'Tesla Motors GF3 Product RSA Issuing CA',
  'Tesla Motors GF0 Product Issuing CA',
  'Tesla Motors GF Austin Product Issuing CA',
  'Tesla Motors GF Berlin Product Issuing CA',
  'Tesla Energy Product Issuing CA',
  'Tesla Energy GF0 Product Issuing CA',
  'Tesla Product Access Issuing CA',
  'Tesla China Product Access Issuing CA',
  'Tesla GF0 Product Access Issuing CA',
  'Tesla GF3 Product Access Issuing CA',
  'Tesla GF Austin Product Access Issuing CA',
  'Tesla GF Berlin Product Access Issuing CA',
]);

/** Roots and policy CAs of Tesla's published bundles: they sign CAs, not devices. */
const TESLA_UPPER_CAS: ReadonlySet<string> = new Set([
  'Tesla Motors Root CA',
  'Tesla Product Root CA',
  'Tesla Product RSA Root CA',
  'Tesla Root CA',
  'Tesla Policy CA',
]);

const WIFI_EAP = 'wifi_eap';
const TESLA_EKU = '1.3.6.1.4.1.49279.2';
const WIFI_EAP_EKU = `${TESLA_EKU}.5.1.1`;
const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/**
 * Every other device id (Tesla's energy, DAS, service and robotics devices): letters, digits, '-' and
 * '_', at most 64. Ids become log fields, registry keys, NATS subjects and dashboard topics, so NUL,
 * newlines, '/', '*', '>' and bidi overrides never get in.
 */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Tesla's private EKU OIDs; eng certificates use arc .4, prod certificates arc .5. */
const EKU_KINDS: ReadonlyMap<string, DeviceKind | typeof WIFI_EAP> = (() => {
  const kinds = new Map<string, DeviceKind | typeof WIFI_EAP>([[WIFI_EAP_EKU, WIFI_EAP]]);
  const byNumber: ReadonlyArray<[number, DeviceKind]> = [
    [1, 'vehicle_device'],
    [11, 'vehicle_board_device'],
    [2, 'energy_device'],
    [12, 'das_device'],
    [14, 'vehicle_service'],
    [15, 'das_service'],
    [16, 'energy_service'],
    [28, 'robotics_device'],
  ];
  for (const [n, kind] of byNumber) {
    kinds.set(`${TESLA_EKU}.4.${n}`, kind);
    kinds.set(`${TESLA_EKU}.5.${n}`, kind);
  }
  return kinds;
})();

/** True for the common name of any CA Tesla uses for devices, or of the roots above them. */
export function isTeslaCaName(commonName: string): boolean {
  return VEHICLE_ISSUERS.has(commonName) || PRODUCT_ISSUERS.has(commonName) || TESLA_UPPER_CAS.has(commonName);
}

/**
 * Identifies the device presenting `leafPem` (the verified client certificate, PEM).
 * `operatorCas` are the operator's own CAs (see operatorCasOf): any certificate they issued is a car
 * whose CN is its VIN.
 */
export function identifyDevice(leafPem: string, operatorCas: readonly X509Certificate[]): IdentityResult {
  if (leafPem.trim() === '') return refuse('no_certificate', 'the client presented no certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch (error) {
    return refuse('unparseable_certificate', `client certificate cannot be parsed: ${(error as Error).message}`);
  }
  return identifyCertificate(leaf, operatorCas);
}

/** identifyDevice for a certificate the caller has already parsed. */
export function identifyCertificate(leaf: X509Certificate, operatorCas: readonly X509Certificate[]): IdentityResult {
  const issuerCommonName = commonNameOf(leaf.issuer);
  const subject = parseDistinguishedName(leaf.subject);
  // (Node gives undefined, despite its typings, for an empty name: the parser accepts that.)
  let kind: DeviceKind;
  let fromOperatorCa = false;

  if (VEHICLE_ISSUERS.has(issuerCommonName)) {
    kind =
      issuerCommonName === BOARD_ISSUER && firstValue(subject, 'OU') === BOARD_UNIT ? 'vehicle_board_device' : 'vehicle_device';
  } else if (PRODUCT_ISSUERS.has(issuerCommonName)) {
    const usages = leaf.keyUsage ?? [];
    let found: DeviceKind | typeof WIFI_EAP | undefined;
    // The certificate's own order decides: the first Tesla OID it lists wins.
    for (const oid of usages) {
      found = EKU_KINDS.get(oid);
      if (found !== undefined) break;
    }
    if (found === WIFI_EAP) {
      return refuse('wifi_eap_certificate', `certificate from '${issuerCommonName}' is a Wi-Fi EAP certificate`);
    }
    if (found === undefined) {
      return refuse(
        'unrecognised_eku',
        `certificate from '${issuerCommonName}' has no recognised device EKU (has: ${usages.length > 0 ? usages.join(', ') : 'none'})`,
      );
    }
    kind = found;
  } else if (issuedByAny(leaf, operatorCas)) {
    // The operator's CA may issue more than car certificates (servers, Wi-Fi): only client
    // certificates are cars. No EKU extension at all means "any use" (RFC 5280), as dev CAs issue.
    const usages = leaf.keyUsage;
    if (usages !== undefined && usages.includes(WIFI_EAP_EKU)) {
      return refuse('wifi_eap_certificate', `certificate from operator CA '${issuerCommonName}' is a Wi-Fi EAP certificate`);
    }
    if (usages !== undefined && !usages.includes(CLIENT_AUTH_EKU) && !usages.includes(ANY_EKU)) {
      return refuse('unrecognised_eku', `certificate from operator CA '${issuerCommonName}' is not for client authentication (has: ${usages.length > 0 ? usages.join(', ') : 'none'})`);
    }
    kind = 'vehicle_device';
    fromOperatorCa = true;
  } else {
    return refuse('unknown_issuer', `certificate issuer '${issuerCommonName}' is neither a Tesla CA nor an operator CA`);
  }

  const commonName = lastValue(subject, 'CN');
  if (commonName === '') {
    return refuse('empty_common_name', `certificate from '${issuerCommonName}' has an empty subject common name`);
  }
  const deviceId = commonName.replaceAll('.', '-');
  const shape = fromOperatorCa ? VIN_PATTERN : DEVICE_ID_PATTERN; // operator-CA certificates name cars by VIN
  if (!shape.test(deviceId)) {
    // Never echo the id: it may hold control characters, bidi overrides or 20,000 characters.
    return refuse(
      'malformed_device_id',
      `certificate from '${issuerCommonName}' names no well-formed ${fromOperatorCa ? 'VIN (17 letters and digits, no I, O or Q)' : 'device id (letters, digits, - and _, at most 64)'} (CN of ${commonName.length} characters)`,
    );
  }
  return {
    ok: true,
    identity: { deviceId: flatCopy(deviceId), kind, issuerCommonName, fromOperatorCa },
  };
}

/**
 * The id parsed out of a certificate's name is a slice of Node's whole rendering of that name: V8 keeps
 * the whole text alive for as long as the slice lives, and the id lives as long as the car's actor and
 * registry entry. A copy of its own holds only its characters.
 */
function flatCopy(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
}

function refuse(reason: RefusalReason, detail: string): IdentityResult {
  return { ok: false, reason, detail };
}

const publicKeys = new WeakMap<X509Certificate, KeyObject>();

function issuedByAny(leaf: X509Certificate, cas: readonly X509Certificate[]): boolean {
  for (const ca of cas) {
    // checkIssued compares names and key identifiers only; the signature proves the issuance.
    if (!leaf.checkIssued(ca)) continue;
    let key = publicKeys.get(ca);
    if (key === undefined) {
      key = ca.publicKey;
      publicKeys.set(ca, key);
    }
    try {
      if (leaf.verify(key)) return true;
    } catch {
      // a key of another algorithm than the signature's: not this CA
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Names. Node prints a certificate name one attribute per line (`CN=value`), multi-valued RDNs
// joined by ' + ', values escaped as RFC 2253 says (`\,` `\+` `\\` ... and `\XX` hex for control
// characters), so a CN cannot smuggle in a line that looks like another attribute.

export interface NameAttribute {
  key: string;
  value: string;
}

/** Splits Node's multi-line rendering of an X.509 name into attributes, in certificate order. */
export function parseDistinguishedName(text: string | undefined): NameAttribute[] {
  const attributes: NameAttribute[] = [];
  if (typeof text !== 'string') return attributes;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let start = 0;
    let escapedUpTo = -1; // index of the last character consumed by an escape
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      if (c === 0x5c /* \ */) {
        i++; // the escaped character, or the first of two hex digits (neither is a separator)
        escapedUpTo = i;
      } else if (c === 0x2b /* + */) {
        // A '+' inside a value is always escaped, so a bare one separates the RDN's attributes;
        // the spaces around it are the separator's, unless escaped into the value.
        const end = i - 1 > escapedUpTo && line.charCodeAt(i - 1) === 0x20 ? i - 1 : i;
        pushAttribute(attributes, line.slice(start, end));
        start = line.charCodeAt(i + 1) === 0x20 ? i + 2 : i + 1;
      }
    }
    pushAttribute(attributes, line.slice(start));
  }
  return attributes;
}

function pushAttribute(out: NameAttribute[], text: string): void {
  const eq = text.indexOf('=');
  if (eq <= 0) return;
  out.push({ key: text.slice(0, eq), value: unescapeValue(text.slice(eq + 1)) });
}

const HEX_PAIR = /^[0-9A-Fa-f]{2}$/;

function unescapeValue(escaped: string): string {
  if (!escaped.includes('\\')) return escaped;
  // Hex escapes are bytes of UTF-8, so collect bytes and decode once.
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped[i];
    if (c === '\\' && i + 1 < escaped.length) {
      const pair = escaped.slice(i + 1, i + 3);
      if (HEX_PAIR.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
      } else {
        bytes.push(...encoder.encode(escaped[i + 1]));
        i += 1;
      }
    } else {
      const cp = escaped.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...encoder.encode(ch));
      i += ch.length - 1;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function firstValue(attributes: readonly NameAttribute[], key: string): string {
  for (const a of attributes) if (a.key === key) return a.value;
  return '';
}

/** Like Go's pkix.Name (the reference), a repeated CN resolves to the last one. */
function lastValue(attributes: readonly NameAttribute[], key: string): string {
  for (let i = attributes.length - 1; i >= 0; i--) if (attributes[i]!.key === key) return attributes[i]!.value;
  return '';
}

/** The CN of a name as Node prints it (X509Certificate.subject / .issuer); '' when it has none. */
export function commonNameOf(name: string | undefined): string {
  return lastValue(parseDistinguishedName(name), 'CN');
}

// ---------------------------------------------------------------------------------------------
// CA bundles

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/**
 * Every certificate of a PEM bundle, in order. Text between blocks (comments) is ignored; anything
 * else that is not a readable certificate is an error naming the block, never quoting it.
 */
export function loadCaBundle(pem: string): X509Certificate[] {
  const certs: X509Certificate[] = [];
  let blocks = 0;
  for (const match of pem.matchAll(PEM_BLOCK)) {
    blocks++;
    // Both labels are non-optional groups of PEM_BLOCK.
    const [block, label = '', , endLabel] = match;
    if (label !== endLabel) {
      throw new Error(`CA bundle: block #${blocks} begins as '${label}' but ends as '${endLabel}'`);
    }
    if (label.includes('PRIVATE KEY')) {
      throw new Error(`CA bundle: block #${blocks} is a private key; a CA bundle must hold certificates only`);
    }
    if (label !== 'CERTIFICATE') {
      throw new Error(`CA bundle: block #${blocks} is a '${label}', not a CERTIFICATE`);
    }
    try {
      certs.push(new X509Certificate(block));
    } catch (error) {
      throw new Error(`CA bundle: certificate #${blocks} cannot be parsed (${(error as Error).message})`);
    }
  }
  const begins = pem.split('-----BEGIN ').length - 1;
  if (begins !== blocks) {
    throw new Error(`CA bundle: ${begins - blocks} PEM block(s) have no matching END line`);
  }
  if (certs.length === 0) throw new Error('CA bundle holds no PEM certificate');
  return certs;
}

/**
 * The CAs of a bundle that are the operator's own (a dev, test or private fleet CA): every one
 * whose subject CN is not a Tesla CA name. Certificates they issue are cars with CN = VIN.
 */
export function operatorCasOf(bundle: readonly X509Certificate[]): X509Certificate[] {
  return bundle.filter((ca) => !isTeslaCaName(commonNameOf(ca.subject)));
}
