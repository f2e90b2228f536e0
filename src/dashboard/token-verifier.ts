import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { DashboardGrant, VIN_PATTERN, type GrantSource } from './dashboard-grant.js';
import { TeslaVehicleList, VehicleListError } from './tesla-vehicle-list.js';
import { TESLA_LOCATION_SCOPE } from './location-filter.js';

/** Reason codes of a refused token: the 401 body and the auth-failure metric label. A fixed set. */
export const AUTH_FAILURE_REASONS = [
  'missing_token',
  'malformed_token',
  'algorithm_not_allowed',
  'bad_signature',
  'unknown_key',
  'key_source_unavailable',
  'expired',
  'not_yet_valid',
  'missing_exp',
  'wrong_issuer',
  'wrong_audience',
  'invalid_claims',
  'missing_vins',
  'missing_scope',
  'tesla_rejected_token',
  'vehicle_list_unavailable',
  'origin_not_allowed',
  'lifetime_too_long',
  'issued_in_future',
  'too_many_sockets',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

export class AuthError extends Error {
  constructor(
    readonly reason: AuthFailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface TeslaSignInOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Fleet API base URL for `GET /api/1/vehicles`. */
  apiBaseUrl: string;
  /** Scope the token must carry. */
  requiredScope?: string;
  /** A VIN missing from the cached list refetches it at most this often per token (default 30 s). */
  refreshCooldownMs?: number;
}

export interface TokenVerifierOptions {
  /** HS256 secret (JWT_SECRET); empty = HS256 tokens are not accepted. */
  secret: string;
  /** Identity-provider keys (JWT_JWKS_URL), RS256/ES256. */
  jwksUrl?: string;
  /** Required `iss` / `aud` (JWT_ISSUER / JWT_AUDIENCE), for HS256 and JWKS tokens alike; empty = not checked. */
  issuer?: string;
  audience?: string;
  tesla?: TeslaSignInOptions | null;
  /** Seconds of clock skew tolerated for exp/nbf/iat. */
  clockToleranceSeconds?: number;
  /**
   * Longest lifetime accepted (DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS): `exp` may lie at most this far past
   * now and past `iat`. Also keeps `exp` inside the range a Date can hold. Default 31 days.
   */
  maxLifetimeSeconds?: number;
  /** For tests: a key resolver instead of fetching jwksUrl / Tesla's JWKS. */
  jwksResolver?: JWTVerifyGetKey;
  teslaJwksResolver?: JWTVerifyGetKey;
  now?: () => number;
}

/** Asymmetric algorithms accepted from a JWKS; HS256 only ever with our own secret. */
const ASYMMETRIC = ['RS256', 'ES256'];
const TESLA_SCOPE = 'vehicle_device_data';
/** Keys are kept this long before a refetch; a token with an unknown kid refetches sooner (cooldown). */
const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
const JWKS_COOLDOWN_MS = 30_000;
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 31 * 86_400;

/**
 * Checks dashboard tokens. The algorithm in the header picks the key source, and each source accepts
 * only its own algorithms: HS256 is checked against JWT_SECRET and nothing else, RS256/ES256 against a
 * JWKS. So `alg: none` and an HS256 token "signed" with an RSA public key never reach a key that would
 * accept them.
 */
export class TokenVerifier {
  private readonly secret: Uint8Array | null;
  private readonly jwks: JWTVerifyGetKey | null;
  private readonly teslaJwks: JWTVerifyGetKey | null;
  private readonly teslaVehicles: TeslaVehicleList | null;
  private readonly options: TokenVerifierOptions;
  private readonly now: () => number;

  constructor(options: TokenVerifierOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.secret = options.secret === '' ? null : new TextEncoder().encode(options.secret);
    this.jwks =
      options.jwksResolver ??
      (options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl), { cacheMaxAge: JWKS_CACHE_MAX_AGE_MS, cooldownDuration: JWKS_COOLDOWN_MS }) : null);
    const tesla = options.tesla ?? null;
    this.teslaJwks =
      tesla === null
        ? null
        : options.teslaJwksResolver ??
          createRemoteJWKSet(new URL(tesla.jwksUrl), { cacheMaxAge: JWKS_CACHE_MAX_AGE_MS, cooldownDuration: JWKS_COOLDOWN_MS });
    this.teslaVehicles = tesla === null ? null : new TeslaVehicleList({ apiBaseUrl: tesla.apiBaseUrl, now: this.now, ...(tesla.refreshCooldownMs !== undefined ? { refreshCooldownMs: tesla.refreshCooldownMs } : {}) });
  }

  /**
   * What can be said of a token without any key: nothing presented, not a JWT, or an algorithm no key
   * source here accepts. Null when only the signature and claims check can decide.
   */
  precheck(token: string | null | undefined): AuthError | null {
    try {
      this.route(token);
      return null;
    } catch (error) {
      if (error instanceof AuthError) return error;
      throw error;
    }
  }

  /** A grant for a good token; AuthError with a reason code otherwise. Never echoes the token. */
  async verify(token: string | null | undefined): Promise<DashboardGrant> {
    const route = this.route(token);
    const jwt = token as string;
    if (route === 'hs256') {
      const payload = await this.check(jwt, this.secret as Uint8Array, ['HS256'], this.options.issuer, this.options.audience);
      return this.vinsGrant(payload, 'hs256');
    }
    if (route === 'tesla') {
      const tesla = this.options.tesla as TeslaSignInOptions;
      const payload = await this.check(jwt, this.teslaJwks as JWTVerifyGetKey, ASYMMETRIC, tesla.issuer, tesla.audience);
      return this.teslaGrant(jwt, payload, tesla.requiredScope ?? TESLA_SCOPE);
    }
    const payload = await this.check(jwt, this.jwks as JWTVerifyGetKey, ASYMMETRIC, this.options.issuer, this.options.audience);
    return this.vinsGrant(payload, 'jwks');
  }

  /** The key source a token's header (and, for Tesla's, its issuer) sends it to; AuthError when none. */
  private route(token: string | null | undefined): 'hs256' | 'tesla' | 'jwks' {
    if (token === null || token === undefined || token === '') throw new AuthError('missing_token', 'no token presented');
    let alg: unknown;
    let unverifiedIssuer: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      unverifiedIssuer = decodeJwt(token).iss;
    } catch {
      throw new AuthError('malformed_token', 'the token is not a JWT');
    }
    if (alg === 'HS256') {
      if (this.secret === null) throw new AuthError('algorithm_not_allowed', 'HS256 tokens are not accepted (no JWT_SECRET)');
      return 'hs256';
    }
    if (typeof alg === 'string' && ASYMMETRIC.includes(alg)) {
      const tesla = this.options.tesla ?? null;
      if (tesla !== null && this.teslaJwks !== null && unverifiedIssuer === tesla.issuer) return 'tesla';
      if (this.jwks !== null) return 'jwks';
    }
    throw new AuthError('algorithm_not_allowed', `tokens signed with ${typeof alg === 'string' ? alg : 'no algorithm'} are not accepted`);
  }

  private async check(
    token: string,
    key: Uint8Array | JWTVerifyGetKey,
    algorithms: string[],
    issuer: string | undefined,
    audience: string | undefined,
  ): Promise<JWTPayload> {
    const options: JWTVerifyOptions = {
      algorithms,
      requiredClaims: ['exp'],
      clockTolerance: this.options.clockToleranceSeconds ?? 5,
      currentDate: new Date(this.now()),
      ...(issuer ? { issuer } : {}),
      ...(audience ? { audience } : {}),
    };
    try {
      const result =
        key instanceof Uint8Array ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
      this.checkLifetime(result.payload);
      return result.payload;
    } catch (error) {
      throw translate(error);
    }
  }

  /**
   * jose accepts any numeric `exp` in the future and any `iat`. A signed token with `exp: 1e300` would
   * then reach `new Date(exp * 1000).toISOString()` (a RangeError), and one with a far `exp` would be a
   * key for ever: both are refused here, as is an `iat` past the clock skew.
   */
  private checkLifetime(payload: JWTPayload): void {
    const nowSeconds = this.now() / 1000;
    const tolerance = this.options.clockToleranceSeconds ?? 5;
    const maxLifetime = this.options.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
    const exp = expiryOf(payload);
    const iat = payload.iat;
    if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowSeconds + tolerance)) {
      throw new AuthError('issued_in_future', 'the token says it was issued in the future (`iat`)');
    }
    if (!Number.isFinite(exp) || exp > nowSeconds + maxLifetime + tolerance || (iat !== undefined && exp - iat > maxLifetime + tolerance)) {
      throw new AuthError('lifetime_too_long', `the token lives longer than the ${maxLifetime} s this server accepts (DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS)`);
    }
  }

  private vinsGrant(payload: JWTPayload, source: GrantSource): DashboardGrant {
    const claim = payload.vins;
    if (!Array.isArray(claim) || claim.length === 0 || !claim.every((vin) => typeof vin === 'string')) {
      throw new AuthError('missing_vins', 'the token has no `vins` claim (a list of VINs, or ["*"])');
    }
    const vins = (claim as string[]).map((vin) => vin.toUpperCase());
    const all = vins.includes('*');
    if (all && vins.length !== 1) throw new AuthError('missing_vins', '`vins` is either ["*"] or a list of VINs, not both');
    if (!all && !vins.every((vin) => VIN_PATTERN.test(vin))) {
      throw new AuthError('missing_vins', '`vins` holds something that is not a VIN');
    }
    return new DashboardGrant(all, all ? [] : vins, expiryOf(payload) * 1000, subjectOf(payload), source);
  }

  private async teslaGrant(token: string, payload: JWTPayload, scope: string): Promise<DashboardGrant> {
    const scopes: unknown[] = Array.isArray(payload.scp)
      ? payload.scp
      : typeof payload.scope === 'string'
        ? payload.scope.split(' ')
        : [];
    if (!scopes.includes(scope)) throw new AuthError('missing_scope', `the Tesla token lacks the ${scope} scope`);
    const expiresAt = expiryOf(payload) * 1000;
    const list = this.teslaVehicles as TeslaVehicleList;
    let vins: ReadonlySet<string>;
    try {
      vins = await list.vinsFor(token, expiresAt);
    } catch (error) {
      throw vehicleListFailure(error);
    }
    const refresher = async (): Promise<ReadonlySet<string>> => {
      try {
        return await list.refresh(token, expiresAt);
      } catch {
        // Tesla being unreachable on a refresh means "no new cars", not "lose the ones we know".
        return vins;
      }
    };
    // Tesla's own API needs `vehicle_location` for a car's position; so does this dashboard.
    return new DashboardGrant(false, vins, expiresAt, subjectOf(payload), 'tesla', refresher, scopes.includes(TESLA_LOCATION_SCOPE));
  }
}

function subjectOf(payload: JWTPayload): string | null {
  return typeof payload.sub === 'string' ? payload.sub : null;
}

function vehicleListFailure(error: unknown): AuthError {
  if (error instanceof VehicleListError) return new AuthError(error.reason, error.message);
  return new AuthError('vehicle_list_unavailable', 'the vehicle list could not be fetched');
}

/** jose's errors to our reason codes; messages are ours, so nothing from the token is echoed. */
function translate(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof errors.JWTExpired) return new AuthError('expired', 'the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf': return new AuthError('not_yet_valid', 'the token is not valid yet');
      case 'exp': return new AuthError('missing_exp', 'the token has no valid `exp`');
      case 'iss': return new AuthError('wrong_issuer', 'the token has the wrong issuer');
      case 'aud': return new AuthError('wrong_audience', 'the token has the wrong audience');
      default: return new AuthError('invalid_claims', `the token's ${error.claim} claim is invalid`);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new AuthError('algorithm_not_allowed', 'the token algorithm is not accepted');
  if (error instanceof errors.JWSSignatureVerificationFailed) return new AuthError('bad_signature', 'the token signature does not verify');
  if (error instanceof errors.JWKSNoMatchingKey) return new AuthError('unknown_key', 'no key matches the token');
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new AuthError('key_source_unavailable', 'the signing keys could not be fetched');
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new AuthError('malformed_token', 'the token is malformed');
  }
  if (error instanceof errors.JWKInvalid) return new AuthError('unknown_key', 'the signing key is unusable');
  // A fetch failure of the JWKS surfaces as a plain error.
  return new AuthError('key_source_unavailable', 'the token could not be checked');
}

/**
 * The token's `exp` in epoch seconds. jose has already refused a token without a numeric `exp`
 * (requiredClaims); this says so to the type checker without a cast, and would refuse one too.
 */
function expiryOf(payload: JWTPayload): number {
  const exp = payload.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new AuthError('malformed_token', 'the token has no numeric `exp`');
  return exp;
}
