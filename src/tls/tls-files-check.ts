import type { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import { checkServerChain } from '../pki/chain-check.js';
import { chainReachesAnchor, checkCaBundle, checkKeyPair, coversDomain, describeNames, type CertificateChain, type FileRef, type Reporter } from '../config/tls-files.js';

/**
 * The checks a renewed file gets before any handshake uses it: the same functions, the same rules and
 * the same words as at start-up (src/config/index.ts), so a file refused at reload would have been
 * refused at start, and the other way round.
 */

export class Findings implements Reporter {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];
  error(subject: string, message: string): void {
    this.problems.push(`${subject}: ${message}`);
  }
  warn(subject: string, message: string): void {
    this.warnings.push(`${subject}: ${message}`);
  }
}

export interface ServerFiles {
  cert: FileRef;
  key: FileRef;
  passphrase: string;
  /** The `ca` a car is given; only for the vehicle listener. */
  caChain?: FileRef;
  /** DOMAIN; only for the vehicle listener. */
  domain?: string;
  /** SELF_CHECK: a certificate a car would refuse is an error, not a warning. */
  strict: boolean;
}

/** Key pair, validity, DOMAIN and chain, as at start-up. Returns the chain (leaf first) when usable. */
export function checkServerFiles(files: ServerFiles, now: Date, findings: Findings): CertificateChain | undefined {
  const before = findings.problems.length;
  const chain = checkKeyPair({ cert: files.cert, key: files.key, passphrase: files.passphrase, now }, findings);
  const carFinding = (env: string, message: string): void => (files.strict ? findings.error(env, message) : findings.warn(env, message));
  if (chain !== undefined && files.domain !== undefined && !coversDomain(chain[0], files.domain)) {
    carFinding(files.cert.env, `certificate does not cover DOMAIN "${files.domain}" (it names ${describeNames(chain[0])})`);
  }
  if (files.caChain !== undefined) {
    const anchors = checkCaBundle(files.caChain, now, true, findings);
    if (anchors !== undefined && chain !== undefined && !chainReachesAnchor(chain, anchors)) {
      carFinding(files.caChain.env, `does not verify the certificate in ${files.cert.env} (no certificate in ${files.caChain.shown} issued it or its intermediates); cars given this chain would refuse the server`);
    }
  }
  return findings.problems.length === before ? chain : undefined;
}

/** The vehicle CA bundle(s): parse, at least one certificate each. */
export function checkVehicleCas(files: FileRef[], now: Date, findings: Findings): boolean {
  const before = findings.problems.length;
  for (const file of files) checkCaBundle(file, now, false, findings);
  return findings.problems.length === before;
}

export interface ProbeOptions {
  host: string;
  port: number;
  /** SNI to send (DOMAIN); an IP address is sent as no SNI, as a car would. */
  servername: string;
  /** The leaf the app must present. */
  expected: X509Certificate;
  /** With SELF_CHECK: connect as a car would, with only this `ca` as trust. */
  caChainPem?: string;
  timeoutMs?: number;
}

/**
 * Handshakes with a staged app on a private port: it must present exactly the checked leaf (uWS read the
 * files itself; this catches a file replaced between the check and the load), and, with SELF_CHECK,
 * pass the car's own verification. Resolves with the problems found, empty when fine.
 */
export async function probeStagedApp(o: ProbeOptions): Promise<string[]> {
  const timeoutMs = o.timeoutMs ?? 5000;
  const served = await new Promise<string>((resolve) => {
    const socket = connect({
      host: o.host,
      port: o.port,
      ...(isIP(o.servername) === 0 ? { servername: o.servername } : {}),
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    const finish = (result: string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('timeout', () => finish('error: no TLS handshake in time'));
    socket.once('error', (error: NodeJS.ErrnoException) => finish(`error: ${error.code ?? error.message}`));
    socket.once('secureConnect', () => finish(socket.getPeerCertificate()?.fingerprint256 ?? 'error: no certificate presented'));
  });
  if (served.startsWith('error: ')) return [`the new certificate could not be served: ${served.slice(7)}`];
  if (served !== o.expected.fingerprint256) return ['the certificate served is not the one checked (was the file replaced again meanwhile?)'];
  if (o.caChainPem === undefined) return [];
  const report = await checkServerChain({ host: o.host, port: o.port, hostname: o.servername, caPem: o.caChainPem, timeoutMs });
  return report.problems.map((problem) => `self-check: ${problem}`);
}
