/**
 * NIST P-256 group arithmetic on BigInt, for the Tesla.SS256 Schnorr signature (node:crypto signs only
 * ECDSA). Points are kept in Jacobian coordinates during a multiplication so that one field inversion
 * per multiplication suffices. Not constant-time: it signs telemetry configs on the operator's own
 * machine, not secrets an attacker can time from outside.
 */

export const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
export const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const A = P - 3n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

export interface AffinePoint {
  x: bigint;
  y: bigint;
}

export const G: AffinePoint = {
  x: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  y: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
};

/** Jacobian (X, Y, Z) = affine (X/Z², Y/Z³); Z = 0 is the point at infinity. */
interface JacobianPoint {
  x: bigint;
  y: bigint;
  z: bigint;
}

const INFINITY: JacobianPoint = { x: 1n, y: 1n, z: 0n };

export function mod(value: bigint, modulus: bigint): bigint {
  const r = value % modulus;
  return r < 0n ? r + modulus : r;
}

/** Modular inverse by the extended Euclidean algorithm; modulus is prime here. */
export function invert(value: bigint, modulus: bigint): bigint {
  let a = mod(value, modulus);
  if (a === 0n) throw new RangeError('zero has no inverse');
  let b = modulus;
  let x0 = 1n;
  let x1 = 0n;
  while (b !== 0n) {
    const q = a / b;
    [a, b] = [b, a - q * b];
    [x0, x1] = [x1, x0 - q * x1];
  }
  return mod(x0, modulus);
}

export function isOnCurve(point: AffinePoint): boolean {
  if (point.x < 0n || point.x >= P || point.y < 0n || point.y >= P) return false;
  return mod(point.y * point.y - (point.x * point.x * point.x + A * point.x + B), P) === 0n;
}

function toJacobian(point: AffinePoint): JacobianPoint {
  return { x: point.x, y: point.y, z: 1n };
}

function toAffine(point: JacobianPoint): AffinePoint | null {
  if (point.z === 0n) return null;
  const zInv = invert(point.z, P);
  const zInv2 = mod(zInv * zInv, P);
  return { x: mod(point.x * zInv2, P), y: mod(point.y * zInv2 * zInv, P) };
}

/** Doubling with a = -3 (dbl-2001-b). */
function double(p: JacobianPoint): JacobianPoint {
  if (p.z === 0n || p.y === 0n) return INFINITY;
  const delta = mod(p.z * p.z, P);
  const gamma = mod(p.y * p.y, P);
  const beta = mod(p.x * gamma, P);
  const alpha = mod(3n * (p.x - delta) * (p.x + delta), P);
  const x3 = mod(alpha * alpha - 8n * beta, P);
  const z3 = mod((p.y + p.z) * (p.y + p.z) - gamma - delta, P);
  const y3 = mod(alpha * (4n * beta - x3) - 8n * gamma * gamma, P);
  return { x: x3, y: y3, z: z3 };
}

/** General addition (add-2007-bl), falling back to doubling for equal points. */
function add(p: JacobianPoint, q: JacobianPoint): JacobianPoint {
  if (p.z === 0n) return q;
  if (q.z === 0n) return p;
  const z1z1 = mod(p.z * p.z, P);
  const z2z2 = mod(q.z * q.z, P);
  const u1 = mod(p.x * z2z2, P);
  const u2 = mod(q.x * z1z1, P);
  const s1 = mod(p.y * q.z * z2z2, P);
  const s2 = mod(q.y * p.z * z1z1, P);
  if (u1 === u2) return s1 === s2 ? double(p) : INFINITY;
  const h = mod(u2 - u1, P);
  const i = mod(4n * h * h, P);
  const j = mod(h * i, P);
  const r = mod(2n * (s2 - s1), P);
  const v = mod(u1 * i, P);
  const x3 = mod(r * r - j - 2n * v, P);
  const y3 = mod(r * (v - x3) - 2n * s1 * j, P);
  const z3 = mod(((p.z + q.z) * (p.z + q.z) - z1z1 - z2z2) * h, P);
  return { x: x3, y: y3, z: z3 };
}

function multiplyJacobian(scalar: bigint, point: AffinePoint): JacobianPoint {
  let result = INFINITY;
  const base = toJacobian(point);
  for (let bit = BigInt(scalar.toString(2).length - 1); bit >= 0n; bit--) {
    result = double(result);
    if ((scalar >> bit) & 1n) result = add(result, base);
  }
  return result;
}

/** scalar * point; null for the point at infinity. */
export function multiply(scalar: bigint, point: AffinePoint): AffinePoint | null {
  const k = mod(scalar, N);
  if (k === 0n) return null;
  return toAffine(multiplyJacobian(k, point));
}

/** a*P + b*Q; null for the point at infinity. */
export function multiplyAdd(a: bigint, p: AffinePoint, b: bigint, q: AffinePoint): AffinePoint | null {
  const ka = mod(a, N);
  const kb = mod(b, N);
  const left = ka === 0n ? INFINITY : multiplyJacobian(ka, p);
  const right = kb === 0n ? INFINITY : multiplyJacobian(kb, q);
  return toAffine(add(left, right));
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
  return Buffer.concat([Buffer.from([4]), bigIntToBytes(point.x, 32), bigIntToBytes(point.y, 32)]);
}

export function decodeUncompressed(bytes: Uint8Array): AffinePoint {
  if (bytes.length !== 65 || bytes[0] !== 4) throw new Error('not an uncompressed P-256 point (65 bytes starting 0x04)');
  const point = { x: bytesToBigInt(bytes.subarray(1, 33)), y: bytesToBigInt(bytes.subarray(33)) };
  if (!isOnCurve(point)) throw new Error('point is not on the P-256 curve');
  return point;
}
