import { readFileSync } from 'node:fs';
import type { AppConfig } from '../config/types.js';
import { SETTING_BY_ENV } from '../config/schema.js';
import { isObject, parseJson } from '../safety/json-reader.js';

/**
 * Each Tesla region has its own Fleet API base URL. `auth login` asks GET /api/1/users/region and keeps
 * the answer in TESLA_TOKEN_FILE; Fleet API calls then go there unless TESLA_API_BASE_URL was given a
 * value of its own (in any source the config loader reads), which always wins. The server and the CLI
 * decide it here, the same way.
 */

const DEFAULT_API_BASE_URL = String(SETTING_BY_ENV.get('TESLA_API_BASE_URL')?.default ?? '');

/** TESLA_API_BASE_URL holds something other than its default: the operator chose a region. */
export function apiBaseUrlChosen(tesla: Pick<AppConfig['tesla'], 'apiBaseUrl'>): boolean {
  return tesla.apiBaseUrl !== DEFAULT_API_BASE_URL;
}

/** The Fleet API base URL to call: TESLA_API_BASE_URL, unless it is the default and the token file knows the account's region. */
export function fleetApiBaseUrl(config: { tesla: Pick<AppConfig['tesla'], 'apiBaseUrl' | 'accessToken'>; signIn: Pick<AppConfig['signIn'], 'tokenFile'> }): string {
  if (apiBaseUrlChosen(config.tesla) || config.tesla.accessToken !== '' || config.signIn.tokenFile === '') return config.tesla.apiBaseUrl;
  try {
    const stored = parseJson(readFileSync(config.signIn.tokenFile, 'utf8'));
    if (isObject(stored) && typeof stored.api_base_url === 'string' && trustedBaseUrl(stored.api_base_url) !== '') return stored.api_base_url;
  } catch {
    // no token file yet: the token source explains that when it is used
  }
  return config.tesla.apiBaseUrl;
}

/** A base URL we may send a bearer token to: https, or http to loopback only (a local stand-in); else ''. */
export function trustedBaseUrl(url: string): string {
  return /^(https:\/\/|http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/])/.test(url) ? url : '';
}
