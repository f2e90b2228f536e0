import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/types.js';
import { FleetApiClient, type FleetEndpoint, type PushResult, type StatusClass, type TelemetryErrorEntry } from './fleet-api.js';
import { appKeyFromPem, signTelemetryConfigJws, verifyTelemetryConfigJws, type AppKeyPair } from './ss256.js';
import type { TelemetryConfig } from './telemetry-config.js';

/**
 * The Fleet API clients the CLI and the server share, built from the `tesla` settings: one for the
 * Fleet API itself, a config pusher (through the vehicle-command proxy, or signed here), and where
 * fleet_telemetry_errors come from (partner token, or per VIN with the user token).
 */

export type TeslaSettings = AppConfig['tesla'];

export interface ConfigPusher {
  /** 'proxy' when the vehicle-command proxy signs, 'signed' when we do. */
  readonly mode: 'proxy' | 'signed';
  push(vins: string[], config: TelemetryConfig): Promise<PushResult>;
}

export interface TeslaClients {
  api: FleetApiClient;
  pusher: ConfigPusher;
  /** Errors for `vins` (all partner errors when a partner token is set). */
  telemetryErrors(vins: string[]): Promise<TelemetryErrorEntry[]>;
}

export interface ClientHooks {
  logger?: Logger;
  /** Where access tokens come from when TESLA_ACCESS_TOKEN is empty (TESLA_TOKEN_FILE, refreshed). */
  accessToken?: () => Promise<string>;
  onAttempt?: (endpoint: FleetEndpoint, statusClass: StatusClass) => void;
  /** Tests shorten the backoff. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** File settings are resolved against the working directory, as the config loader does for its own. */
function readSettingFile(path: string, env: string): string {
  try {
    return readFileSync(resolve(path), 'utf8');
  } catch (error) {
    throw new Error(`${env}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

export function loadAppKey(privateKeyFile: string): AppKeyPair {
  const pem = readSettingFile(privateKeyFile, 'TESLA_PRIVATE_KEY_FILE');
  try {
    return appKeyFromPem(pem);
  } catch (error) {
    throw new Error(`TESLA_PRIVATE_KEY_FILE: ${(error as Error).message}`);
  }
}

export function createTeslaClients(tesla: TeslaSettings, hooks: ClientHooks = {}): TeslaClients {
  const accessToken = tesla.accessToken !== '' ? tesla.accessToken : hooks.accessToken;
  if (accessToken === undefined) throw new Error('TESLA_ACCESS_TOKEN or TESLA_TOKEN_FILE (`fleet-telemetry auth login`) is required for Fleet API calls');
  const common = {
    timeoutMs: tesla.requestTimeoutMs,
    logger: hooks.logger,
    onAttempt: hooks.onAttempt,
    ...(hooks.baseDelayMs !== undefined ? { baseDelayMs: hooks.baseDelayMs } : {}),
    ...(hooks.maxDelayMs !== undefined ? { maxDelayMs: hooks.maxDelayMs } : {}),
  };
  const api = new FleetApiClient({ baseUrl: tesla.apiBaseUrl, accessToken, ...common });
  let pusher: ConfigPusher;
  if (tesla.proxyUrl !== '') {
    const proxy = new FleetApiClient({
      baseUrl: tesla.proxyUrl,
      accessToken,
      ...(tesla.proxyCaFile !== '' ? { caPem: readSettingFile(tesla.proxyCaFile, 'TESLA_PROXY_CA_FILE') } : {}),
      ...common,
    });
    pusher = { mode: 'proxy', push: (vins, config) => proxy.pushConfig(vins, { ...config }) };
  } else if (tesla.privateKeyFile !== '') {
    const key = loadAppKey(tesla.privateKeyFile);
    pusher = {
      mode: 'signed',
      push: (vins, config) => {
        const token = signTelemetryConfigJws({ ...config }, key);
        // A signing bug would otherwise surface only as a car silently ignoring the config.
        verifyTelemetryConfigJws(token, key.publicKey);
        return api.pushConfigJws(vins, token);
      },
    };
  } else {
    pusher = {
      mode: 'signed',
      push: () =>
        Promise.reject(
          new Error('pushing a config needs TESLA_PROXY_URL (the vehicle-command proxy signs it) or TESLA_PRIVATE_KEY_FILE (we sign it)'),
        ),
    };
  }
  const errorsApi = tesla.partnerToken !== '' ? new FleetApiClient({ baseUrl: tesla.apiBaseUrl, accessToken: tesla.partnerToken, ...common }) : null;
  return {
    api,
    pusher,
    async telemetryErrors(vins) {
      if (errorsApi !== null) return errorsApi.partnerErrors();
      if (vins.length === 0) throw new Error('per-vehicle errors need VINs (TESLA_VIN or --vin), or set TESLA_PARTNER_TOKEN for the partner-wide list');
      const lists: TelemetryErrorEntry[][] = [];
      for (const vin of vins) lists.push(await api.vehicleErrors(vin));
      return lists.flat();
    },
  };
}
