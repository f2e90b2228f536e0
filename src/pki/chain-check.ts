import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { certificateBlocks } from './pem.js';
import { checkServerIdentity, connect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';

/**
 * Connects to a telemetry server the way a car does, with SNI = the config hostname and only the
 * config `ca` chain as trust, and says in words what a car would refuse: a hostname the certificate
 * does not cover, an expired certificate, a chain missing its intermediate, a `ca` that does not lead
 * to the server's root. Shared by the `check-cert` command and the server's start-up self-check.
 */

export interface ChainCheckOptions {
  /** Where to connect (an address or name); the car resolves `hostname` itself. */
  host: string;
  port: number;
  /** The config hostname (DOMAIN): sent as SNI and matched against the certificate. */
  hostname: string;
  /** The config `ca` (TLS_CA_CHAIN_FILE contents). */
  caPem: string;
  timeoutMs?: number;
  /** Below this many days left a passing certificate gets a warning. */
  warnDays?: number;
}

export interface ChainReport {
  ok: boolean;
  /** Why a car would refuse the server; empty when ok. */
  problems: string[];
  /** Worth fixing soon, not fatal. */
  warnings: string[];
  /** Subject, issuer and expiry of the presented leaf, and the chain as built. */
  details: string[];
  /** Days until the leaf expires (negative once expired); null when no certificate was seen. */
  daysLeft: number | null;
}

const DAY_MS = 86_400_000;
const PARTIAL_CHAIN_CODES = new Set(['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT']);

function nameOf(subject: PeerCertificate['subject'] | undefined): string {
  if (subject === undefined) return '(no subject)';
  const cn = subject.CN;
  const text = Array.isArray(cn) ? cn.join('+') : cn;
  return text ?? Object.entries(subject).map(([key, value]) => `${key}=${String(value)}`).join(', ');
}

/** The certificates Node built the chain from, leaf first, stopping at the first self-issued one. */
function chainOf(peer: DetailedPeerCertificate): DetailedPeerCertificate[] {
  const chain: DetailedPeerCertificate[] = [];
  let current: DetailedPeerCertificate | undefined = peer;
  while (current !== undefined && current.raw !== undefined && !chain.some((c) => c.fingerprint256 === current!.fingerprint256)) {
    chain.push(current);
    current = current.issuerCertificate;
  }
  return chain;
}

function isSelfSigned(certificate: X509Certificate): boolean {
  return certificate.checkIssued(certificate) && certificate.verify(certificate.publicKey);
}

function certificatesOf(pem: string): X509Certificate[] {
  return certificateBlocks(pem).map((block) => new X509Certificate(block));
}

function daysBetween(later: number, earlier: number): number {
  return Math.floor((later - earlier) / DAY_MS);
}

/** Words for OpenSSL's verdict, using what the chain looks like to tell the usual mistakes apart. */
function explainVerifyError(code: string, chain: DetailedPeerCertificate[], anchors: X509Certificate[], now: number): string {
  const top = chain[chain.length - 1];
  if (code === 'CERT_HAS_EXPIRED') {
    const expired = chain.find((c) => Date.parse(c.valid_to) < now) ?? chain[0];
    // An empty chain (no certificate seen) falls through to the generic message below.
    if (expired !== undefined) return `certificate "${nameOf(expired.subject)}" expired ${daysBetween(now, Date.parse(expired.valid_to))} days ago (notAfter ${new Date(expired.valid_to).toISOString()})`;
  }
  if (code === 'CERT_NOT_YET_VALID') {
    const early = chain.find((c) => Date.parse(c.valid_from) > now) ?? chain[0];
    if (early !== undefined) return `certificate "${nameOf(early.subject)}" is not valid until ${new Date(early.valid_from).toISOString()} (check the clock)`;
  }
  if (PARTIAL_CHAIN_CODES.has(code) && top !== undefined) {
    if (!anchors.some(isSelfSigned)) {
      return 'the ca chain holds no root (self-signed) certificate: a car verifies up to a root, so TLS_CA_CHAIN_FILE must include the root CA';
    }
    const topIsCa = new X509Certificate(top.raw).ca;
    if (!topIsCa) {
      return `partial chain: the server sends "${nameOf(top.subject)}" without the intermediate that issued it ("${nameOf(top.issuer)}"), and the ca chain does not hold it either; append the intermediate certificate(s) to TLS_CERT_FILE after the leaf`;
    }
    return `the ca chain does not lead to the server's root: "${nameOf(top.subject)}" is issued by "${nameOf(top.issuer)}", which is not in TLS_CA_CHAIN_FILE; push the chain of the CA that issued the certificate`;
  }
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN') {
    return `the chain ends at self-signed "${nameOf(top?.subject)}", which is not in the ca chain (TLS_CA_CHAIN_FILE)`;
  }
  return `the certificate chain does not verify against the ca chain (${code})`;
}

export function checkServerChain(options: ChainCheckOptions, now = Date.now()): Promise<ChainReport> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const warnDays = options.warnDays ?? 14;
  const anchors = certificatesOf(options.caPem);
  const where = `${options.host}:${options.port}`;
  return new Promise<ChainReport>((resolve) => {
    if (anchors.length === 0) {
      resolve({ ok: false, problems: ['the ca chain holds no PEM certificate'], warnings: [], details: [], daysLeft: null });
      return;
    }
    let settled = false;
    const finish = (report: ChainReport): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(report);
    };
    const socket = connect({
      host: options.host,
      port: options.port,
      // Node refuses an IP address as SNI; a car configured with an IP sends none either.
      ...(isIP(options.hostname) === 0 ? { servername: options.hostname } : {}),
      ca: options.caPem,
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('timeout', () =>
      finish({ ok: false, problems: [`no TLS handshake with ${where} within ${timeoutMs} ms`], warnings: [], details: [], daysLeft: null }),
    );
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish({ ok: false, problems: [`cannot connect to ${where}: ${error.code ?? error.message}`], warnings: [], details: [], daysLeft: null }),
    );
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(true);
      if (peer === null || peer.raw === undefined) {
        finish({ ok: false, problems: [`${where} presented no certificate`], warnings: [], details: [], daysLeft: null });
        return;
      }
      const chain = chainOf(peer);
      const problems: string[] = [];
      const warnings: string[] = [];
      const notAfter = Date.parse(peer.valid_to);
      const daysLeft = daysBetween(notAfter, now);
      const details = [
        `certificate: "${nameOf(peer.subject)}" issued by "${nameOf(peer.issuer)}"`,
        `names: ${peer.subjectaltname ?? '(no subjectAltName)'}`,
        `valid until ${new Date(notAfter).toISOString()} (${daysLeft >= 0 ? `${daysLeft} days left` : `expired ${-daysLeft} days ago`})`,
        `chain: ${chain.map((c) => `"${nameOf(c.subject)}"`).join(' <- ')}`,
      ];
      const identity = checkServerIdentity(options.hostname, peer);
      if (identity !== undefined) {
        problems.push(`hostname mismatch: the certificate does not cover "${options.hostname}" (it names ${peer.subjectaltname ?? nameOf(peer.subject)})`);
      }
      const code = socket.authorized ? null : String((socket.authorizationError as unknown as { code?: string })?.code ?? socket.authorizationError);
      // Node reports a name mismatch as the authorization error when the chain itself verified.
      if (code !== null && code !== 'ERR_TLS_CERT_ALTNAME_INVALID') {
        problems.push(explainVerifyError(code, chain, anchors, now));
      } else if (daysLeft < warnDays) {
        warnings.push(`the certificate expires in ${daysLeft} days: renew it, and push the config again if the new one has another chain`);
      }
      finish({ ok: problems.length === 0, problems, warnings, details, daysLeft });
    });
  });
}

/** Listen addresses that mean "every interface" are reached through loopback. */
export function connectHostFor(listenHost: string): string {
  if (listenHost === '0.0.0.0' || listenHost === '') return '127.0.0.1';
  if (listenHost === '::') return '::1';
  return listenHost;
}
