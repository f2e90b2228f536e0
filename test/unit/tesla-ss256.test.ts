import { expect } from 'chai';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { G, N, decodeUncompressed, encodeUncompressed, isOnCurve, multiply } from '../../src/tesla/p256.js';
import {
  appKeyFromPem,
  publicPointFromPem,
  publicPointOf,
  rfc6979Nonce,
  signTelemetryConfigJws,
  ss256Sign,
  ss256Verify,
  verifyTelemetryConfigJws,
} from '../../src/tesla/ss256.js';

/** The published test key: 32 bytes, first 0x03, rest zero. */
const VECTOR_SCALAR = BigInt(`0x03${'00'.repeat(31)}`);
const HELLO_WORLD_SIGNATURE =
  '7cfdbeb5baa730540401550bdefa20976453e8539ae4b2f26ce33125801a08f90ed20c3d846497ff82cc9772e3db4703982f47bd0b0b89dfb9a49cd2e524054602b1e05fbf95f5686faea7a5809eb92f5ecc22eae74ceccc5e2a65dd67ff20fc';

describe('P-256 arithmetic', () => {
  it('has G on the curve and n*G at infinity', () => {
    expect(isOnCurve(G)).to.equal(true);
    expect(multiply(N, G)).to.equal(null);
    const twoG = multiply(2n, G);
    expect(twoG).to.not.equal(null);
    expect(isOnCurve(twoG!)).to.equal(true);
  });

  it('agrees with node:crypto on the public key of a private key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pair = appKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const fromNode = publicPointFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    expect(pair.publicKey).to.deep.equal(fromNode);
    expect(decodeUncompressed(encodeUncompressed(fromNode))).to.deep.equal(fromNode);
  });
});

describe('Tesla.SS256', () => {
  it('derives the RFC 6979 A.2.5 nonce for "sample"', () => {
    const key = BigInt('0xc9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721');
    const digest = createHash('sha256').update('sample').digest();
    expect(rfc6979Nonce(key, digest).toString(16)).to.equal('a6e3c57dd01abe90086538398355dd4c3b17aa873382b0f24d6129493d8aad60');
  });

  it('resamples a nonce candidate at or above n', () => {
    const digest = Buffer.from('0080c36864c5f2f460e3767983c65677b65cef901bcedcb223f9b365c68f52f6', 'hex');
    expect(rfc6979Nonce(VECTOR_SCALAR, digest).toString(16).padStart(64, '0')).to.equal(
      '264fc6592fbea24fd0954e0b86b886e8743161758ddad2f7e9fed75a0019e005',
    );
  });

  it('signs "hello world" with the published signature', () => {
    const signature = ss256Sign(VECTOR_SCALAR, Buffer.from('hello world', 'ascii'));
    expect(signature.toString('hex')).to.equal(HELLO_WORLD_SIGNATURE);
    expect(ss256Verify(publicPointOf(VECTOR_SCALAR), Buffer.from('hello world'), signature)).to.equal(true);
  });

  it('refuses tampered messages, signatures and foreign keys', () => {
    const publicKey = publicPointOf(VECTOR_SCALAR);
    const good = Buffer.from(HELLO_WORLD_SIGNATURE, 'hex');
    expect(ss256Verify(publicKey, Buffer.from('hello worle'), good)).to.equal(false);
    for (const index of [0, 40, 95]) {
      const bad = Buffer.from(good);
      bad[index]! ^= 0x01;
      expect(ss256Verify(publicKey, Buffer.from('hello world'), bad), `byte ${index}`).to.equal(false);
    }
    expect(ss256Verify(publicPointOf(5n), Buffer.from('hello world'), good)).to.equal(false);
    expect(ss256Verify(publicKey, Buffer.from('hello world'), good.subarray(0, 95))).to.equal(false);
  });

  it('round-trips a telemetry config JWS through our verifier and refuses a tampered one', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key = appKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const config = { hostname: 'telemetry.example.com', port: 443, ca: '-----BEGIN CERTIFICATE-----\n...', fields: { Soc: { interval_seconds: 60 } } };
    const token = signTelemetryConfigJws(config, key);
    const verified = verifyTelemetryConfigJws(token, key.publicKey);
    expect(verified.header).to.deep.equal({ alg: 'Tesla.SS256', typ: 'JWT' });
    expect(verified.claims).to.deep.include(config);
    expect(verified.claims.aud).to.equal('com.tesla.fleet.TelemetryClient');
    expect(Buffer.from(verified.claims.iss as string, 'base64')).to.have.length(65);

    const [header, claims, signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...verified.claims, port: 444 })).toString('base64url');
    expect(() => verifyTelemetryConfigJws(`${header}.${forged}.${signature}`)).to.throw(/does not verify/);
    expect(() => verifyTelemetryConfigJws(token, publicPointOf(7n))).to.throw(/different key/);
    expect(() => verifyTelemetryConfigJws(`${header}.${claims}`)).to.throw(/compact JWS/);
  });
});
