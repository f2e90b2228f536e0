import type {
  AppConfig,
  CertificateReloadConfig,
  DashboardStageConfig,
  HistoryStageConfig,
  MqttStageConfig,
  TeslaStageConfig,
} from './types.js';

/**
 * Each stage's slice of the configuration, copied field by field: a stage gets no setting it does not
 * read, so the dashboard never holds the operator's Tesla token nor the MQTT stage the JWT secret.
 */

function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Pick<T, K> {
  const slice = {} as Pick<T, K>;
  for (const key of keys) slice[key] = from[key];
  return slice;
}

export function teslaStageConfig(config: AppConfig): TeslaStageConfig {
  return {
    domain: config.domain,
    vehicle: pick(config.vehicle, ['port']),
    tls: pick(config.tls, ['caChainFile']),
    tesla: { ...config.tesla, vins: [...config.tesla.vins] },
    signIn: pick(config.signIn, ['clientId', 'clientSecret', 'authorizeUrl', 'tokenUrl', 'tokenFile']),
  };
}

export function dashboardStageConfig(config: AppConfig): DashboardStageConfig {
  return {
    domain: config.domain,
    dashboard: { ...config.dashboard, allowedOrigins: [...config.dashboard.allowedOrigins] },
    signIn: pick(config.signIn, [
      'clientId', 'clientSecret', 'authorizeUrl', 'tokenUrl', 'redirectUri', 'sessionSecret', 'sessionFile', 'sessionMaxAgeSeconds', 'vehicleListRefreshSeconds',
    ]),
    tesla: pick(config.tesla, ['apiBaseUrl', 'requestTimeoutMs']),
    tls: pick(config.tls, ['certFile', 'keyFile', 'keyPassphrase']),
    history: pick(config.history, ['enabled', 'mapTileUrl', 'mapAttribution']),
  };
}

export function historyStageConfig(config: AppConfig): HistoryStageConfig {
  return { history: { ...config.history }, postgres: { ...config.postgres } };
}

export function mqttStageConfig(config: AppConfig): MqttStageConfig {
  return { mqtt: { ...config.mqtt }, tesla: pick(config.tesla, ['autoConfigure', 'configPreset', 'configFieldsFile']) };
}

export function certificateReloadConfig(config: AppConfig): CertificateReloadConfig {
  return {
    domain: config.domain,
    selfCheck: config.selfCheck,
    tls: pick(config.tls, ['certFile', 'keyFile', 'keyPassphrase', 'caChainFile']),
    vehicleCa: { ...config.vehicleCa },
    vehicle: pick(config.vehicle, ['host']),
    dashboard: pick(config.dashboard, ['host', 'certFile', 'keyFile']),
  };
}
