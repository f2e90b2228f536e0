import type { AppConfig } from '../config/types.js';
import { ConfigError, loadConfig, type LoadOptions } from '../config/index.js';
import { SETTING_BY_ENV } from '../config/schema.js';
import { VIN_PATTERN } from '../protocol/vin.js';
import { configFromSettings, type ConfigChoices, type ConfigSettings } from '../tesla/config-from-settings.js';
import { FleetApiError } from '../tesla/fleet-api.js';
import { fleetApiBaseUrl } from '../tesla/region.js';
import { OAuthError } from '../tesla/tesla-oauth.js';
import { TokenFileError } from '../tesla/token-file.js';
import { tokenFileFromConfig } from '../tesla/token-provider.js';
import { createTeslaClients, type TeslaClients } from '../tesla/tesla-clients.js';
import { TelemetryConfigError, type TelemetryConfig } from '../tesla/telemetry-config.js';

/** Exit codes of the setup commands: 2 = fix your settings or flags, 1 = Tesla or the server said no. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** A push went through for some cars but Tesla skipped others. */
export const EXIT_PARTIAL = 3;

export class UsageError extends Error {}

export const out = (line = ''): void => void process.stdout.write(`${line}\n`);
export const err = (line = ''): void => void process.stderr.write(`${line}\n`);

/** Runs a command body and turns the expected failures into a message and an exit code. */
export async function runSetupCommand(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof TelemetryConfigError) {
      for (const problem of error.problems) err(`fleet-telemetry ${name}: ${problem.replace(CONFIG_PREFIX, '')}`);
      return EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      err(`fleet-telemetry ${name}: ${error.message}`);
      return EXIT_USAGE;
    }
    if (error instanceof FleetApiError || error instanceof TokenFileError || error instanceof OAuthError) {
      err(`fleet-telemetry ${name}: ${error.message}`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

export const CONFIG_OPTIONS = {
  preset: { type: 'string' },
  fields: { type: 'string' },
  port: { type: 'string' },
  domain: { type: 'string' },
  ca: { type: 'string' },
  'alert-types': { type: 'string' },
  'exp-days': { type: 'string' },
} as const;

export const CONFIG_OPTIONS_USAGE = [
  '  --preset NAME        fields preset: minimal, driving, charging, full (TESLA_CONFIG_PRESET)',
  '  --fields FILE        JSON fields map instead of a preset (TESLA_CONFIG_FIELDS_FILE)',
  '  --port N             port cars connect to (PORT; needed when PORT is 0)',
  '  --domain NAME        hostname cars connect to (DOMAIN)',
  '  --ca FILE            chain cars verify the server with (TLS_CA_CHAIN_FILE)',
  '  --alert-types LIST   comma-separated alert types, e.g. service (TESLA_ALERT_TYPES)',
  '  --exp-days N         config expires after N days; 0 = never (TESLA_CONFIG_EXPIRY_DAYS)',
];

export const SETTINGS_FOR_CONFIG = [
  'DOMAIN', 'PORT', 'TLS_CA_CHAIN_FILE', 'TESLA_CONFIG_PRESET', 'TESLA_CONFIG_FIELDS_FILE', 'TESLA_ALERT_TYPES', 'TESLA_CONFIG_EXPIRY_DAYS',
];
export const SETTINGS_FOR_API = ['TESLA_ACCESS_TOKEN', 'TESLA_API_BASE_URL', 'TESLA_API_TIMEOUT_MS', 'TESLA_VIN', 'TESLA_TOKEN_FILE', 'TESLA_CLIENT_ID', 'TESLA_TOKEN_URL'];

export function integerFlag(value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${text}"`);
  return Number(text);
}

/** The config from settings with the command-line flags on top. */
export function configFromFlags(config: ConfigSettings, values: Record<string, unknown>): TelemetryConfig {
  if (values.preset !== undefined && values.fields !== undefined) throw new UsageError('give --preset or --fields, not both');
  const withOverrides: ConfigSettings = {
    ...config,
    domain: (values.domain as string | undefined)?.trim().toLowerCase() ?? config.domain,
    tls: { ...config.tls, caChainFile: (values.ca as string | undefined) ?? config.tls.caChainFile },
  };
  const choices: ConfigChoices = {
    port: integerFlag(values.port, '--port', 1, 65535),
    preset: values.preset as string | undefined,
    // An explicit preset beats a fields file from the environment.
    fieldsFile: (values.fields as string | undefined) ?? (values.preset !== undefined ? '' : undefined),
    alertTypes: values['alert-types'] as string | undefined,
    expiryDays: integerFlag(values['exp-days'], '--exp-days', 0, 3650),
  };
  if (choices.port === undefined && config.vehicle.port === 0) throw new UsageError('PORT is 0 (any free port): give the port cars connect to with --port');
  return configFromSettings(withOverrides, choices);
}

export function vinsFrom(values: Record<string, unknown>, config: AppConfig, required: boolean): string[] {
  const given = ((values.vin as string[] | undefined) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim().toUpperCase()).filter((v) => v !== '');
  const vins = given.length > 0 ? given : config.tesla.vins;
  const bad = vins.filter((vin) => !VIN_PATTERN.test(vin));
  if (bad.length > 0) throw new UsageError(`not a VIN (17 letters and digits, no I, O or Q): ${bad.join(', ')}`);
  if (required && vins.length === 0) throw new UsageError('which car? give --vin VIN (or set TESLA_VIN)');
  return [...new Set(vins)];
}

export function clientsFor(config: AppConfig): TeslaClients {
  const tokenFile = tokenFileFromConfig(config);
  if (config.tesla.accessToken === '' && tokenFile === null) {
    throw new UsageError('no Tesla token: run `fleet-telemetry auth login` and set TESLA_TOKEN_FILE (or set a fixed TESLA_ACCESS_TOKEN); see docs/TESLA-SETUP.md');
  }
  if (tokenFile !== null && config.signIn.clientId === '') throw new UsageError('TESLA_TOKEN_FILE needs TESLA_CLIENT_ID to refresh the access token');
  const tesla = { ...config.tesla, apiBaseUrl: fleetApiBaseUrl(config) };
  return createTeslaClients(tesla, { logger: undefined, ...(tokenFile !== null ? { accessToken: () => tokenFile.accessToken() } : {}) });
}

const CONFIG_PREFIX = /^config: /;

/**
 * The settings a setup command needs, read by the server's own loader in its partial mode: the same
 * sources (config/<NODE_ENV>.json, .env, the environment) and formats, but only the named settings
 * (by environment name) are checked, so `config build` on a laptop needs no JWT secret or key files.
 * Read only the named settings from the result.
 */
export function cliSettings(needed: readonly string[], options: Omit<LoadOptions, 'only'> = {}): AppConfig {
  const only = needed.map((env) => {
    const setting = SETTING_BY_ENV.get(env);
    if (setting === undefined) throw new Error(`cliSettings: unknown setting ${env}`);
    return setting.path;
  });
  return loadConfig({ ...options, only });
}
