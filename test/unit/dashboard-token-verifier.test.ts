import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, type JWK } from 'jose';
import { mintDashboardToken, normaliseVins, parseTtl } from '../../src/dashboard/dashboard-token.js';
import { AuthError, TokenVerifier, type AuthFailureReason } from '../../src/dashboard/token-verifier.js';
import { FAKE_TESLA_AUDIENCE, FAKE_TESLA_ISSUER, FakeTeslaAuth } from '../helpers/fake-tesla-auth.js';

const SECRET = 'unit-test-secret-that-is-long-enough-0123456789';
const VIN_A = '5YJ3E7EB0LF000001';
const VIN_B = '5YJ3E7EB0LF000002';
const now = () => Math.floor(Date.now() / 1000);
const key = new TextEncoder().encode(SECRET);

async function refused(verifier: TokenVerifier, token: string | undefined): Promise<AuthFailureReason> {
  try {
    await verifier.verify(token);
  } catch (error) {
    expect(error).to.be.instanceOf(AuthError);
    if (token) expect((error as Error).message).not.to.include(token);
    return (error as AuthError).reason;
  }
  throw new Error('the token was accepted');
}

function hs(claims: Record<string, unknown>): SignJWT {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' });
}

describe('dashboard token verification (jose)', () => {
  const verifier = new TokenVerifier({ secret: SECRET });

  it('accepts a valid HS256 token and reads its VINs and expiry', async () => {
    const token = await mintDashboardToken({ secret: SECRET, vins: [VIN_A, VIN_B.toLowerCase()], ttlSeconds: 60, subject: 'ops' });
    const grant = await verifier.verify(token);
    expect(grant.all).to.equal(false);
    expect([...grant.vins]).to.deep.equal([VIN_A, VIN_B]);
    expect(grant.allows(VIN_A)).to.equal(true);
    expect(grant.allows('5YJ3E7EB0LF000009')).to.equal(false);
    expect(grant.subject).to.equal('ops');
    expect(grant.expiresAt).to.be.closeTo(Date.now() + 60_000, 2000);
    expect(grant.source).to.equal('hs256');
  });

  it('refuses without a key only what no key could accept, and agrees with verify() on it', async () => {
    const expired = await hs({ vins: [VIN_A] }).setExpirationTime(now() - 30).sign(key);
    const forged = `${(await mintDashboardToken({ secret: SECRET, vins: [VIN_A], ttlSeconds: 60 })).slice(0, -4)}AAAA`;
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"vins":["*"],"exp":${now() + 60}}`).toString('base64url')}.`;
    const rs256 = await new SignJWT({ vins: [VIN_A] }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime(now() + 60).sign((await generateKeyPair('RS256')).privateKey);
    for (const [token, reason] of [[undefined, 'missing_token'], ['', 'missing_token'], ['abc.def', 'malformed_token'], [unsigned, 'algorithm_not_allowed'], [rs256, 'algorithm_not_allowed']] as const) {
      expect(verifier.precheck(token)?.reason, String(token)).to.equal(reason);
      expect(await refused(verifier, token)).to.equal(reason);
    }
    // A key decides these: the precheck leaves them to verify().
    expect(verifier.precheck(expired)).to.equal(null);
    expect(verifier.precheck(forged)).to.equal(null);
    expect(new TokenVerifier({ secret: '' }).precheck(expired)?.reason).to.equal('algorithm_not_allowed');
  });

  it('reads ["*"] as every car', async () => {
    const grant = await verifier.verify(await mintDashboardToken({ secret: SECRET, vins: ['*'], ttlSeconds: 60 }));
    expect(grant.all).to.equal(true);
    expect(grant.allows('5YJ3E7EB0LF000009')).to.equal(true);
    expect(grant.describeVins()).to.equal('*');
  });

  it('refuses missing, malformed, expired, not-yet-valid and exp-less tokens', async () => {
    expect(await refused(verifier, undefined)).to.equal('missing_token');
    expect(await refused(verifier, '')).to.equal('missing_token');
    expect(await refused(verifier, 'abc.def')).to.equal('malformed_token');
    expect(await refused(verifier, await hs({ vins: [VIN_A] }).setExpirationTime(now() - 30).sign(key))).to.equal('expired');
    expect(await refused(verifier, await hs({ vins: [VIN_A] }).setNotBefore(now() + 600).setExpirationTime(now() + 900).sign(key))).to.equal('not_yet_valid');
    expect(await refused(verifier, await hs({ vins: [VIN_A] }).sign(key))).to.equal('missing_exp');
  });

  it('refuses a wrong signature and alg:none', async () => {
    const other = new TextEncoder().encode('another-secret-that-is-long-enough-000000');
    expect(await refused(verifier, await hs({ vins: [VIN_A] }).setExpirationTime(now() + 60).sign(other))).to.equal('bad_signature');
    const good = await hs({ vins: [VIN_A] }).setExpirationTime(now() + 60).sign(key);
    const [, payload] = good.split('.');
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
    expect(await refused(verifier, none)).to.equal('algorithm_not_allowed');
    const hs512 = await new SignJWT({ vins: [VIN_A] }).setProtectedHeader({ alg: 'HS512' }).setExpirationTime(now() + 60).sign(key);
    expect(await refused(verifier, hs512)).to.equal('algorithm_not_allowed');
  });

  it('refuses missing or malformed vins claims', async () => {
    const exp = now() + 60;
    expect(await refused(verifier, await hs({}).setExpirationTime(exp).sign(key))).to.equal('missing_vins');
    expect(await refused(verifier, await hs({ vins: [] }).setExpirationTime(exp).sign(key))).to.equal('missing_vins');
    expect(await refused(verifier, await hs({ vins: VIN_A }).setExpirationTime(exp).sign(key))).to.equal('missing_vins');
    expect(await refused(verifier, await hs({ vins: ['not-a-vin'] }).setExpirationTime(exp).sign(key))).to.equal('missing_vins');
    expect(await refused(verifier, await hs({ vins: ['*', VIN_A] }).setExpirationTime(exp).sign(key))).to.equal('missing_vins');
  });

  it('checks issuer and audience when they are configured', async () => {
    const strict = new TokenVerifier({ secret: SECRET, issuer: 'https://ops.example.com', audience: 'fleet-dashboard' });
    const exp = now() + 60;
    const good = await hs({ vins: [VIN_A] }).setIssuer('https://ops.example.com').setAudience('fleet-dashboard').setExpirationTime(exp).sign(key);
    expect((await strict.verify(good)).allows(VIN_A)).to.equal(true);
    expect(await refused(strict, await hs({ vins: [VIN_A] }).setIssuer('https://evil.example.com').setAudience('fleet-dashboard').setExpirationTime(exp).sign(key))).to.equal('wrong_issuer');
    expect(await refused(strict, await hs({ vins: [VIN_A] }).setIssuer('https://ops.example.com').setAudience('other').setExpirationTime(exp).sign(key))).to.equal('wrong_audience');
    expect(await refused(strict, await hs({ vins: [VIN_A] }).setExpirationTime(exp).sign(key))).to.equal('wrong_issuer');
  });

  describe('with a JWKS (RS256 / ES256)', () => {
    let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
    let ec: Awaited<ReturnType<typeof generateKeyPair>>;
    let jwks: { keys: JWK[] };
    let server: Server;
    let fetches = 0;
    let url = '';

    before(async () => {
      rsa = await generateKeyPair('RS256', { extractable: true });
      ec = await generateKeyPair('ES256', { extractable: true });
      jwks = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' }, { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' }] };
      server = createServer((_req, res) => {
        fetches++;
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(jwks));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const claims = () => ({ vins: [VIN_A] });

    it('accepts RS256 and ES256 tokens from the JWKS URL and caches the keys', async () => {
      const idp = new TokenVerifier({ secret: '', jwksUrl: url, issuer: 'https://idp.example.com', audience: 'fleet' });
      const rs = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer('https://idp.example.com').setAudience('fleet').setExpirationTime(now() + 60).sign(rsa.privateKey);
      const es = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'ec-1' }).setIssuer('https://idp.example.com').setAudience('fleet').setExpirationTime(now() + 60).sign(ec.privateKey);
      const before = fetches;
      expect((await idp.verify(rs)).source).to.equal('jwks');
      expect((await idp.verify(es)).allows(VIN_A)).to.equal(true);
      expect(await idp.verify(rs)).to.be.ok;
      expect(fetches - before).to.equal(1, 'keys fetched once and cached');
      const wrongIss = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer('https://other.example.com').setAudience('fleet').setExpirationTime(now() + 60).sign(rsa.privateKey);
      expect(await refused(idp, wrongIss)).to.equal('wrong_issuer');
      expect(await refused(idp, await mintDashboardToken({ secret: SECRET, vins: [VIN_A], ttlSeconds: 60 }))).to.equal('algorithm_not_allowed');
    });

    it('refuses HS/RS confusion: an HS256 token keyed with the RSA public key', async () => {
      const publicPem = await exportSPKI(rsa.publicKey);
      const forged = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
        .setIssuer('https://idp.example.com')
        .setAudience('fleet')
        .setExpirationTime(now() + 60)
        .sign(new TextEncoder().encode(publicPem));
      const jwksOnly = new TokenVerifier({ secret: '', jwksResolver: createLocalJWKSet(jwks), issuer: 'https://idp.example.com', audience: 'fleet' });
      expect(await refused(jwksOnly, forged)).to.equal('algorithm_not_allowed');
      const both = new TokenVerifier({ secret: SECRET, jwksResolver: createLocalJWKSet(jwks), issuer: 'https://idp.example.com', audience: 'fleet' });
      expect(await refused(both, forged)).to.equal('bad_signature');
    });

    it('refuses a token whose key is not in the JWKS', async () => {
      const stranger = await generateKeyPair('RS256');
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'nobody' }).setIssuer('https://idp.example.com').setAudience('fleet').setExpirationTime(now() + 60).sign(stranger.privateKey);
      const idp = new TokenVerifier({ secret: '', jwksResolver: createLocalJWKSet(jwks), issuer: 'https://idp.example.com', audience: 'fleet' });
      expect(await refused(idp, token)).to.equal('unknown_key');
    });
  });

  describe('Tesla sign-in', () => {
    let tesla: FakeTeslaAuth;
    let verifierTesla: TokenVerifier;

    before(async () => {
      tesla = await new FakeTeslaAuth().start();
      verifierTesla = new TokenVerifier({
        secret: SECRET,
        tesla: { jwksUrl: tesla.jwksUrl, issuer: FAKE_TESLA_ISSUER, audience: FAKE_TESLA_AUDIENCE, apiBaseUrl: tesla.baseUrl, refreshCooldownMs: 0 },
      });
    });
    after(() => tesla.stop());

    it('takes the VINs from GET /api/1/vehicles, caches them, and asks again on a miss', async () => {
      const token = await tesla.token({ vins: [VIN_A] });
      const calls = tesla.vehicleCalls;
      const grant = await verifierTesla.verify(token);
      expect(grant.source).to.equal('tesla');
      expect([...grant.vins]).to.deep.equal([VIN_A]);
      await verifierTesla.verify(token);
      expect(tesla.vehicleCalls - calls).to.equal(1, 'list cached for the token');
      expect(await grant.allowsAfterRefresh(VIN_B)).to.equal(false);
      tesla.vehiclesByToken.set(token, [VIN_A, VIN_B]);
      expect(await grant.allowsAfterRefresh(VIN_B)).to.equal(true);
      expect(grant.allows(VIN_B)).to.equal(true);
      // HS256 operator tokens keep working next to Tesla sign-in.
      expect((await verifierTesla.verify(await mintDashboardToken({ secret: SECRET, vins: ['*'], ttlSeconds: 60 }))).all).to.equal(true);
    });

    it('requires the vehicle_device_data scope, Tesla audience and a token Tesla accepts', async () => {
      expect(await refused(verifierTesla, await tesla.token({ scopes: ['openid', 'user_data'], vins: [VIN_A] }))).to.equal('missing_scope');
      expect(await refused(verifierTesla, await tesla.token({ audience: 'https://elsewhere.example', vins: [VIN_A] }))).to.equal('wrong_audience');
      expect(await refused(verifierTesla, await tesla.token({}))).to.equal('tesla_rejected_token');
      tesla.vehiclesStatus = 503;
      try {
        expect(await refused(verifierTesla, await tesla.token({ vins: [VIN_A] }))).to.equal('vehicle_list_unavailable');
      } finally {
        tesla.vehiclesStatus = 200;
      }
      // Another issuer's RS256 token is not a Tesla token, and no JWKS is configured for it.
      expect(await refused(verifierTesla, await tesla.token({ issuer: 'https://evil.example', vins: [VIN_A] }))).to.equal('algorithm_not_allowed');
    });
  });
});

describe('dashboard token minting helpers', () => {
  it('parses TTLs', () => {
    expect(parseTtl('90s')).to.equal(90);
    expect(parseTtl('15m')).to.equal(900);
    expect(parseTtl('1h')).to.equal(3600);
    expect(parseTtl('7d')).to.equal(604800);
    expect(parseTtl('120')).to.equal(120);
    expect(() => parseTtl('1w')).to.throw(/--ttl/);
    expect(() => parseTtl('0s')).to.throw(/between/);
    expect(() => parseTtl('400d')).to.throw(/between/);
  });

  it('normalises VIN lists', () => {
    expect(normaliseVins([VIN_A.toLowerCase(), `${VIN_B},${VIN_A}`])).to.deep.equal([VIN_A, VIN_B]);
    expect(normaliseVins(['*'])).to.deep.equal(['*']);
    expect(() => normaliseVins([])).to.throw(/at least one/);
    expect(() => normaliseVins(['*', VIN_A])).to.throw(/either/);
    expect(() => normaliseVins(['XYZ'])).to.throw(/not a VIN/);
  });

  it('refuses a short secret', async () => {
    let error: unknown;
    try {
      await mintDashboardToken({ secret: 'short', vins: ['*'], ttlSeconds: 60 });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.match(/32 bytes/);
  });
});
