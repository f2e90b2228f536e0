/**
 * The validated configuration the rest of the server receives. Only src/config reads the environment;
 * every other module takes the slice of this object it needs.
 */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AppConfig {
  env: 'production' | 'development' | 'test';
  logLevel: LogLevel;
  /** Public DNS name cars connect to; the server certificate must cover it. */
  domain: string;
  vehicle: {
    host: string;
    port: number;
    /** Frames larger than this get the error reply with an empty txid. */
    maxFrameBytes: number;
    /** Seconds without traffic before uWS pings / drops the socket (multiple of 4, uWS rule). */
    idleTimeoutSeconds: number;
    /** Per-socket send buffer before a car is considered stuck. */
    maxBackpressureBytes: number;
    /** Token-bucket budget per car connection; frames past it are dropped unacked. 0 = no limit. */
    maxFramesPerSecond: number;
    /** Open sockets per VIN; a new one past it closes the oldest. */
    maxSocketsPerVin: number;
    /** Open vehicle sockets in total; upgrades past it get 503. */
    maxSockets: number;
    /** Seconds a socket has to complete its first frame; 0 = none. */
    firstFrameTimeoutSeconds: number;
  };
  tls: {
    certFile: string;
    keyFile: string;
    keyPassphrase: string;
    /** The chain cars use to verify us: the `ca` of the car-side telemetry config. */
    caChainFile: string;
    /** Watch the certificate files and reload them when they change (SIGHUP reloads either way). */
    watchFiles: boolean;
  };
  vehicleCa: {
    /** CAs trusted for car client certificates: Tesla's bundle in production, a dev/test CA otherwise. */
    file: string;
    /** Optional extra operator CA file; certificates chaining to it count as vehicles with CN = VIN. */
    extraFile: string;
  };
  decode: {
    workers: number;
    batchMaxFrames: number;
    taskTimeoutMs: number;
    inlineMaxFrames: number;
    inlineMaxBytes: number;
  };
  watchdog: {
    staleAfterSeconds: number;
    sweepIntervalSeconds: number;
    /** Devices silent and disconnected this long are dropped from the registry; 0 = never. */
    forgetAfterSeconds: number;
  };
  dashboard: {
    host: string;
    port: number;
    /** Empty = same as the vehicle listener's certificate. */
    certFile: string;
    keyFile: string;
    jwtSecret: string;
    jwksUrl: string;
    jwtIssuer: string;
    jwtAudience: string;
    allowedOrigins: string[];
    maxBackpressureBytes: number;
    /** Accept Tesla-issued access tokens (Tesla sign-in); their VINs come from the Fleet API. */
    teslaSignIn: boolean;
    teslaJwksUrl: string;
    teslaIssuer: string;
    teslaAudience: string;
    /** Longest token lifetime accepted (exp past now and past iat). */
    maxTokenLifetimeSeconds: number;
    /** Open dashboard sockets per token subject. */
    maxSocketsPerSubject: number;
    /** History replays per socket per minute. */
    maxReplaysPerMinute: number;
  };
  metrics: {
    host: string;
    port: number;
  };
  tesla: {
    accessToken: string;
    vins: string[];
    apiBaseUrl: string;
    publicKeyFile: string;
    autoConfigure: boolean;
    /** Partner-account token for the partner fleet_telemetry_errors endpoint; empty = per-VIN errors with accessToken. */
    partnerToken: string;
    /** Tesla's vehicle-command proxy (it signs configs); empty = we sign with privateKeyFile. */
    proxyUrl: string;
    /** CA that issued the proxy's TLS certificate (the proxy usually runs with its own). */
    proxyCaFile: string;
    /** The app's P-256 private key (PEM): signs configs when no proxy is used. */
    privateKeyFile: string;
    configPreset: string;
    /** JSON file with the `fields` map; replaces the preset when set. */
    configFieldsFile: string;
    /** Comma-separated alert_types, e.g. "service". */
    alertTypes: string;
    /** Days until the pushed config expires (`exp`); 0 = no expiry. */
    configExpiryDays: number;
    requestTimeoutMs: number;
    errorsPollIntervalSeconds: number;
    /** Least time between two watchdog re-pushes to the same car. */
    repushMinIntervalSeconds: number;
  };
  /** Sign in with Tesla (dashboard sessions) and the operator's refreshing Tesla tokens. */
  signIn: {
    clientId: string;
    clientSecret: string;
    authorizeUrl: string;
    tokenUrl: string;
    /** `auth login`'s refresh token; empty = TESLA_ACCESS_TOKEN only. */
    tokenFile: string;
    /** Empty = no Sign in with Tesla on the dashboard. */
    redirectUri: string;
    sessionSecret: string;
    /** Empty = sessions in memory (or the NATS KV bucket in NATS mode). */
    sessionFile: string;
    sessionMaxAgeSeconds: number;
    vehicleListRefreshSeconds: number;
  };
  /** Scale-out: empty url = one process with the in-process bus; set = NATS JetStream (docs/SCALE-OUT.md). */
  nats: {
    url: string;
    credsFile: string;
    user: string;
    password: string;
    token: string;
    tlsCaFile: string;
    subjectPrefix: string;
    stream: string;
    recordEncoding: 'protobuf' | 'json';
    maxAgeSeconds: number;
    /** 0 = unlimited. */
    maxBytes: number;
    duplicateWindowSeconds: number;
    replicas: number;
    maxPendingPublishes: number;
    publishTimeoutMs: number;
    stateFlushMs: number;
    /** Empty = made up at start (host name, pid, random). */
    instanceId: string;
  };
  /** Recent history, trips and charging sessions (src/history/, docs/HISTORY.md). */
  history: {
    enabled: boolean;
    windowHours: number;
    resolutionSeconds: number;
    maxPointsPerCar: number;
    mapTileUrl: string;
    mapAttribution: string;
  };
  /** Long-term storage: empty url = none (src/postgres/). */
  postgres: {
    url: string;
    batchRows: number;
    flushMs: number;
    queueMaxRows: number;
  };
  /** MQTT output with Home Assistant discovery (docs/HOME-ASSISTANT.md); empty url = off. */
  mqtt: {
    url: string;
    username: string;
    password: string;
    /** A file holding the password (read at start); wins over `password`. */
    passwordFile: string;
    caFile: string;
    certFile: string;
    keyFile: string;
    clientId: string;
    protocolVersion: number;
    topicPrefix: string;
    qos: number;
    /** Republish an unchanged value after this many seconds; 0 = only on change. */
    heartbeatSeconds: number;
    /** Also publish every whole record (canonical JSON) on <prefix>/<VIN>/record/<topic>. */
    rawRecords: boolean;
    /** Most messages waiting for the broker besides the latest value per car and field. */
    maxQueuedEvents: number;
    /** Most QoS 1/2 publishes awaiting the broker's PUBACK at once. */
    maxInFlight: number;
    /** Publishes per second at most; 0 = no cap. */
    maxMessagesPerSecond: number;
    discovery: boolean;
    discoveryPrefix: string;
  };
  selfCheck: boolean;
  shutdownGraceMs: number;
  shutdownSpreadMs: number;
}

/**
 * The slice of the configuration each stage receives, built by src/config/slices.ts for src/server.ts:
 * a stage reads only what its type names, and holds no setting (no secret) it does not use.
 */

/** TESLA_AUTO_CONFIGURE: the config it pushes (domain, port, ca chain, fields) and the Fleet API access. */
export interface TeslaStageConfig {
  /** The hostname cars are told to connect to. */
  domain: string;
  vehicle: Pick<AppConfig['vehicle'], 'port'>;
  tls: Pick<AppConfig['tls'], 'caChainFile'>;
  tesla: AppConfig['tesla'];
  /** The operator's token file and the OAuth client that refreshes it. */
  signIn: Pick<AppConfig['signIn'], 'clientId' | 'clientSecret' | 'authorizeUrl' | 'tokenUrl' | 'tokenFile'>;
}

/** The dashboard: its listener and token checks, Sign in with Tesla, the map settings the page reads. */
export interface DashboardStageConfig {
  /** The car-facing domain, for the pairing link https://tesla.com/_ak/<domain>. */
  domain: string;
  dashboard: AppConfig['dashboard'];
  signIn: Pick<
    AppConfig['signIn'],
    'clientId' | 'clientSecret' | 'authorizeUrl' | 'tokenUrl' | 'redirectUri' | 'sessionSecret' | 'sessionFile' | 'sessionMaxAgeSeconds' | 'vehicleListRefreshSeconds'
  >;
  /** Where a Tesla-signed-in user's cars are listed (no operator token: each user's own). */
  tesla: Pick<AppConfig['tesla'], 'apiBaseUrl' | 'requestTimeoutMs'>;
  /** The vehicle listener's pair, served when the dashboard has none of its own. */
  tls: Pick<AppConfig['tls'], 'certFile' | 'keyFile' | 'keyPassphrase'>;
  history: Pick<AppConfig['history'], 'enabled' | 'mapTileUrl' | 'mapAttribution'>;
}

/** Recent history, trips and charges, and the PostgreSQL sink. */
export type HistoryStageConfig = Pick<AppConfig, 'history' | 'postgres'>;

/** The MQTT output; the fields auto-configure pushes get their Home Assistant entities up front. */
export interface MqttStageConfig {
  mqtt: AppConfig['mqtt'];
  tesla: Pick<AppConfig['tesla'], 'autoConfigure' | 'configPreset' | 'configFieldsFile'>;
}

/** Certificate hot reload: the files it watches and checks, and how it proves a new pair (self-check). */
export interface CertificateReloadConfig {
  domain: string;
  selfCheck: boolean;
  tls: Pick<AppConfig['tls'], 'certFile' | 'keyFile' | 'keyPassphrase' | 'caChainFile'>;
  vehicleCa: AppConfig['vehicleCa'];
  vehicle: Pick<AppConfig['vehicle'], 'host'>;
  dashboard: Pick<AppConfig['dashboard'], 'host' | 'certFile' | 'keyFile'>;
}
