import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDotenv } from '../config/dotenv.js';
import type { AppConfig } from '../config/types.js';

/**
 * Each Tesla region has its own Fleet API base URL. `auth login` asks GET /api/1/users/region and keeps
 * the answer in TESLA_TOKEN_FILE; Fleet API calls then go there unless TESLA_API_BASE_URL is set
 * explicitly (in the environment or .env), which always wins.
 */
export function regionBaseUrl(config: Pick<AppConfig, 'tesla' | 'signIn'>, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  if (settingIsSet('TESLA_API_BASE_URL', env, cwd) || config.signIn.tokenFile === '' || config.tesla.accessToken !== '') return config.tesla.apiBaseUrl;
  try {
    const stored = JSON.parse(readFileSync(config.signIn.tokenFile, 'utf8')) as { api_base_url?: unknown };
    if (typeof stored.api_base_url === 'string' && trustedBaseUrl(stored.api_base_url) !== '') return stored.api_base_url;
  } catch {
    // no token file yet: the token source explains that when it is used
  }
  return config.tesla.apiBaseUrl;
}

export function settingIsSet(name: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): boolean {
  if (env[name] !== undefined && env[name] !== '') return true;
  try {
    return (parseDotenv(readFileSync(join(cwd, '.env'), 'utf8')).values.get(name) ?? '') !== '';
  } catch {
    return false;
  }
}

/** A base URL we may send a bearer token to: https, or http to loopback only (a local stand-in); else ''. */
export function trustedBaseUrl(url: string): string {
  return /^(https:\/\/|http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/])/.test(url) ? url : '';
}

/**
 * The server's Fleet API base URL: TESLA_API_BASE_URL, unless it was left at its default and the
 * token file (from `auth login`) knows the account's region.
 */
export function serverApiBaseUrl(config: Pick<AppConfig, 'tesla' | 'signIn'>, defaultUrl: string): string {
  if (config.tesla.apiBaseUrl !== defaultUrl || config.tesla.accessToken !== '' || config.signIn.tokenFile === '') return config.tesla.apiBaseUrl;
  try {
    const stored = JSON.parse(readFileSync(config.signIn.tokenFile, 'utf8')) as { api_base_url?: unknown };
    if (typeof stored.api_base_url === 'string' && trustedBaseUrl(stored.api_base_url) !== '') return stored.api_base_url;
  } catch {
    // no token file yet: the token source explains that when it is used
  }
  return config.tesla.apiBaseUrl;
}
