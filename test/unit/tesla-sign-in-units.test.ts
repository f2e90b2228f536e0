import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { EncryptedSessionFile, SessionStore, deriveKey, seal, sessionIdOf, unseal } from '../../src/dashboard/session-store.js';
import { cookieValue, setCookie } from '../../src/dashboard/tesla-login.js';
import { TeslaOAuth, pkceChallenge, type TokenSet } from '../../src/tesla/tesla-oauth.js';
import { TeslaTokenFile, writeTokenFile } from '../../src/tesla/token-file.js';
import { FakeTeslaOAuth } from '../helpers/fake-tesla-oauth.js';

const VIN = '5YJ3E7EB0LF000001';

describe('Sign in with Tesla building blocks', function () {
  this.timeout(20_000);
  let dir: string;
  let tesla: FakeTeslaOAuth;
  let oauth: TeslaOAuth;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sign-in-units-'));
    tesla = await new FakeTeslaOAuth().start();
    oauth = new TeslaOAuth({ clientId: tesla.clientId, clientSecret: tesla.clientSecret, authorizeUrl: tesla.authorizeUrl, tokenUrl: tesla.tokenUrl, audience: tesla.baseUrl });
  });
  after(async () => {
    await tesla.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('TeslaOAuth', () => {
    it('builds the documented authorize URL with a fresh state, nonce and S256 challenge each time', () => {
      const a = oauth.authorization('https://dash.example.com/auth/callback');
      const b = oauth.authorization('https://dash.example.com/auth/callback');
      const url = new URL(a.url);
      expect(url.origin + url.pathname).to.equal(tesla.authorizeUrl);
      expect(Object.fromEntries(url.searchParams)).to.deep.include({
        response_type: 'code',
        client_id: tesla.clientId,
        redirect_uri: 'https://dash.example.com/auth/callback',
        scope: 'openid offline_access vehicle_device_data vehicle_location',
        state: a.state,
        nonce: a.nonce,
        code_challenge: pkceChallenge(a.codeVerifier),
        code_challenge_method: 'S256',
        prompt_missing_scopes: 'true',
      });
      expect(a.state).not.to.equal(b.state);
      expect(a.codeVerifier).not.to.equal(b.codeVerifier);
      expect(a.codeVerifier.length).to.be.within(43, 128);
    });

    it('gets a partner token with client credentials and refuses a wrong secret without echoing it', async () => {
      const token = await oauth.partnerToken();
      expect(token.accessToken).to.be.a('string').and.not.equal('');
      const wrong = new TeslaOAuth({ clientId: tesla.clientId, clientSecret: 'wrong-secret-SENTINEL', tokenUrl: tesla.tokenUrl, audience: tesla.baseUrl });
      const error = await wrong.partnerToken().then(() => null, (e: Error & { reason?: string }) => e);
      expect(error?.reason).to.equal('bad_client');
      expect(error?.message).not.to.include('SENTINEL');
    });

    it('reports an unreachable token endpoint as tesla_unavailable', async () => {
      const nowhere = new TeslaOAuth({ clientId: 'x', clientSecret: 'y', tokenUrl: 'http://127.0.0.1:1/oauth2/v3/token', audience: 'https://a.example', timeoutMs: 2000 });
      const error = await nowhere.refresh('rt').then(() => null, (e: Error & { reason?: string }) => e);
      expect(error?.reason).to.equal('tesla_unavailable');
    });
  });

  describe('TeslaTokenFile', () => {
    it('refreshes once for many callers, rotates the refresh token, and the old one is dead', async () => {
      const file = join(dir, 'tokens.json');
      const first = await tesla.issueRefreshToken({ sub: 'op', vins: [VIN] });
      await writeTokenFile(file, { refreshToken: first, accessToken: '', expiresAt: 0, scopes: [], subject: null, apiBaseUrl: '' });
      const results: string[] = [];
      const source = new TeslaTokenFile(file, oauth, { onRefresh: (r) => results.push(r) });
      const before = tesla.counts.refreshes;
      const tokens = await Promise.all([source.accessToken(), source.accessToken(), source.accessToken()]);
      expect(new Set(tokens).size).to.equal(1);
      expect(tesla.counts.refreshes - before).to.equal(1);
      expect(results).to.deep.equal(['ok']);
      const stored = JSON.parse(readFileSync(file, 'utf8')) as { refresh_token: string };
      expect(stored.refresh_token).not.to.equal(first);
      // A second source (another process) finds the fresh token on disk and does not refresh again.
      expect(await new TeslaTokenFile(file, oauth).accessToken()).to.equal(tokens[0]);
      expect(tesla.counts.refreshes - before).to.equal(1);
      // The old refresh token no longer works at Tesla.
      const stale = await oauth.refresh(first).then(() => 'accepted', (e: Error & { reason?: string }) => e.reason);
      expect(stale).to.equal('revoked');
    });

    it('takes over a lock left by a dead process, and waits for a live one', async () => {
      const file = join(dir, 'locked.json');
      await writeTokenFile(file, { refreshToken: await tesla.issueRefreshToken({ sub: 'op', vins: [] }), accessToken: '', expiresAt: 0, scopes: [], subject: null, apiBaseUrl: '' });
      writeFileSync(`${file}.lock`, '99999');
      const source = new TeslaTokenFile(file, oauth, { staleLockMs: 200 });
      const started = Date.now();
      const token = await source.accessToken();
      expect(token).not.to.equal('');
      expect(Date.now() - started).to.be.at.least(150);
    });

    it('says how to fix a missing file', async () => {
      const error = await new TeslaTokenFile(join(dir, 'absent.json'), oauth).accessToken().then(() => null, (e: Error) => e);
      expect(error?.message).to.include('run `fleet-telemetry auth login` first');
    });
  });

  describe('SessionStore', () => {
    function tokensFor(accessToken: string, refreshToken: string, ttlMs: number): TokenSet {
      return { accessToken, refreshToken, expiresAt: Date.now() + ttlMs, scopes: ['vehicle_device_data'], subject: 'u', idToken: '' };
    }

    it('seals with AES-256-GCM: a wrong key or a flipped byte is refused', () => {
      const key = deriveKey('a'.repeat(32), 'x');
      const sealed = seal(key, 'hello');
      expect(unseal(key, sealed)).to.equal('hello');
      expect(() => unseal(deriveKey('b'.repeat(32), 'x'), sealed)).to.throw();
      const raw = Buffer.from(sealed, 'base64');
      raw[raw.length - 1]! ^= 1;
      expect(() => unseal(key, raw.toString('base64'))).to.throw();
    });

    it('persists encrypted, reloads with the same secret, starts empty with another', async () => {
      const file = join(dir, 'sessions.enc');
      const persistence = new EncryptedSessionFile(file, 's'.repeat(32), silentLogger());
      const store = new SessionStore({ oauth, listVehicles: async () => new Set([VIN]), persistence, maxAgeMs: 60_000, vehicleListRefreshMs: 60_000, logger: silentLogger() });
      await store.start();
      const cookie = await store.create(tokensFor('access-SENTINEL', 'refresh-SENTINEL', 600_000), new Set([VIN]));
      await store.stop();
      expect(readFileSync(file, 'utf8')).not.to.include('SENTINEL');
      expect(readFileSync(file, 'utf8')).not.to.include(cookie);
      const again = new SessionStore({ oauth, listVehicles: async () => new Set(), persistence, maxAgeMs: 60_000, vehicleListRefreshMs: 60_000, logger: silentLogger() });
      await again.start();
      expect(again.lookup(cookie)?.vins).to.deep.equal([VIN]);
      await again.stop();
      const other = new SessionStore({ oauth, listVehicles: async () => new Set(), persistence: new EncryptedSessionFile(file, 't'.repeat(32), silentLogger()), maxAgeMs: 60_000, vehicleListRefreshMs: 60_000, logger: silentLogger() });
      await other.start();
      expect(other.size).to.equal(0);
      await other.stop();
    });

    it('refreshes a token near expiry, keeps the rotated one, and ends the session when Tesla refuses', async () => {
      const user = { sub: 'session-user', vins: [VIN] };
      const refresh = await tesla.issueRefreshToken(user);
      const ended: string[] = [];
      const results: string[] = [];
      // The store's clock, moved by hand: the token's life runs out without waiting for it.
      let now = Date.now();
      const store = new SessionStore({ oauth, listVehicles: async () => new Set([VIN]), maxAgeMs: 3_600_000, vehicleListRefreshMs: 60_000, logger: silentLogger(), onRefresh: (r) => results.push(r), now: () => now });
      store.on('ended', (_id, reason) => ended.push(reason));
      await store.start();
      const cookie = await store.create({ ...tokensFor('old-access', refresh, 0), expiresAt: now + 600_000 }, new Set([VIN]));
      const id = sessionIdOf(cookie);
      now += 299_000;
      expect((await store.fresh(id))?.accessToken, 'fresh until 5 min before expiry').to.equal('old-access');
      expect(results).to.deep.equal([]);
      now += 2_000;
      const fresh = await store.fresh(id);
      expect(fresh?.accessToken).not.to.equal('old-access');
      expect(fresh?.refreshToken).not.to.equal(refresh);
      expect(results).to.deep.equal(['ok']);
      tesla.revoke('session-user');
      fresh!.accessExpiresAt = now - 1;
      expect(await store.fresh(id)).to.equal(null);
      expect(ended).to.deep.equal(['revoked']);
      expect(store.lookup(cookie)).to.equal(null);
      await store.stop();
    });

    it("refetches the account's VINs and says when a car left it", async () => {
      let listed = new Set([VIN, '5YJ3E7EB0LF000002']);
      const store = new SessionStore({ oauth, listVehicles: async () => listed, maxAgeMs: 60_000, vehicleListRefreshMs: 60_000, logger: silentLogger() });
      const removed: string[] = [];
      store.on('vinsRemoved', (id) => removed.push(id));
      await store.start();
      const cookie = await store.create(tokensFor('a', 'r', 600_000), listed);
      const id = sessionIdOf(cookie);
      listed = new Set([VIN, '5YJ3E7EB0LF000002', '5YJ3E7EB0LF000003']);
      expect([...(await store.vinsFor(id, 0))]).to.have.length(3);
      expect(removed).to.deep.equal([]);
      listed = new Set([VIN]);
      expect([...(await store.vinsFor(id, 0))]).to.deep.equal([VIN]);
      expect(removed).to.deep.equal([id]);
      // Within the cooldown the list is not fetched again.
      listed = new Set();
      expect([...(await store.vinsFor(id, 60_000))]).to.deep.equal([VIN]);
      await store.stop();
    });

    it('a session past its maximum age is gone', async () => {
      let now = Date.now();
      const store = new SessionStore({ oauth, listVehicles: async () => new Set(), maxAgeMs: 1000, vehicleListRefreshMs: 60_000, logger: silentLogger(), now: () => now });
      await store.start();
      const cookie = await store.create(tokensFor('a', 'r', 600_000), new Set());
      expect(store.lookup(cookie)).not.to.equal(null);
      now += 1001;
      expect(store.lookup(cookie)).to.equal(null);
      await store.stop();
    });
  });

  it('cookieValue reads one cookie exactly', () => {
    expect(cookieValue('a=1; __Host-ft-session=abc; b=2', '__Host-ft-session')).to.equal('abc');
    expect(cookieValue('x__Host-ft-session=evil; c=3', '__Host-ft-session')).to.equal(null);
    expect(cookieValue('__Host-ft-session=', '__Host-ft-session')).to.equal(null);
    expect(cookieValue('', '__Host-ft-session')).to.equal(null);
    expect(cookieValue('__Host-ft-session=first; __Host-ft-session=second', '__Host-ft-session')).to.equal('first');
  });

  it('setCookie writes __Host- cookies: Secure, Path=/, no Domain, HttpOnly', () => {
    expect(setCookie('__Host-ft-session', 'abc.DEF_-1', 3600, 'strict')).to.equal('__Host-ft-session=abc.DEF_-1; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Strict');
    expect(setCookie('__Host-ft-login', '', 0, 'lax')).to.equal('__Host-ft-login=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax');
    expect(cookieValue(`a=1; ${setCookie('__Host-ft-session', 'abc.DEF_-1', 60, 'strict').split(';')[0]}`, '__Host-ft-session')).to.equal('abc.DEF_-1');
  });
});
