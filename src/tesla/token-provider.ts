import type { Logger } from 'pino';
import type { AppConfig } from '../config/types.js';
import { TeslaOAuth } from './tesla-oauth.js';
import { TeslaTokenFile, type RefreshResult } from './token-file.js';

/** The OAuth client from settings (client id/secret, endpoints, the Fleet API base URL as audience). */
export interface OAuthSettings {
  signIn: Pick<AppConfig['signIn'], 'clientId' | 'clientSecret' | 'authorizeUrl' | 'tokenUrl'>;
  tesla: Pick<AppConfig['tesla'], 'apiBaseUrl' | 'requestTimeoutMs'>;
}

export function oauthFromConfig(config: OAuthSettings): TeslaOAuth {
  return new TeslaOAuth({
    clientId: config.signIn.clientId,
    clientSecret: config.signIn.clientSecret,
    authorizeUrl: config.signIn.authorizeUrl,
    tokenUrl: config.signIn.tokenUrl,
    audience: config.tesla.apiBaseUrl,
    timeoutMs: config.tesla.requestTimeoutMs,
  });
}

/**
 * TESLA_TOKEN_FILE as a token source, or null when a fixed TESLA_ACCESS_TOKEN is set (it wins: the
 * operator chose it) or no token file is configured.
 */
export function tokenFileFromConfig(
  config: { signIn: OAuthSettings['signIn'] & Pick<AppConfig['signIn'], 'tokenFile'>; tesla: OAuthSettings['tesla'] & Pick<AppConfig['tesla'], 'accessToken'> },
  hooks: { logger?: Logger; onRefresh?: (result: RefreshResult) => void } = {},
): TeslaTokenFile | null {
  if (config.tesla.accessToken !== '' || config.signIn.tokenFile === '') return null;
  return new TeslaTokenFile(config.signIn.tokenFile, oauthFromConfig(config), hooks);
}
