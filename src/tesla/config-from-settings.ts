import { resolve } from 'node:path';
import type { AppConfig } from '../config/types.js';
import { buildTelemetryConfig, parseAlertTypes, readCaChain, resolveFields, type TelemetryConfig } from './telemetry-config.js';

export interface ConfigChoices {
  /** Overrides PORT (needed when PORT is 0, or the public port differs from the listen port). */
  port?: number;
  preset?: string;
  fieldsFile?: string;
  alertTypes?: string;
  /** Days until `exp`; 0 = none. */
  expiryDays?: number;
  nowSeconds?: number;
}

/** The settings a car config is built from. */
export interface ConfigSettings {
  domain: string;
  vehicle: Pick<AppConfig['vehicle'], 'port'>;
  tls: Pick<AppConfig['tls'], 'caChainFile'>;
  tesla: Pick<AppConfig['tesla'], 'configFieldsFile' | 'configPreset' | 'configExpiryDays' | 'alertTypes'>;
}

/** The config the server's settings describe: what `config build` prints and auto-configure pushes. */
export function configFromSettings(config: ConfigSettings, choices: ConfigChoices = {}): TelemetryConfig {
  const fieldsFile = choices.fieldsFile ?? config.tesla.configFieldsFile;
  const fields = resolveFields(
    fieldsFile !== '' ? { fieldsFile: resolve(fieldsFile) } : { preset: choices.preset ?? config.tesla.configPreset },
  );
  const expiryDays = choices.expiryDays ?? config.tesla.configExpiryDays;
  const now = choices.nowSeconds ?? Math.floor(Date.now() / 1000);
  return buildTelemetryConfig({
    hostname: config.domain,
    port: choices.port ?? config.vehicle.port,
    caPem: readCaChain(config.tls.caChainFile),
    fields,
    alertTypes: parseAlertTypes(choices.alertTypes ?? config.tesla.alertTypes),
    ...(expiryDays > 0 ? { exp: now + expiryDays * 86_400 } : {}),
  });
}
