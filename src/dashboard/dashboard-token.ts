import { SignJWT } from 'jose';
import { VIN_PATTERN } from './dashboard-grant.js';

export interface MintOptions {
  secret: string;
  /** VINs, or ['*'] for every car. */
  vins: string[];
  ttlSeconds: number;
  subject?: string;
  issuer?: string;
  audience?: string;
  now?: number;
}

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const MAX_TTL_SECONDS = 366 * 86_400;

/** `90s`, `15m`, `1h`, `7d` (or plain seconds) -> seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (match === null) throw new Error(`--ttl must look like 90s, 15m, 1h or 7d, got "${text}"`);
  const seconds = Number(match[1]) * TTL_UNITS[match[2] || 's']!;
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw new Error(`--ttl must be between 1s and 366d, got "${text}"`);
  return seconds;
}

/** Normalises and checks a `vins` claim: ['*'] or VINs, upper case, no duplicates. */
export function normaliseVins(vins: string[]): string[] {
  const upper = [...new Set(vins.flatMap((v) => v.split(',')).map((v) => v.trim().toUpperCase()).filter((v) => v !== ''))];
  if (upper.length === 0) throw new Error('at least one --vin (a VIN, or * for every car) is required');
  if (upper.includes('*')) {
    if (upper.length > 1) throw new Error('--vin * already means every car; give either * or VINs');
    return ['*'];
  }
  const bad = upper.filter((vin) => !VIN_PATTERN.test(vin));
  if (bad.length > 0) throw new Error(`not a VIN (17 letters and digits, no I, O or Q): ${bad.join(', ')}`);
  return upper;
}

/** An HS256 dashboard token as the dashboard listener expects it. */
export async function mintDashboardToken(options: MintOptions): Promise<string> {
  if (Buffer.byteLength(options.secret, 'utf8') < 32) throw new Error('JWT_SECRET must be at least 32 bytes');
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  let jwt = new SignJWT({ vins: normaliseVins(options.vins) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now)
    .setExpirationTime(now + options.ttlSeconds);
  if (options.subject) jwt = jwt.setSubject(options.subject);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
