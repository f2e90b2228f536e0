import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { isObject, parseJson } from '../safety/json-reader.js';

/**
 * Tesla's OAuth 2.0 endpoints (Fleet API > Authentication): the authorization-code flow with PKCE for
 * a person, refresh (Tesla rotates refresh tokens: the new one must be kept, the old one stops
 * working) and client credentials for the partner token. Tokens go into request bodies and come back
 * in results; they never go into an error message.
 */

export const TESLA_AUTHORIZE_URL = 'https://auth.tesla.com/oauth2/v3/authorize';
export const TESLA_TOKEN_URL = 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token';
/**
 * `openid offline_access` give a refresh token; `vehicle_device_data` lets us list and configure cars;
 * `vehicle_location` is asked for but optional: without it the dashboard holds location fields back.
 */
export const USER_SCOPES = ['openid', 'offline_access', 'vehicle_device_data', 'vehicle_location'];
export const REQUIRED_SCOPE = 'vehicle_device_data';
export const PARTNER_SCOPES = ['openid', 'vehicle_device_data'];

export interface TeslaOAuthOptions {
  clientId: string;
  /** Needed for the code exchange and client credentials; refresh needs only the client id. */
  clientSecret: string;
  authorizeUrl?: string;
  tokenUrl?: string;
  /** The Fleet API base URL tokens are issued for (`audience`). */
  audience: string;
  timeoutMs?: number;
}

/** Why Tesla's token endpoint said no, as a bounded code (metric label, page message). */
export type OAuthFailure = 'bad_code' | 'revoked' | 'bad_client' | 'tesla_unavailable' | 'bad_response';

export class OAuthError extends Error {
  constructor(
    readonly reason: OAuthFailure,
    message: string,
    /** Tesla's own `error` code, when it sent one. */
    readonly teslaError = '',
  ) {
    super(message);
    this.name = 'OAuthError';
  }
}

export interface TokenSet {
  accessToken: string;
  /** Absent from a client-credentials answer. */
  refreshToken: string;
  /** Epoch ms. */
  expiresAt: number;
  scopes: string[];
  /** The access token's `sub` (Tesla's user id), when it is a JWT that has one. */
  subject: string | null;
  idToken: string;
}

export interface AuthorizationRequest {
  url: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** RFC 7636 S256: the challenge is the base64url SHA-256 of the verifier. */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export class TeslaOAuth {
  readonly authorizeUrl: string;
  readonly tokenUrl: string;

  constructor(private readonly options: TeslaOAuthOptions) {
    this.authorizeUrl = options.authorizeUrl ?? TESLA_AUTHORIZE_URL;
    this.tokenUrl = options.tokenUrl ?? TESLA_TOKEN_URL;
  }

  /** A fresh state, nonce and PKCE verifier, and the URL that sends the person to Tesla with them. */
  authorization(redirectUri: string, scopes: string[] = USER_SCOPES): AuthorizationRequest {
    const state = randomToken();
    const nonce = randomToken();
    const codeVerifier = randomToken(48);
    const url = new URL(this.authorizeUrl);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.options.clientId);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('scope', scopes.join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', nonce);
    url.searchParams.set('code_challenge', pkceChallenge(codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
    // A person who unticks a scope is asked again for the missing ones next time.
    url.searchParams.set('prompt_missing_scopes', 'true');
    return { url: url.toString(), state, nonce, codeVerifier };
  }

  exchangeCode(code: string, redirectUri: string, codeVerifier: string, nonce: string): Promise<TokenSet> {
    return this.tokenRequest(
      {
        grant_type: 'authorization_code',
        client_id: this.options.clientId,
        client_secret: this.options.clientSecret,
        code,
        audience: this.options.audience,
        redirect_uri: redirectUri,
        code_verifier: codeVerifier,
      },
      'bad_code',
    ).then((tokens) => {
      // OIDC Core 3.1.3.7: an ID token taken straight from the token endpoint over TLS needs no
      // signature check, but its nonce must be the one this browser was sent to Tesla with.
      if (tokens.idToken !== '') {
        let claimed: unknown;
        try {
          claimed = decodeJwt(tokens.idToken).nonce;
        } catch {
          throw new OAuthError('bad_response', 'Tesla returned an unreadable id_token');
        }
        if (claimed !== undefined && claimed !== nonce) throw new OAuthError('bad_code', 'the id_token nonce does not match this sign-in');
      }
      return tokens;
    });
  }

  refresh(refreshToken: string): Promise<TokenSet> {
    return this.tokenRequest({ grant_type: 'refresh_token', client_id: this.options.clientId, refresh_token: refreshToken }, 'revoked');
  }

  partnerToken(scopes: string[] = PARTNER_SCOPES): Promise<TokenSet> {
    return this.tokenRequest(
      {
        grant_type: 'client_credentials',
        client_id: this.options.clientId,
        client_secret: this.options.clientSecret,
        scope: scopes.join(' '),
        audience: this.options.audience,
      },
      'bad_client',
    );
  }

  private async tokenRequest(form: Record<string, string>, onInvalidGrant: OAuthFailure): Promise<TokenSet> {
    let response: Response;
    try {
      response = await fetch(this.tokenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams(form).toString(),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
        redirect: 'error',
      });
    } catch (error) {
      throw new OAuthError('tesla_unavailable', `Tesla's token endpoint did not answer (${(error as Error).name})`);
    }
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      const parsed = parseJson(text);
      if (isObject(parsed)) body = parsed;
    } catch {
      // not JSON: judged by status below
    }
    if (!response.ok) {
      const teslaError = typeof body.error === 'string' ? body.error : '';
      const description = typeof body.error_description === 'string' ? `: ${body.error_description.slice(0, 200)}` : '';
      if (response.status >= 500 || response.status === 429) {
        throw new OAuthError('tesla_unavailable', `Tesla's token endpoint answered HTTP ${response.status}${description}`, teslaError);
      }
      const reason: OAuthFailure = teslaError === 'invalid_client' || teslaError === 'unauthorized_client' ? 'bad_client' : onInvalidGrant;
      throw new OAuthError(reason, `Tesla refused the ${form.grant_type} request (HTTP ${response.status}${teslaError ? ` ${teslaError}` : ''}${description})`, teslaError);
    }
    const accessToken = body.access_token;
    if (typeof accessToken !== 'string' || accessToken === '') throw new OAuthError('bad_response', 'Tesla answered without an access_token');
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 3600;
    return {
      accessToken,
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : '',
      expiresAt: Date.now() + expiresIn * 1000,
      scopes: scopesOf(body, accessToken),
      subject: subjectOf(accessToken),
      idToken: typeof body.id_token === 'string' ? body.id_token : '',
    };
  }
}

/** The token response's `scope`, else the access token's `scp` claim. */
function scopesOf(body: Record<string, unknown>, accessToken: string): string[] {
  if (typeof body.scope === 'string' && body.scope.trim() !== '') return body.scope.trim().split(/\s+/);
  try {
    const claims = decodeJwt(accessToken);
    if (Array.isArray(claims.scp)) return claims.scp.filter((s): s is string => typeof s === 'string');
    if (typeof claims.scope === 'string') return claims.scope.split(' ');
  } catch {
    // an opaque token: no scopes known
  }
  return [];
}

function subjectOf(accessToken: string): string | null {
  try {
    const sub = decodeJwt(accessToken).sub;
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
}
