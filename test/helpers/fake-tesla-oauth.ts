import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SignJWT, generateKeyPair, type CryptoKey } from 'jose';
import { LoopbackServer, readBody, send } from './loopback-http.js';

/**
 * Tesla's auth server and the Fleet API endpoints sign-in and setup use, on 127.0.0.1, behaving as
 * Tesla documents them (Fleet API > Authentication, Partner endpoints):
 *
 *  - GET  /oauth2/v3/authorize: checks client_id, a registered redirect_uri, response_type=code, state,
 *    an S256 code_challenge; the "person" (`nextUser`) consents at once, or declines (`denyConsent`);
 *    a granted scope list may leave out what the user unticked (`grantScopes`)
 *  - POST /oauth2/v3/token: authorization_code (client secret, the same redirect_uri, the PKCE
 *    verifier, single-use short-lived code, an audience), refresh_token (rotates: the old refresh token
 *    dies), client_credentials (partner token); access tokens are RS256 JWTs that expire after
 *    `accessTtlSeconds`
 *  - GET /api/1/vehicles (per token, refused once expired or revoked), GET /api/1/users/region
 *  - POST /api/1/partner_accounts (fetches the domain's public key as Tesla does, from `keyUrlFor`)
 *    and GET /api/1/partner_accounts/public_key
 *
 * Anything off is refused the way Tesla refuses it and recorded in `violations`.
 */

export interface FakeUser {
  sub: string;
  vins: string[];
  /** Scopes this person allows (default: all requested). */
  grantScopes?: string[];
}

interface CodeGrant {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string;
  scopes: string[];
  user: FakeUser;
  expiresAt: number;
}

interface RefreshGrant {
  user: FakeUser;
  scopes: string[];
  alive: boolean;
}

interface AccessGrant {
  user: FakeUser | null;
  expiresAt: number;
  partner: boolean;
}

export class FakeTeslaOAuth extends LoopbackServer {
  readonly clientId = `client-${randomUUID()}`;
  readonly clientSecret = `secret-${randomBytes(16).toString('hex')}`;
  readonly redirectUris = new Set<string>();
  readonly violations: string[] = [];
  nextUser: FakeUser = { sub: 'tesla-user-1', vins: [] };
  denyConsent = false;
  accessTtlSeconds = 600;
  /** Where Tesla would fetch a domain's public key (https://<domain>/.well-known/...); tests point it at the server. */
  keyUrlFor: (domain: string) => string = (domain) => `https://${domain}/.well-known/appspecific/com.tesla.3p.public-key.pem`;
  /** The CA that key URL is served with (a dev CA in tests). */
  keyUrlCa: string | Buffer | undefined;
  readonly partnerDomains = new Map<string, string>();
  /** The account's region is served under this path prefix (GET /api/1/users/region says so), e.g. '/eu'. */
  regionPrefix = '';
  readonly counts = { authorize: 0, codeExchanges: 0, refreshes: 0, refreshRefused: 0, partnerTokens: 0, vehicleLists: 0, partnerRegistrations: 0, regionCalls: 0 };
  /** Every token and code this server handed out, so a test can look for them where they must not be. */
  readonly issuedSecrets: string[] = [];
  private readonly codes = new Map<string, CodeGrant>();
  private readonly refreshTokens = new Map<string, RefreshGrant>();
  private readonly accessTokens = new Map<string, AccessGrant>();
  private privateKey: CryptoKey | null = null;

  get baseUrl(): string {
    return this.url;
  }

  get authorizeUrl(): string {
    return `${this.baseUrl}/oauth2/v3/authorize`;
  }

  get tokenUrl(): string {
    return `${this.baseUrl}/oauth2/v3/token`;
  }

  /** The server's and the CLI's TESLA_* settings pointing at this fake. */
  env(): Record<string, string> {
    return {
      TESLA_CLIENT_ID: this.clientId,
      TESLA_CLIENT_SECRET: this.clientSecret,
      TESLA_AUTHORIZE_URL: this.authorizeUrl,
      TESLA_TOKEN_URL: this.tokenUrl,
      TESLA_API_BASE_URL: this.baseUrl,
    };
  }

  override async start(): Promise<this> {
    this.privateKey = (await generateKeyPair('RS256')).privateKey;
    return super.start();
  }

  /** The 500's body: the OAuth error shape. */
  protected override internalError(message: string): unknown {
    return { error: 'internal', error_description: message };
  }

  /** The person withdraws consent: every refresh and access token of theirs stops working. */
  revoke(sub: string): void {
    for (const grant of this.refreshTokens.values()) if (grant.user.sub === sub) grant.alive = false;
    for (const [token, grant] of this.accessTokens) if (grant.user?.sub === sub) this.accessTokens.delete(token);
  }

  /** A refresh token for a user as `auth login` would have stored it. */
  async issueRefreshToken(user: FakeUser, scopes = ['openid', 'offline_access', 'vehicle_device_data']): Promise<string> {
    const token = `rt-${randomBytes(24).toString('base64url')}`;
    this.refreshTokens.set(token, { user, scopes, alive: true });
    this.issuedSecrets.push(token);
    return token;
  }

  liveAccessToken(token: string): boolean {
    const grant = this.accessTokens.get(token);
    return grant !== undefined && grant.expiresAt > Date.now();
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    if (this.regionPrefix !== '' && url.pathname.startsWith(`${this.regionPrefix}/api/`)) {
      this.counts.regionCalls++;
      url.pathname = url.pathname.slice(this.regionPrefix.length);
    }
    if (req.method === 'GET' && url.pathname === '/oauth2/v3/authorize') return this.authorize(url, res);
    if (req.method === 'POST' && url.pathname === '/oauth2/v3/token') return this.token(req, res);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const grant = this.accessTokens.get(bearer);
    if (grant === undefined || grant.expiresAt <= Date.now()) {
      return send(res, 401, { response: null, error: 'invalid bearer token', error_description: grant === undefined ? 'unknown token' : 'token expired' });
    }
    if (req.method === 'GET' && url.pathname === '/api/1/vehicles' && grant.user !== null) {
      this.counts.vehicleLists++;
      const vins = grant.user.vins;
      return send(res, 200, { response: vins.map((vin, i) => ({ id: 1000 + i, vin, state: 'online' })), count: vins.length, pagination: { previous: null, next: null, current: 1, per_page: 100, count: vins.length, pages: 1 } });
    }
    if (req.method === 'GET' && url.pathname === '/api/1/users/region' && grant.user !== null) {
      return send(res, 200, { response: { region: this.regionPrefix === '' ? 'na' : this.regionPrefix.slice(1), fleet_api_base_url: `${this.baseUrl}${this.regionPrefix}` } });
    }
    if (url.pathname.startsWith('/api/1/partner_accounts') && !grant.partner) {
      this.violations.push(`${url.pathname}: called without a partner token`);
      return send(res, 403, { response: null, error: 'unauthorized', error_description: 'partner token required' });
    }
    if (req.method === 'POST' && url.pathname === '/api/1/partner_accounts') return this.registerPartner(req, res);
    if (req.method === 'GET' && url.pathname === '/api/1/partner_accounts/public_key') {
      const key = this.partnerDomains.get(url.searchParams.get('domain') ?? '');
      if (key === undefined) return send(res, 404, { response: null, error: 'not_found', error_description: 'domain not registered' });
      return send(res, 200, { response: { public_key: key } });
    }
    this.violations.push(`${req.method} ${url.pathname}: no such endpoint`);
    send(res, 404, { response: null, error: 'not_found' });
  }

  private authorize(url: URL, res: ServerResponse): void {
    this.counts.authorize++;
    const q = url.searchParams;
    const redirectUri = q.get('redirect_uri') ?? '';
    // An unknown redirect URI is never redirected to (RFC 6749 4.1.2.1): an error page instead.
    if (q.get('client_id') !== this.clientId || !this.redirectUris.has(redirectUri)) {
      this.violations.push('authorize: unknown client_id or unregistered redirect_uri');
      res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid client or redirect_uri');
      return;
    }
    const back = new URL(redirectUri);
    const state = q.get('state') ?? '';
    const problems: string[] = [];
    if (q.get('response_type') !== 'code') problems.push('response_type must be code');
    if (state === '') problems.push('state is required');
    if (q.get('code_challenge_method') !== 'S256' || (q.get('code_challenge') ?? '').length < 43) problems.push('an S256 code_challenge is required');
    const requested = (q.get('scope') ?? '').split(' ').filter((s) => s !== '');
    if (!requested.includes('openid')) problems.push('scope must include openid');
    if (problems.length > 0) {
      this.violations.push(...problems.map((p) => `authorize: ${p}`));
      back.searchParams.set('error', 'invalid_request');
    } else if (this.denyConsent) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user denied the request');
    } else {
      const user = this.nextUser;
      const scopes = requested.filter((s) => user.grantScopes === undefined || user.grantScopes.includes(s));
      const code = `code-${randomBytes(24).toString('hex')}`;
      this.issuedSecrets.push(code);
      this.codes.set(code, { clientId: this.clientId, redirectUri, challenge: q.get('code_challenge') ?? '', nonce: q.get('nonce') ?? '', scopes, user, expiresAt: Date.now() + 60_000 });
      back.searchParams.set('code', code);
      back.searchParams.set('locale', 'en-US');
    }
    if (state !== '') back.searchParams.set('state', state);
    res.writeHead(302, { location: back.toString() }).end();
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '') && !/^application\/json/.test(req.headers['content-type'] ?? '')) {
      this.violations.push('token: content-type must be form or JSON');
    }
    const form = /^application\/json/.test(req.headers['content-type'] ?? '')
      ? new URLSearchParams(JSON.parse(text) as Record<string, string>)
      : new URLSearchParams(text);
    const invalid = (error: string, description: string, status = 400) => {
      this.violations.push(`token ${form.get('grant_type')}: ${description}`);
      send(res, status, { error, error_description: description });
    };
    if (form.get('client_id') !== this.clientId) return invalid('invalid_client', 'unknown client_id', 401);
    switch (form.get('grant_type')) {
      case 'authorization_code': {
        if (form.get('client_secret') !== this.clientSecret) return invalid('invalid_client', 'wrong client_secret', 401);
        const code = form.get('code') ?? '';
        const grant = this.codes.get(code);
        this.codes.delete(code); // single use, whatever happens next
        if (grant === undefined || grant.expiresAt <= Date.now()) return invalid('invalid_grant', 'unknown, used or expired code');
        if (form.get('redirect_uri') !== grant.redirectUri) return invalid('invalid_grant', 'redirect_uri differs from the authorize request');
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) return invalid('invalid_grant', 'PKCE code_verifier does not match');
        if ((form.get('audience') ?? '') === '') return invalid('invalid_request', 'audience is required');
        this.counts.codeExchanges++;
        return send(res, 200, await this.tokensFor(grant.user, grant.scopes, grant.nonce));
      }
      case 'refresh_token': {
        const old = form.get('refresh_token') ?? '';
        const grant = this.refreshTokens.get(old);
        if (grant === undefined || !grant.alive) {
          this.counts.refreshRefused++;
          return send(res, 401, { error: 'login_required', error_description: 'The refresh_token is invalid' });
        }
        // Rotation: the old refresh token stops working the moment a new one is issued.
        grant.alive = false;
        this.counts.refreshes++;
        return send(res, 200, await this.tokensFor(grant.user, grant.scopes, ''));
      }
      case 'client_credentials': {
        if (form.get('client_secret') !== this.clientSecret) return invalid('invalid_client', 'wrong client_secret', 401);
        if ((form.get('audience') ?? '') === '') return invalid('invalid_request', 'audience is required');
        this.counts.partnerTokens++;
        const token = await this.accessToken(null, (form.get('scope') ?? '').split(' '), true);
        return send(res, 200, { access_token: token, expires_in: this.accessTtlSeconds, token_type: 'Bearer' });
      }
      default:
        return invalid('unsupported_grant_type', `grant_type ${String(form.get('grant_type'))}`);
    }
  }

  private async tokensFor(user: FakeUser, scopes: string[], nonce: string): Promise<Record<string, unknown>> {
    const access = await this.accessToken(user, scopes, false);
    const refresh = scopes.includes('offline_access') ? await this.issueRefreshToken(user, scopes) : undefined;
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({ ...(nonce !== '' ? { nonce } : {}) })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(`${this.baseUrl}/oauth2/v3`)
      .setAudience(this.clientId)
      .setSubject(user.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + this.accessTtlSeconds)
      .sign(this.privateKey!);
    return { access_token: access, ...(refresh ? { refresh_token: refresh } : {}), id_token: idToken, expires_in: this.accessTtlSeconds, token_type: 'Bearer' };
  }

  private async accessToken(user: FakeUser | null, scopes: string[], partner: boolean): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ scp: scopes })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuer(`${this.baseUrl}/oauth2/v3/nts`)
      .setAudience(this.baseUrl)
      .setSubject(user?.sub ?? this.clientId)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + this.accessTtlSeconds)
      .sign(this.privateKey!);
    this.accessTokens.set(token, { user, expiresAt: Date.now() + this.accessTtlSeconds * 1000, partner });
    this.issuedSecrets.push(token);
    return token;
  }

  private async registerPartner(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: { domain?: unknown };
    try {
      body = JSON.parse(await readBody(req)) as { domain?: unknown };
    } catch {
      return send(res, 400, { response: null, error: 'invalid_request', error_description: 'body is not JSON' });
    }
    if (typeof body.domain !== 'string' || body.domain === '') return send(res, 400, { response: null, error: 'invalid_request', error_description: 'domain required' });
    let pem: string;
    try {
      pem = await fetchText(this.keyUrlFor(body.domain), this.keyUrlCa);
    } catch (error) {
      return send(res, 424, { response: null, error: 'public_key_unavailable', error_description: `could not fetch the public key: ${(error as Error).message}` });
    }
    const { createPublicKey } = await import('node:crypto');
    let hex: string;
    try {
      const jwk = createPublicKey(pem).export({ format: 'jwk' });
      if (jwk.crv !== 'P-256') throw new Error('not P-256');
      hex = `04${Buffer.from(jwk.x as string, 'base64url').toString('hex')}${Buffer.from(jwk.y as string, 'base64url').toString('hex')}`;
    } catch {
      return send(res, 400, { response: null, error: 'invalid_public_key', error_description: 'the served key is not a P-256 public key' });
    }
    this.counts.partnerRegistrations++;
    this.partnerDomains.set(body.domain, hex);
    send(res, 200, { response: { domain: body.domain, public_key: hex, client_id: this.clientId } });
  }
}

function fetchText(url: string, ca: string | Buffer | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ...(ca !== undefined ? { ca } : {}), timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
