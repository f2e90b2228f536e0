import { timingSafeEqual } from 'node:crypto';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { EncryptJWT, jwtDecrypt } from 'jose';
import QRCode from 'qrcode';
import type { Logger } from 'pino';
import type { DashboardMetrics } from './dashboard-metrics.js';
import { OAuthError, REQUIRED_SCOPE, type TeslaOAuth, type TokenSet } from '../tesla/tesla-oauth.js';
import type { HttpResponse, TemplatedApp } from '../uws/uws.js';
import { DashboardGrant } from './dashboard-grant.js';
import { TESLA_LOCATION_SCOPE } from './location-filter.js';
import type { VehicleDirectory } from './dashboard-hub.js';
import { deriveKey, sessionIdOf, type SessionStore, type VehicleLister } from './session-store.js';

/**
 * Sign in with Tesla on the dashboard listener: the authorization-code flow with PKCE.
 *
 *   GET /auth/login     a fresh state, nonce and PKCE verifier, sealed into a short-lived HttpOnly
 *                       cookie (bound to this browser), then 302 to Tesla's authorize URL
 *   GET /auth/callback  the cookie must be there, unexpired, its state equal to the callback's and
 *                       not used before; then the code exchange, the scope check, the vehicle list,
 *                       and a server-side session whose random id is the only thing the browser gets
 *   POST /auth/logout   ends the session (its sockets close) and clears the cookie
 *   GET /auth/status    whether sign-in is offered and whether this browser is signed in
 *   GET /auth/pairing   the pairing link for this server's domain and which of the session's cars
 *                       have not streamed yet; /auth/pairing-qr.svg is the link as a QR code
 *
 * The callback always lands on `/` (or `/?signin_error=<reason>`): no route takes a return address,
 * so nothing here can be turned into an open redirect.
 */

export const LOGIN_PATH = '/auth/login';
export const CALLBACK_PATH = '/auth/callback';
export const LOGOUT_PATH = '/auth/logout';
export const STATUS_PATH = '/auth/status';
export const PAIRING_PATH = '/auth/pairing';
export const PAIRING_QR_PATH = '/auth/pairing-qr.svg';
/** `__Host-`: the browser only keeps it when Secure, Path=/ and without Domain, so no subdomain can plant one. */
export const SESSION_COOKIE = '__Host-ft-session';
export const LOGIN_COOKIE = '__Host-ft-login';

/** Why a sign-in was refused: the `signin_error` the page explains and the metric's `result`. */
export type SignInRefusal =
  | 'no_login_cookie'
  | 'state_mismatch'
  | 'state_replayed'
  | 'access_denied'
  | 'tesla_error'
  | 'bad_code'
  | 'missing_scope'
  | 'tesla_unavailable'
  | 'vehicle_list_unavailable';

const LOGIN_TTL_SECONDS = 600;
const MAX_USED_STATES = 100_000;
const NO_STORE_HEADERS: Array<[string, string]> = [
  ['Cache-Control', 'no-store'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Content-Type-Options', 'nosniff'],
];

export interface TeslaLoginOptions {
  oauth: TeslaOAuth;
  store: SessionStore;
  redirectUri: string;
  /** DASHBOARD_SESSION_SECRET: seals the login cookie. */
  secret: string;
  /** The car-facing domain, for the pairing link https://tesla.com/_ak/<domain>. */
  domain: string;
  listVehicles: VehicleLister;
  /** The Fleet API base URL of a user token's region, or '' when it cannot be told. */
  regionOf: (accessToken: string) => Promise<string>;
  directory: VehicleDirectory;
  maxAgeSeconds: number;
  /** A VIN missing from the session's list is asked about again at most this often. */
  refreshCooldownMs?: number;
  metrics: DashboardMetrics;
  logger: Logger;
  now?: () => number;
}

export function pairingUrl(domain: string): string {
  return `https://tesla.com/_ak/${domain}`;
}

export class TeslaLogin {
  private readonly loginKey: Uint8Array;
  /** States already redeemed, until their login cookie would have expired: a replay is refused. */
  private readonly usedStates = new Map<string, number>();
  private readonly now: () => number;
  private qrSvg: Promise<string> | null = null;

  constructor(private readonly options: TeslaLoginOptions) {
    this.loginKey = deriveKey(options.secret, 'dashboard login cookie');
    this.now = options.now ?? Date.now;
  }

  /** The grant of the session this Cookie header names, or null when it names none. */
  async grantFor(cookieHeader: string): Promise<{ grant: DashboardGrant; sessionId: string } | null> {
    const value = cookieValue(cookieHeader, SESSION_COOKIE);
    if (value === null) return null;
    const found = await this.options.store.find(value);
    if (found === null) return null;
    const record = await this.options.store.fresh(found.id);
    if (record === null) return null;
    const id = record.id;
    const store = this.options.store;
    const cooldown = this.options.refreshCooldownMs ?? 30_000;
    // Location follows Tesla's own rule: only with the vehicle_location scope the owner granted.
    const grant = new DashboardGrant(false, record.vins, record.expiresAt, record.subject, 'tesla', () => store.vinsFor(id, cooldown), record.scopes.includes(TESLA_LOCATION_SCOPE));
    return { grant, sessionId: id };
  }

  routes(app: TemplatedApp): void {
    app.get(LOGIN_PATH, (res) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      void this.login().then((result) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('302 Found');
          for (const [name, value] of NO_STORE_HEADERS) res.writeHeader(name, value);
          res.writeHeader('Set-Cookie', setCookie(LOGIN_COOKIE, result.cookie, LOGIN_TTL_SECONDS, 'lax'));
          res.writeHeader('Location', result.location);
          res.end();
        });
      }, (error: unknown) => {
        this.options.logger.error({ error: (error as Error).message }, 'tesla_sign_in_start_failed');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end('sign-in could not start\n'));
      });
    });

    app.get(CALLBACK_PATH, (res, req) => {
      const query = new URLSearchParams(req.getQuery() ?? '');
      const cookies = req.getHeader('cookie');
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      void this.callback(query, cookies).catch((error: unknown) => {
        this.options.logger.error({ error: (error as Error).message }, 'tesla_sign_in_crashed');
        return { ok: false as const, reason: 'tesla_error' as const };
      }).then((outcome) => {
        this.options.metrics.teslaSignIns.inc({ result: outcome.ok ? 'ok' : outcome.reason });
        if (outcome.ok) this.options.logger.info({ subject: outcome.subject, vins: outcome.vinCount }, 'tesla_sign_in');
        else this.options.logger.warn({ reason: outcome.reason }, 'tesla_sign_in_refused');
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('302 Found');
          for (const [name, value] of NO_STORE_HEADERS) res.writeHeader(name, value);
          // The login cookie is spent either way.
          res.writeHeader('Set-Cookie', setCookie(LOGIN_COOKIE, '', 0, 'lax'));
          if (outcome.ok) {
            res.writeHeader('Set-Cookie', setCookie(SESSION_COOKIE, outcome.cookie, this.options.maxAgeSeconds, 'strict'));
            res.writeHeader('Location', '/');
          } else {
            res.writeHeader('Location', `/?signin_error=${outcome.reason}`);
          }
          res.end();
        });
      });
    });

    app.post(LOGOUT_PATH, (res, req) => {
      const value = cookieValue(req.getHeader('cookie'), SESSION_COOKIE);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      // SameSite=Strict keeps the cookie off cross-site POSTs, so another site cannot sign anyone out.
      const work = value === null ? Promise.resolve() : this.options.store.end(sessionIdOf(value), 'signed_out');
      void work.then(() => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('204 No Content');
          for (const [name, v] of NO_STORE_HEADERS) res.writeHeader(name, v);
          res.writeHeader('Set-Cookie', setCookie(SESSION_COOKIE, '', 0, 'strict'));
          res.end();
        });
      });
    });

    app.get(STATUS_PATH, (res, req) => {
      const value = cookieValue(req.getHeader('cookie'), SESSION_COOKIE);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      void (value === null ? Promise.resolve(null) : this.options.store.find(value)).then((record) => {
        if (!aborted) json(res, 200, { signIn: 'tesla', signedIn: record !== null, pairingUrl: pairingUrl(this.options.domain) });
      });
    });

    app.get(PAIRING_PATH, (res, req) => {
      const value = cookieValue(req.getHeader('cookie'), SESSION_COOKIE);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      void (value === null ? Promise.resolve(null) : this.options.store.find(value)).then((record) => {
        if (aborted) return;
        if (record === null) {
          json(res, 401, { error: 'unauthorized', reason: 'no_session' });
          return;
        }
        const vehicles = record.vins.map((vin) => ({ vin, streaming: this.options.directory.summary(vin).lastSeenAt !== null }));
        json(res, 200, { domain: this.options.domain, url: pairingUrl(this.options.domain), qr: PAIRING_QR_PATH, vehicles });
      });
    });

    app.get(PAIRING_QR_PATH, (res) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      this.qrSvg ??= QRCode.toString(pairingUrl(this.options.domain), { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      void this.qrSvg.then((svg) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('200 OK');
          res.writeHeader('Content-Type', 'image/svg+xml');
          res.writeHeader('X-Content-Type-Options', 'nosniff');
          res.end(svg);
        });
      });
    });
  }

  private async login(): Promise<{ cookie: string; location: string }> {
    const request = this.options.oauth.authorization(this.options.redirectUri);
    const cookie = await new EncryptJWT({ s: request.state, n: request.nonce, v: request.codeVerifier })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setIssuedAt(Math.floor(this.now() / 1000))
      .setExpirationTime(Math.floor(this.now() / 1000) + LOGIN_TTL_SECONDS)
      .encrypt(this.loginKey);
    return { cookie, location: request.url };
  }

  private async callback(
    query: URLSearchParams,
    cookieHeader: string,
  ): Promise<{ ok: true; cookie: string; subject: string | null; vinCount: number } | { ok: false; reason: SignInRefusal }> {
    const refuse = (reason: SignInRefusal) => ({ ok: false as const, reason });
    const sealed = cookieValue(cookieHeader, LOGIN_COOKIE);
    if (sealed === null) return refuse('no_login_cookie');
    let login: { s: string; n: string; v: string; exp: number };
    try {
      const { payload } = await jwtDecrypt(sealed, this.loginKey, { currentDate: new Date(this.now()) });
      if (typeof payload.s !== 'string' || typeof payload.n !== 'string' || typeof payload.v !== 'string' || typeof payload.exp !== 'number') {
        return refuse('no_login_cookie');
      }
      login = { s: payload.s, n: payload.n, v: payload.v, exp: payload.exp };
    } catch {
      return refuse('no_login_cookie');
    }
    const state = query.get('state') ?? '';
    if (state === '' || !sameText(state, login.s)) return refuse('state_mismatch');
    this.forgetOldStates();
    if (this.usedStates.has(state)) return refuse('state_replayed');
    // Bounded: each entry needs a login cookie we sealed, and lives at most its 10 minutes.
    if (this.usedStates.size >= MAX_USED_STATES) this.usedStates.delete(this.usedStates.keys().next().value as string);
    this.usedStates.set(state, login.exp * 1000);
    const error = query.get('error');
    if (error !== null) return refuse(error === 'access_denied' ? 'access_denied' : 'tesla_error');
    const code = query.get('code') ?? '';
    if (code === '') return refuse('bad_code');
    let tokens: TokenSet;
    try {
      tokens = await this.options.oauth.exchangeCode(code, this.options.redirectUri, login.v, login.n);
    } catch (failure) {
      if (failure instanceof OAuthError && failure.reason === 'tesla_unavailable') return refuse('tesla_unavailable');
      return refuse('bad_code');
    }
    if (!tokens.scopes.includes(REQUIRED_SCOPE)) return refuse('missing_scope');
    // Each region has its own Fleet API: the account's cars are listed (now and later) at its region's.
    const apiBaseUrl = await this.options.regionOf(tokens.accessToken);
    let vins: ReadonlySet<string>;
    try {
      vins = await this.options.listVehicles(tokens.accessToken, apiBaseUrl);
    } catch {
      return refuse('vehicle_list_unavailable');
    }
    const cookie = await this.options.store.create(tokens, vins, apiBaseUrl);
    return { ok: true, cookie, subject: tokens.subject, vinCount: vins.size };
  }

  private forgetOldStates(): void {
    const now = this.now();
    for (const [state, until] of this.usedStates) if (until <= now) this.usedStates.delete(state);
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** One cookie's value from a Cookie header (the `cookie` package's parser); null when absent or empty. */
export function cookieValue(header: string, name: string): string | null {
  const value = parseCookies(header)[name];
  return value === undefined || value === '' ? null : value;
}

/** Our cookies are `__Host-` ones: Secure, Path=/, no Domain; HttpOnly always. An empty value with 0 clears one. */
export function setCookie(name: string, value: string, maxAgeSeconds: number, sameSite: 'lax' | 'strict'): string {
  return serializeCookie(name, value, { path: '/', maxAge: maxAgeSeconds, httpOnly: true, secure: true, sameSite });
}

function json(res: HttpResponse, status: number, body: unknown): void {
  const statusLine = status === 200 ? '200 OK' : status === 401 ? '401 Unauthorized' : `${status} Error`;
  res.cork(() => {
    res.writeStatus(statusLine);
    res.writeHeader('Content-Type', 'application/json');
    for (const [name, value] of NO_STORE_HEADERS) res.writeHeader(name, value);
    res.end(JSON.stringify(body));
  });
}

