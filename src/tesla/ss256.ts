import { createHash, createHmac, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import {
  G,
  N,
  bigIntToBytes,
  bytesToBigInt,
  decodeUncompressed,
  encodeUncompressed,
  isOnCurve,
  mod,
  multiply,
  multiplyAdd,
  type AffinePoint,
} from './p256.js';
import { objectAt, parseJson, ShapeError } from '../safety/json-reader.js';

/**
 * Tesla.SS256: the Schnorr signature over P-256 with SHA-256 that Tesla's vehicle-command proxy puts on
 * a fleet telemetry config (tesla-protocol.md section 6). Written from the published description and
 * checked against its vectors.
 */

export const SS256_ALG = 'Tesla.SS256';
export const TELEMETRY_AUDIENCE = 'com.tesla.fleet.TelemetryClient';
export const SIGNATURE_BYTES = 96;

const SCALAR_BYTES = 32;

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/**
 * The deterministic nonce of RFC 6979 section 3.2 with HMAC-SHA256, for a 256-bit group order (so
 * qlen = hlen and one HMAC block is one candidate). Candidates outside [1, n-1] are resampled.
 */
export function rfc6979Nonce(privateScalar: bigint, digest: Uint8Array): bigint {
  if (digest.length !== SCALAR_BYTES) throw new RangeError('digest must be 32 bytes (SHA-256)');
  const x = bigIntToBytes(privateScalar, SCALAR_BYTES);
  const h = bigIntToBytes(mod(bytesToBigInt(digest), N), SCALAR_BYTES);
  let v: Buffer = Buffer.alloc(SCALAR_BYTES, 0x01);
  let k: Buffer = Buffer.alloc(SCALAR_BYTES, 0x00);
  k = hmac(k, v, Buffer.from([0x00]), x, h);
  v = hmac(k, v);
  k = hmac(k, v, Buffer.from([0x01]), x, h);
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v);
    const candidate = bytesToBigInt(v);
    if (candidate >= 1n && candidate < N) return candidate;
    k = hmac(k, v, Buffer.from([0x00]));
    v = hmac(k, v);
  }
}

function lengthPrefixed(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** c = SHA-256(len|G, len|R, len|P, len|message) read big-endian, mod n. */
function challenge(r: AffinePoint, publicKey: AffinePoint, message: Buffer): bigint {
  const hash = createHash('sha256');
  for (const item of [encodeUncompressed(G), encodeUncompressed(r), encodeUncompressed(publicKey), message]) {
    hash.update(lengthPrefixed(item));
  }
  return mod(bytesToBigInt(hash.digest()), N);
}

function checkScalar(privateScalar: bigint): void {
  if (privateScalar < 1n || privateScalar >= N) throw new RangeError('private scalar out of range [1, n-1]');
}

export function publicPointOf(privateScalar: bigint): AffinePoint {
  checkScalar(privateScalar);
  return multiply(privateScalar, G) as AffinePoint;
}

/** Signature = R.x || R.y || s, 96 bytes. */
export function ss256Sign(privateScalar: bigint, message: Uint8Array): Buffer {
  checkScalar(privateScalar);
  const msg = Buffer.from(message);
  const publicKey = publicPointOf(privateScalar);
  const k = rfc6979Nonce(privateScalar, createHash('sha256').update(msg).digest());
  const r = multiply(k, G) as AffinePoint;
  const c = challenge(r, publicKey, msg);
  const s = mod(k - privateScalar * c, N);
  return Buffer.concat([bigIntToBytes(r.x, 32), bigIntToBytes(r.y, 32), bigIntToBytes(s, 32)]);
}

/** Accepts only when s*G + c*P == R, with R on the curve and s in range. */
export function ss256Verify(publicKey: AffinePoint, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || !isOnCurve(publicKey)) return false;
  const r = { x: bytesToBigInt(signature.subarray(0, 32)), y: bytesToBigInt(signature.subarray(32, 64)) };
  const s = bytesToBigInt(signature.subarray(64));
  if (!isOnCurve(r) || s >= N) return false;
  const c = challenge(r, publicKey, Buffer.from(message));
  const sum = multiplyAdd(s, G, c, publicKey);
  return sum !== null && sum.x === r.x && sum.y === r.y;
}

// ---- keys ---------------------------------------------------------------------------------------

export interface AppKeyPair {
  privateScalar: bigint;
  publicKey: AffinePoint;
}

function p256Only(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${what} must be an EC P-256 (prime256v1) key`);
  }
}

/** The app's private key from PEM (PKCS#8 or SEC 1), as a scalar and its public point. */
export function appKeyFromPem(pem: string): AppKeyPair {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('no PEM private key could be read (expected an unencrypted EC P-256 private key)');
  }
  p256Only(key, 'the app private key');
  const jwk = key.export({ format: 'jwk' });
  const privateScalar = bytesToBigInt(Buffer.from(jwk.d as string, 'base64url'));
  return { privateScalar, publicKey: publicPointOf(privateScalar) };
}

export function publicPointFromPem(pem: string): AffinePoint {
  const key = createPublicKey({ key: pem, format: 'pem' });
  p256Only(key, 'the public key');
  const jwk = key.export({ format: 'jwk' });
  return decodeUncompressed(
    Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x as string, 'base64url'), Buffer.from(jwk.y as string, 'base64url')]),
  );
}

// ---- the JWS ------------------------------------------------------------------------------------

/**
 * The compact JWS the proxy would make from `config`: claims are the config's keys plus `iss` (standard
 * base64 of the uncompressed public key) and `aud`.
 */
export function signTelemetryConfigJws(config: Record<string, unknown>, key: AppKeyPair): string {
  const header = { alg: SS256_ALG, typ: 'JWT' };
  const claims = { ...config, iss: encodeUncompressed(key.publicKey).toString('base64'), aud: TELEMETRY_AUDIENCE };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = ss256Sign(key.privateScalar, Buffer.from(signingInput, 'ascii'));
  return `${signingInput}.${signature.toString('base64url')}`;
}

export interface VerifiedJws {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  /** The signer's public key, from `iss`. */
  signer: AffinePoint;
}

/**
 * Checks a Tesla.SS256 JWS the way the car would: header alg, audience, and the signature under the key
 * in `iss`; `expectedSigner` pins that key (the app's). Throws with the reason on any failure.
 */
export function verifyTelemetryConfigJws(token: string, expectedSigner?: AffinePoint): VerifiedJws {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS (three dot-separated parts)');
  const [headerPart = '', claimsPart = '', signaturePart = ''] = parts;
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = objectAt(parseJson(Buffer.from(headerPart, 'base64url').toString('utf8')), 'JWS header');
    claims = objectAt(parseJson(Buffer.from(claimsPart, 'base64url').toString('utf8')), 'JWS claims');
  } catch (error) {
    if (error instanceof ShapeError) throw error;
    throw new Error('JWS header or claims are not base64url JSON');
  }
  if (header.alg !== SS256_ALG) throw new Error(`JWS alg is ${JSON.stringify(header.alg)}, expected ${SS256_ALG}`);
  if (claims.aud !== TELEMETRY_AUDIENCE) throw new Error(`JWS aud is ${JSON.stringify(claims.aud)}, expected ${TELEMETRY_AUDIENCE}`);
  if (typeof claims.iss !== 'string') throw new Error('JWS iss (the signer public key) is missing');
  const signer = decodeUncompressed(Buffer.from(claims.iss, 'base64'));
  if (expectedSigner !== undefined && (signer.x !== expectedSigner.x || signer.y !== expectedSigner.y)) {
    throw new Error('JWS is signed by a different key than expected');
  }
  const signature = Buffer.from(signaturePart, 'base64url');
  if (!ss256Verify(signer, Buffer.from(`${headerPart}.${claimsPart}`, 'ascii'), signature)) {
    throw new Error('JWS signature does not verify');
  }
  return { header, claims, signer };
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
