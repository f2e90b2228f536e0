/**
 * The headers every dashboard HTTP answer carries. One place, so a feature that needs another source
 * (map tiles from a configured origin, a sign-in redirect target) adds it here and the policy stays
 * whole: pass the extra origins, never a second Content-Security-Policy header.
 */
export interface SecurityHeaderOptions {
  /** Extra origins images may come from (e.g. a map tile server: `https://tile.example.com`). */
  imgSources?: readonly string[];
  /** Extra origins the page may fetch from or open sockets to. */
  connectSources?: readonly string[];
  /** Extra targets forms may post to (e.g. a sign-in page on another origin). */
  formActions?: readonly string[];
  /** HSTS max-age in seconds; the dashboard is only ever served over TLS. Default one year. */
  hstsMaxAgeSeconds?: number;
}

const ONE_YEAR_SECONDS = 365 * 86_400;

/** The page loads only its own script and stylesheet, inline nothing, and may not be framed. */
export function contentSecurityPolicy(options: SecurityHeaderOptions = {}): string {
  const list = (base: string[], extra: readonly string[] | undefined): string => [...base, ...(extra ?? [])].join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${list(["'self'", 'data:'], options.imgSources)}`,
    `connect-src ${list(["'self'"], options.connectSources)}`,
    "font-src 'self'",
    "manifest-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    `form-action ${list(["'self'"], options.formActions)}`,
  ].join('; ');
}

export function securityHeaders(options: SecurityHeaderOptions = {}): Array<[string, string]> {
  return [
    ['Content-Security-Policy', contentSecurityPolicy(options)],
    ['Strict-Transport-Security', `max-age=${options.hstsMaxAgeSeconds ?? ONE_YEAR_SECONDS}`],
    ['X-Content-Type-Options', 'nosniff'],
    // The page may be opened with ?token=...: never let that URL leak to another site.
    ['Referrer-Policy', 'no-referrer'],
    ['X-Frame-Options', 'DENY'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ['Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()'],
    ['Cache-Control', 'no-store'],
  ];
}
