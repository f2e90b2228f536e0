/**
 * NIST P-256 for the Tesla.SS256 Schnorr signature (node:crypto signs only ECDSA). The group
 * arithmetic is @noble/curves' audited implementation, whose multiplication by a secret scalar is
 * constant-time: the server signs car configs with the app's private key at run time
 * (auto-configure), so the scalar must not leak through timing. This module only adapts it to the
 * affine points and big-endian byte strings that the SS256 layer speaks.
 */
import { p256 } from '@noble/curves/nist.js';

const Point = p256.Point;
type NoblePoint = InstanceType<typeof Point>;

export const P: bigint = Point.Fp.ORDER;
export const N: bigint = Point.Fn.ORDER;

export interface AffinePoint {
  x: bigint;
  y: bigint;
}

export const G: AffinePoint = Point.BASE.toAffine();

export function mod(value: bigint, modulus: bigint): bigint {
  const r = value % modulus;
  return r < 0n ? r + modulus : r;
}

export function isOnCurve(point: AffinePoint): boolean {
  if (point.x < 0n || point.x >= P || point.y < 0n || point.y >= P) return false;
  try {
    Point.fromAffine(point).assertValidity();
    return true;
  } catch {
    return false;
  }
}

function affineOrNull(point: NoblePoint): AffinePoint | null {
  return point.is0() ? null : point.toAffine();
}

/** scalar * point (constant-time in the scalar); null for the point at infinity. */
export function multiply(scalar: bigint, point: AffinePoint): AffinePoint | null {
  const k = mod(scalar, N);
  if (k === 0n) return null;
  return affineOrNull(Point.fromAffine(point).multiply(k));
}

/**
 * a*P + b*Q; null for the point at infinity. Only verification uses it, on public values, so the
 * faster variable-time multiplication is fine here.
 */
export function multiplyAdd(a: bigint, p: AffinePoint, b: bigint, q: AffinePoint): AffinePoint | null {
  const left = Point.fromAffine(p).multiplyUnsafe(mod(a, N));
  const right = Point.fromAffine(q).multiplyUnsafe(mod(b, N));
  return affineOrNull(left.add(right));
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/** Fixed-width big-endian bytes; throws when the value does not fit. */
export function bigIntToBytes(value: bigint, length: number): Buffer {
  if (value < 0n) throw new RangeError('negative value');
  const hex = value.toString(16).padStart(length * 2, '0');
  if (hex.length > length * 2) throw new RangeError(`value does not fit in ${length} bytes`);
  return Buffer.from(hex, 'hex');
}

/** SEC 1 uncompressed encoding: 0x04 || X (32) || Y (32). */
export function encodeUncompressed(point: AffinePoint): Buffer {
  return Buffer.from(Point.fromAffine(point).toBytes(false));
}

export function decodeUncompressed(bytes: Uint8Array): AffinePoint {
  if (bytes.length !== 65 || bytes[0] !== 4) throw new Error('not an uncompressed P-256 point (65 bytes starting 0x04)');
  try {
    return Point.fromBytes(bytes).toAffine();
  } catch {
    throw new Error('point is not on the P-256 curve');
  }
}
