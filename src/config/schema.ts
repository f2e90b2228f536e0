import type convict from 'convict';
import type { AppConfig } from './types.js';
import { FORMATS, type FormatKey } from './formats.js';

/**
 * The convict schema. Its tree mirrors AppConfig key for key, so the loaded convict object *is* the
 * configuration once file paths are resolved; `convict.Schema<AppConfig>` makes tsc refuse a schema
 * that misses a field of AppConfig.
 *
 * Every leaf carries `format` (a name from formats.ts), `default`, `env`, `doc`, and `sensitive` for
 * secrets. `min`/`max` are read by the integer format.
 */
export const schema: convict.Schema<AppConfig> = {
  env: {
    format: FORMATS.nodeEnv.name,
    default: 'production',
    env: 'NODE_ENV',
    doc: 'Deployment environment (production, development, test); also picks the optional `config/<NODE_ENV>.json` file.',
  },
  logLevel: {
    format: FORMATS.logLevel.name,
    default: 'info',
    env: 'LOG_LEVEL',
    doc: 'Log level: fatal, error, warn, info, debug, trace or silent.',
  },
  domain: {
    format: FORMATS.domain.name,
    default: 'localhost',
    env: 'DOMAIN',
    doc: 'Public DNS name cars connect to (the `hostname` of the vehicle telemetry config); the server certificate must cover it.',
  },
  vehicle: {
    host: {
      format: FORMATS.listenHost.name,
      default: '0.0.0.0',
      env: 'HOST',
      doc: 'Address the vehicle (mTLS WebSocket) listener binds.',
    },
    port: {
      format: FORMATS.port.name,
      default: 443,
      env: 'PORT',
      doc: 'Port of the vehicle listener; must equal the `port` pushed in the vehicle telemetry config. 0 picks a free port.',
    },
    maxFrameBytes: {
      format: FORMATS.integer.name,
      min: 1024,
      max: 67108864,
      default: 1000000,
      env: 'MAX_FRAME_BYTES',
      doc: 'Largest frame accepted from a car, in bytes; a larger frame gets the error reply with an empty txid (Tesla uses 1000000).',
    },
    idleTimeoutSeconds: {
      format: FORMATS.idleTimeout.name,
      default: 120,
      env: 'VEHICLE_IDLE_TIMEOUT_SECONDS',
      doc: 'Seconds without traffic before the server pings a car, which drops it only if no pong comes back either (a parked car that answers pings stays connected): 0 (never) or a multiple of 4 from 8 to 960.',
    },
    maxBackpressureBytes: {
      format: FORMATS.integer.name,
      min: 1024,
      max: 1073741824,
      default: 1048576,
      env: 'VEHICLE_MAX_BACKPRESSURE_BYTES',
      doc: 'Bytes of unsent replies buffered per car before the car is considered stuck.',
    },
    maxFramesPerSecond: {
      format: FORMATS.integer.name,
      min: 0,
      max: 1000000,
      default: 0,
      env: 'VEHICLE_MAX_FRAMES_PER_SECOND',
      doc: 'Frames a second one car connection may send, bursts up to one second of budget; frames past it are dropped without a reply (a car with delivery_policy latest keeps and resends them). 0 = no limit. Leave room for a car replaying its offline buffer after a reconnect.',
    },
    maxSocketsPerVin: {
      format: FORMATS.integer.name,
      min: 1,
      max: 64,
      default: 3,
      env: 'VEHICLE_MAX_SOCKETS_PER_VIN',
      doc: 'Open sockets one VIN (one device id) may hold: a car needs wifi and cellular plus one during a reconnect. A new socket past the cap closes the oldest (1008).',
    },
    maxSockets: {
      format: FORMATS.integer.name,
      min: 1,
      max: 10000000,
      default: 200000,
      env: 'VEHICLE_MAX_SOCKETS',
      doc: 'Open vehicle sockets in total; an upgrade past it is refused with 503 (the car retries with backoff).',
    },
    firstFrameTimeoutSeconds: {
      format: FORMATS.integer.name,
      min: 0,
      max: 86400,
      default: 300,
      env: 'VEHICLE_FIRST_FRAME_TIMEOUT_SECONDS',
      doc: 'Seconds a new vehicle socket has to complete its first frame before it is closed (1008); 0 = no deadline. A car sends its fields soon after connecting; a socket that never completes a frame only holds memory. Unfinished frames are also bounded by MAX_FRAME_BYTES (+25 %).',
    },
  },
  tls: {
    certFile: {
      format: FORMATS.file.name,
      default: 'certs/server.pem',
      env: 'TLS_CERT_FILE',
      doc: 'PEM server certificate for the vehicle listener (leaf first, then any intermediates).',
    },
    keyFile: {
      format: FORMATS.file.name,
      default: 'certs/server.key',
      env: 'TLS_KEY_FILE',
      doc: 'PEM private key of TLS_CERT_FILE.',
    },
    keyPassphrase: {
      format: FORMATS.secret.name,
      default: '',
      env: 'TLS_KEY_PASSPHRASE',
      sensitive: true,
      doc: 'Passphrase of TLS_KEY_FILE (and of DASHBOARD_TLS_KEY_FILE); empty when the keys are not encrypted.',
    },
    caChainFile: {
      format: FORMATS.file.name,
      default: 'certs/ca-chain.pem',
      env: 'TLS_CA_CHAIN_FILE',
      doc: 'PEM chain cars use to verify the server: the `ca` field of the vehicle telemetry config.',
    },
    watchFiles: {
      format: FORMATS.boolean.name,
      default: true,
      env: 'TLS_WATCH_FILES',
      doc: 'Watch the certificate, key and CA files and serve renewed ones to new handshakes once they pass the start-up checks; SIGHUP reloads either way.',
    },
  },
  vehicleCa: {
    file: {
      format: FORMATS.file.name,
      default: 'certs/vehicle-ca.pem',
      env: 'VEHICLE_CA_FILE',
      doc: "PEM CAs trusted for car client certificates: Tesla's CA bundle in production, a development CA otherwise.",
    },
    extraFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'VEHICLE_EXTRA_CA_FILE',
      doc: 'Optional extra PEM CA file (test or private fleet); certificates chaining to it count as vehicles with CN = VIN.',
    },
  },
  decode: {
    workers: {
      format: FORMATS.integer.name,
      min: 0,
      max: 64,
      default: 0,
      env: 'DECODE_WORKERS',
      doc: 'Decode worker threads (1-64); 0 = one per CPU core less the one the listeners run on, at least 1.',
    },
    batchMaxFrames: {
      format: FORMATS.integer.name,
      min: 1,
      max: 65536,
      default: 256,
      env: 'DECODE_BATCH_MAX_FRAMES',
      doc: 'Most frames sent to a decode worker in one task.',
    },
    taskTimeoutMs: {
      format: FORMATS.integer.name,
      min: 1,
      max: 600000,
      default: 5000,
      env: 'DECODE_TASK_TIMEOUT_MS',
      doc: 'Milliseconds a decode task may take before its worker is treated as failed.',
    },
    inlineMaxFrames: {
      format: FORMATS.integer.name,
      min: 0,
      max: 256,
      default: 32,
      env: 'DECODE_INLINE_MAX_FRAMES',
      doc: 'Batches of at most this many frames (and at most DECODE_INLINE_MAX_BYTES) are decoded on the main thread while no decode task is running, saving the thread round trip; 0 = always a worker.',
    },
    inlineMaxBytes: {
      format: FORMATS.integer.name,
      min: 0,
      max: 262144,
      default: 16384,
      env: 'DECODE_INLINE_MAX_BYTES',
      doc: 'Largest batch, in bytes of frames, decoded on the main thread; bounds the main thread time one inline batch can take.',
    },
  },
  watchdog: {
    staleAfterSeconds: {
      format: FORMATS.integer.name,
      min: 1,
      max: 604800,
      default: 300,
      env: 'WATCHDOG_STALE_AFTER_SECONDS',
      doc: 'Seconds without records after which a connected car counts as stale.',
    },
    sweepIntervalSeconds: {
      format: FORMATS.integer.name,
      min: 1,
      max: 3600,
      default: 5,
      env: 'WATCHDOG_SWEEP_INTERVAL_SECONDS',
      doc: 'Seconds between watchdog sweeps; must be shorter than WATCHDOG_STALE_AFTER_SECONDS.',
    },
    forgetAfterSeconds: {
      format: FORMATS.integer.name,
      min: 0,
      max: 31622400,
      default: 2592000,
      env: 'WATCHDOG_FORGET_AFTER_SECONDS',
      doc: 'Seconds after its last connection closed that a device not listed in TESLA_VIN is forgotten (its actor and last-known state dropped from memory; default 30 days). 0 = never.',
    },
  },
  dashboard: {
    host: {
      format: FORMATS.listenHost.name,
      default: '0.0.0.0',
      env: 'DASHBOARD_HOST',
      doc: 'Address the dashboard (HTTPS + WebSocket) listener binds.',
    },
    port: {
      format: FORMATS.port.name,
      default: 8443,
      env: 'DASHBOARD_PORT',
      doc: 'Port of the dashboard listener. 0 picks a free port.',
    },
    certFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'DASHBOARD_TLS_CERT_FILE',
      doc: 'PEM certificate for the dashboard listener; empty = reuse TLS_CERT_FILE. Set together with DASHBOARD_TLS_KEY_FILE.',
    },
    keyFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'DASHBOARD_TLS_KEY_FILE',
      doc: 'PEM private key of DASHBOARD_TLS_CERT_FILE; empty = reuse TLS_KEY_FILE.',
    },
    jwtSecret: {
      format: FORMATS.secret.name,
      default: null,
      nullable: true,
      env: 'JWT_SECRET',
      sensitive: true,
      doc: 'HMAC secret for dashboard JWTs, at least 32 bytes; required unless JWT_JWKS_URL is set.',
    },
    jwksUrl: {
      format: FORMATS.optionalUrl.name,
      default: '',
      env: 'JWT_JWKS_URL',
      doc: 'JWKS endpoint for dashboard JWTs signed by an identity provider (https; http only to loopback); needs JWT_ISSUER and JWT_AUDIENCE.',
    },
    jwtIssuer: {
      format: FORMATS.text.name,
      default: '',
      env: 'JWT_ISSUER',
      doc: 'Required `iss` claim of dashboard JWTs; required when JWT_JWKS_URL is set.',
    },
    jwtAudience: {
      format: FORMATS.text.name,
      default: '',
      env: 'JWT_AUDIENCE',
      doc: 'Required `aud` claim of dashboard JWTs; required when JWT_JWKS_URL is set.',
    },
    allowedOrigins: {
      format: FORMATS.originList.name,
      default: [],
      env: 'DASHBOARD_ALLOWED_ORIGINS',
      doc: 'Comma-separated browser origins allowed to open the dashboard WebSocket (e.g. https://dash.example.com), or * for any.',
    },
    maxBackpressureBytes: {
      format: FORMATS.integer.name,
      min: 1024,
      max: 1073741824,
      default: 4194304,
      env: 'DASHBOARD_MAX_BACKPRESSURE_BYTES',
      doc: 'Bytes buffered per dashboard client before it is considered too slow.',
    },
    teslaSignIn: {
      format: FORMATS.boolean.name,
      default: false,
      env: 'DASHBOARD_TESLA_SIGN_IN',
      doc: "Also accept Tesla-issued access tokens on the dashboard (verified against TESLA_AUTH_JWKS_URL, `vehicle_device_data` scope required); the VINs they may see are those Tesla's GET /api/1/vehicles (at TESLA_API_BASE_URL) returns for the token.",
    },
    teslaJwksUrl: {
      format: FORMATS.url.name,
      default: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/discovery/keys',
      env: 'TESLA_AUTH_JWKS_URL',
      doc: "JWKS of Tesla's token issuer, for DASHBOARD_TESLA_SIGN_IN (https; http only to loopback). Check it against Tesla's OpenID discovery document.",
    },
    teslaIssuer: {
      format: FORMATS.text.name,
      default: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/nts',
      env: 'TESLA_AUTH_ISSUER',
      doc: 'Required `iss` of Tesla access tokens (DASHBOARD_TESLA_SIGN_IN); tokens with this issuer are checked as Tesla tokens.',
    },
    teslaAudience: {
      format: FORMATS.text.name,
      default: 'https://fleet-api.prd.na.vn.cloud.tesla.com',
      env: 'TESLA_AUTH_AUDIENCE',
      doc: 'Required `aud` of Tesla access tokens (DASHBOARD_TESLA_SIGN_IN): the Fleet API base URL the token was issued for.',
    },
    maxTokenLifetimeSeconds: {
      format: FORMATS.integer.name,
      min: 60,
      max: 31622400,
      default: 2678400,
      env: 'DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS',
      doc: 'Longest dashboard token lifetime accepted, in seconds (default 31 days): a token whose `exp` lies further than this past now or past its `iat` is refused (`lifetime_too_long`), as is one issued in the future (`issued_in_future`).',
    },
    maxSocketsPerSubject: {
      format: FORMATS.integer.name,
      min: 1,
      max: 100000,
      default: 16,
      env: 'DASHBOARD_MAX_SOCKETS_PER_SUBJECT',
      doc: 'Dashboard sockets one token subject (`sub`; tokens without one share a bucket per VIN list) may hold open at once; one more is refused with `too_many_sockets` (429 at the upgrade, or close 4429 at the token check right after it).',
    },
    maxReplaysPerMinute: {
      format: FORMATS.integer.name,
      min: 1,
      max: 100000,
      default: 30,
      env: 'DASHBOARD_MAX_REPLAYS_PER_MINUTE',
      doc: 'History replays (`subscribe` with `since`) one dashboard socket may ask for per minute, bursts up to the same number; past it the request is answered `too_many_replays` and live records still flow.',
    },
  },
  metrics: {
    host: {
      format: FORMATS.listenHost.name,
      default: '127.0.0.1',
      env: 'METRICS_HOST',
      doc: 'Address the Prometheus /metrics listener binds (loopback by default: metrics are not public).',
    },
    port: {
      format: FORMATS.port.name,
      default: 9464,
      env: 'METRICS_PORT',
      doc: 'Port of the Prometheus /metrics listener. 0 picks a free port.',
    },
  },
  tesla: {
    accessToken: {
      format: FORMATS.secret.name,
      default: '',
      env: 'TESLA_ACCESS_TOKEN',
      sensitive: true,
      doc: 'Fleet API access token; required when TESLA_AUTO_CONFIGURE is true.',
    },
    vins: {
      format: FORMATS.vinList.name,
      default: [],
      env: 'TESLA_VIN',
      doc: 'Comma-separated VINs to configure; required when TESLA_AUTO_CONFIGURE is true.',
    },
    apiBaseUrl: {
      format: FORMATS.url.name,
      default: 'https://fleet-api.prd.na.vn.cloud.tesla.com',
      env: 'TESLA_API_BASE_URL',
      doc: 'Fleet API base URL for your region (https; http only to loopback).',
    },
    publicKeyFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'TESLA_PUBLIC_KEY_FILE',
      doc: "PEM P-256 public key served at /.well-known/appspecific/com.tesla.3p.public-key.pem; empty = that route answers 404.",
    },
    autoConfigure: {
      format: FORMATS.boolean.name,
      default: false,
      env: 'TESLA_AUTO_CONFIGURE',
      doc: 'Push the fleet telemetry config to TESLA_VIN through the Fleet API at start-up when the car has a different one, poll fleet_telemetry_errors, and re-push to a stale car that is not synced.',
    },
    partnerToken: {
      format: FORMATS.secret.name,
      default: '',
      env: 'TESLA_PARTNER_TOKEN',
      sensitive: true,
      doc: 'Partner-account token for GET /api/1/partner_accounts/fleet_telemetry_errors; empty = per-vehicle errors of TESLA_VIN with TESLA_ACCESS_TOKEN.',
    },
    proxyUrl: {
      format: FORMATS.optionalUrl.name,
      default: '',
      env: 'TESLA_PROXY_URL',
      doc: "Base URL of Tesla's vehicle-command proxy (e.g. https://localhost:4443), which signs configs; empty = the server signs them itself with TESLA_PRIVATE_KEY_FILE.",
    },
    proxyCaFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'TESLA_PROXY_CA_FILE',
      doc: "PEM CA (or the self-signed certificate) of the proxy's TLS certificate; empty = the system CAs.",
    },
    privateKeyFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'TESLA_PRIVATE_KEY_FILE',
      doc: 'PEM P-256 app private key (`fleet-telemetry keys generate`); signs configs (Tesla.SS256) when TESLA_PROXY_URL is empty. Keep it mode 0600.',
    },
    configPreset: {
      format: FORMATS.text.name,
      default: 'driving',
      env: 'TESLA_CONFIG_PRESET',
      doc: 'Fields pushed to cars: minimal, driving, charging or full (see docs/TESLA-SETUP.md).',
    },
    configFieldsFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'TESLA_CONFIG_FIELDS_FILE',
      doc: 'JSON file with the `fields` map ({"Soc": {"interval_seconds": 60}, ...}); replaces TESLA_CONFIG_PRESET when set.',
    },
    alertTypes: {
      format: FORMATS.text.name,
      default: 'service',
      env: 'TESLA_ALERT_TYPES',
      doc: 'Comma-separated alert_types of the pushed config (e.g. service); empty = no alerts.',
    },
    configExpiryDays: {
      format: FORMATS.integer.name,
      min: 0,
      max: 3650,
      default: 0,
      env: 'TESLA_CONFIG_EXPIRY_DAYS',
      doc: 'Days until a pushed config expires (its `exp`); 0 = no expiry. Auto-configure re-pushes a config within a quarter of its lifetime of expiry.',
    },
    requestTimeoutMs: {
      format: FORMATS.integer.name,
      min: 100,
      max: 600000,
      default: 15000,
      env: 'TESLA_API_TIMEOUT_MS',
      doc: 'Milliseconds one Fleet API request may take before it is abandoned (and retried).',
    },
    errorsPollIntervalSeconds: {
      format: FORMATS.integer.name,
      min: 0,
      max: 86400,
      default: 600,
      env: 'TESLA_ERRORS_POLL_INTERVAL_SECONDS',
      doc: 'Seconds between polls of fleet_telemetry_errors under auto-configure; 0 = no polling.',
    },
    repushMinIntervalSeconds: {
      format: FORMATS.integer.name,
      min: 1,
      max: 604800,
      default: 3600,
      env: 'TESLA_REPUSH_MIN_INTERVAL_SECONDS',
      doc: 'Least seconds between two watchdog config re-pushes to the same car (a stale, unsynced car is re-pushed at most this often).',
    },
  },
  signIn: {
    clientId: {
      format: FORMATS.text.name,
      default: '',
      env: 'TESLA_CLIENT_ID',
      doc: 'Client id of the application on developer.tesla.com; needed for Sign in with Tesla on the dashboard, `auth login`, TESLA_TOKEN_FILE refreshes and `partner register`.',
    },
    clientSecret: {
      format: FORMATS.secret.name,
      default: '',
      env: 'TESLA_CLIENT_SECRET',
      sensitive: true,
      doc: "Client secret of that application (the code exchange and the partner token's client-credentials grant).",
    },
    authorizeUrl: {
      format: FORMATS.url.name,
      default: 'https://auth.tesla.com/oauth2/v3/authorize',
      env: 'TESLA_AUTHORIZE_URL',
      doc: "Tesla's authorization endpoint, where a person signs in (https; http only to loopback).",
    },
    tokenUrl: {
      format: FORMATS.url.name,
      default: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token',
      env: 'TESLA_TOKEN_URL',
      doc: "Tesla's token endpoint: code exchange, refresh, partner token (https; http only to loopback).",
    },
    tokenFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'TESLA_TOKEN_FILE',
      doc: 'JSON file (mode 0600) with the Tesla refresh token written by `fleet-telemetry auth login`; the server and the CLI refresh the access token from it before it expires and keep the rotated refresh token. Used when TESLA_ACCESS_TOKEN is empty.',
    },
    redirectUri: {
      format: FORMATS.optionalUrl.name,
      default: '',
      env: 'DASHBOARD_REDIRECT_URI',
      doc: 'The dashboard callback URL registered with the Tesla application, e.g. https://dash.example.com:8443/auth/callback; set (with TESLA_CLIENT_ID, TESLA_CLIENT_SECRET and DASHBOARD_SESSION_SECRET) to offer Sign in with Tesla on the page.',
    },
    sessionSecret: {
      format: FORMATS.secret.name,
      default: '',
      env: 'DASHBOARD_SESSION_SECRET',
      sensitive: true,
      doc: 'At least 32 bytes; encrypts the sign-in cookie and the dashboard session store at rest. Changing it signs everyone out.',
    },
    sessionFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'DASHBOARD_SESSION_FILE',
      doc: 'Where Sign in with Tesla sessions are kept, encrypted (AES-256-GCM), so they survive a restart; empty = in memory only (in NATS mode: the KV bucket <NATS_STREAM>_sessions).',
    },
    sessionMaxAgeSeconds: {
      format: FORMATS.integer.name,
      min: 300,
      max: 31536000,
      default: 2592000,
      env: 'DASHBOARD_SESSION_MAX_AGE_SECONDS',
      doc: 'A dashboard session ends this long after sign-in at the latest (default 30 days).',
    },
    vehicleListRefreshSeconds: {
      format: FORMATS.integer.name,
      min: 10,
      max: 86400,
      default: 300,
      env: 'DASHBOARD_VEHICLE_LIST_REFRESH_SECONDS',
      doc: "How often a signed-in session's VIN list is fetched again from Tesla's GET /api/1/vehicles.",
    },
  },
  nats: {
    url: {
      format: FORMATS.natsUrls.name,
      default: '',
      env: 'NATS_URL',
      doc: 'Comma-separated NATS server URLs (nats://host:4222, tls://host:4222). Set to run several instances over NATS JetStream (durable records, shared state, cross-instance dashboards); empty = one process with the in-process bus. See docs/SCALE-OUT.md.',
    },
    credsFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'NATS_CREDS_FILE',
      doc: 'NATS credentials file (JWT + NKey seed) for decentralised NATS auth; empty = none.',
    },
    user: {
      format: FORMATS.text.name,
      default: '',
      env: 'NATS_USER',
      doc: 'NATS user name (with NATS_PASSWORD); empty = none.',
    },
    password: {
      format: FORMATS.secret.name,
      default: '',
      env: 'NATS_PASSWORD',
      sensitive: true,
      doc: 'Password of NATS_USER.',
    },
    token: {
      format: FORMATS.secret.name,
      default: '',
      env: 'NATS_TOKEN',
      sensitive: true,
      doc: 'NATS authentication token; empty = none.',
    },
    tlsCaFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'NATS_TLS_CA_FILE',
      doc: 'PEM CA file that verifies the NATS servers (turns TLS on); empty = system CAs when the URL says tls://.',
    },
    subjectPrefix: {
      format: FORMATS.natsSubjectPrefix.name,
      default: 'telemetry',
      env: 'NATS_SUBJECT_PREFIX',
      doc: 'Records are published on <prefix>.<VIN>.<topic>; one or more dot-separated tokens of letters, digits, _ and -.',
    },
    stream: {
      format: FORMATS.natsName.name,
      default: 'TELEMETRY',
      env: 'NATS_STREAM',
      doc: 'JetStream stream holding every record (created or updated at start); the KV buckets are <stream>_state and <stream>_connectivity.',
    },
    recordEncoding: {
      format: FORMATS.natsRecordEncoding.name,
      default: 'protobuf',
      env: 'NATS_RECORD_ENCODING',
      doc: "Body of each stream message: protobuf (the car's bytes) or json (canonical JSON of the normalised record).",
    },
    maxAgeSeconds: {
      format: FORMATS.integer.name,
      min: 0,
      max: 315360000,
      default: 604800,
      env: 'NATS_STREAM_MAX_AGE_SECONDS',
      doc: 'Seconds records are kept in the stream; 0 = no age limit.',
    },
    maxBytes: {
      format: FORMATS.integer.name,
      min: 0,
      default: 0,
      env: 'NATS_STREAM_MAX_BYTES',
      doc: 'Most bytes the stream keeps (oldest records go first); 0 = no size limit.',
    },
    duplicateWindowSeconds: {
      format: FORMATS.integer.name,
      min: 1,
      max: 86400,
      default: 600,
      env: 'NATS_DUPLICATE_WINDOW_SECONDS',
      doc: 'Seconds a record id (VIN, txid, topic) is remembered so a resent frame is stored once; cover how long a car may take to resend.',
    },
    replicas: {
      format: FORMATS.integer.name,
      min: 1,
      max: 5,
      default: 1,
      env: 'NATS_STREAM_REPLICAS',
      doc: 'Replicas of the stream and KV buckets (needs a NATS cluster of at least that many servers).',
    },
    maxPendingPublishes: {
      format: FORMATS.integer.name,
      min: 1,
      max: 1000000,
      default: 10000,
      env: 'NATS_MAX_PENDING_PUBLISHES',
      doc: 'Records waiting for a JetStream confirmation per instance; past it records are refused at once (not acked, the car resends).',
    },
    publishTimeoutMs: {
      format: FORMATS.integer.name,
      min: 100,
      max: 600000,
      default: 5000,
      env: 'NATS_PUBLISH_TIMEOUT_MS',
      doc: 'Milliseconds to wait for JetStream to confirm a record before giving up on it (the car is not acked).',
    },
    stateFlushMs: {
      format: FORMATS.integer.name,
      min: 50,
      max: 60000,
      default: 1000,
      env: 'NATS_STATE_FLUSH_MS',
      doc: "Milliseconds between writes of a car's last-known state to the KV bucket (at most one write per car per interval).",
    },
    instanceId: {
      format: FORMATS.natsName.name,
      default: '',
      env: 'NATS_INSTANCE_ID',
      doc: 'Name of this instance among those sharing NATS (letters, digits, _ and -); empty = host name, pid and a random suffix.',
    },
  },
  history: {
    enabled: {
      format: FORMATS.boolean.name,
      default: true,
      env: 'HISTORY_ENABLED',
      doc: "Keep each car's recent history (battery, range, speed, power, temperatures, position, gear, charging) and derive trips and charging sessions; dashboards read it with the `history` request.",
    },
    windowHours: {
      format: FORMATS.integer.name,
      min: 1,
      max: 168,
      default: 24,
      env: 'HISTORY_WINDOW_HOURS',
      doc: 'Hours of recent history kept per car (in NATS mode: read back from the stream, so keep NATS_STREAM_MAX_AGE_SECONDS at least this long).',
    },
    resolutionSeconds: {
      format: FORMATS.integer.name,
      min: 1,
      max: 3600,
      default: 5,
      env: 'HISTORY_RESOLUTION_SECONDS',
      doc: 'Finest spacing of history rows: records closer together fold into one row (the newest value wins).',
    },
    maxPointsPerCar: {
      format: FORMATS.integer.name,
      min: 64,
      max: 100000,
      default: 1024,
      env: 'HISTORY_MAX_POINTS_PER_CAR',
      doc: 'Most history rows per car (64 bytes each); when full, the older half is thinned, so old history gets coarser rather than the memory growing.',
    },
    mapTileUrl: {
      format: FORMATS.text.name,
      default: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
      env: 'MAP_TILE_URL',
      doc: 'Map tiles for the dashboard page ({z}/{x}/{y} template, https); the browser loads them directly, and falls back to a plain grid when they cannot load. Empty = grid only.',
    },
    mapAttribution: {
      format: FORMATS.text.name,
      default: '© OpenStreetMap contributors',
      env: 'MAP_ATTRIBUTION',
      doc: 'Attribution shown on the map, as the tile provider requires.',
    },
  },
  postgres: {
    url: {
      format: FORMATS.secret.name,
      default: '',
      env: 'DATABASE_URL',
      sensitive: true,
      doc: 'PostgreSQL connection URL (postgres://user:password@host:5432/db); set to store every record\'s values, trips and charges for the long term. Empty = no database.',
    },
    batchRows: {
      format: FORMATS.integer.name,
      min: 1,
      max: 100000,
      default: 1000,
      env: 'POSTGRES_BATCH_ROWS',
      doc: 'Most values written in one INSERT (encoding a batch runs on the main thread: keep it small enough not to hold acks).',
    },
    flushMs: {
      format: FORMATS.integer.name,
      min: 10,
      max: 60000,
      default: 1000,
      env: 'POSTGRES_FLUSH_MS',
      doc: 'Longest a value waits before it is written (a full batch goes at once).',
    },
    queueMaxRows: {
      format: FORMATS.integer.name,
      min: 1000,
      max: 100000000,
      default: 1000000,
      env: 'POSTGRES_QUEUE_MAX_ROWS',
      doc: 'Values held while the database is slow or down (about 150 bytes each); past it the oldest are dropped and counted in fleet_telemetry_postgres_dropped_rows_total.',
    },
  },
  mqtt: {
    url: {
      format: FORMATS.mqttUrl.name,
      default: '',
      env: 'MQTT_URL',
      doc: 'MQTT broker URL (mqtt://host:1883, mqtts://host:8883); set to publish every car to MQTT with Home Assistant discovery (docs/HOME-ASSISTANT.md); empty = no MQTT output.',
    },
    username: {
      format: FORMATS.text.name,
      default: '',
      env: 'MQTT_USERNAME',
      doc: 'MQTT user name; empty = anonymous.',
    },
    password: {
      format: FORMATS.secret.name,
      default: '',
      env: 'MQTT_PASSWORD',
      sensitive: true,
      doc: 'Password of MQTT_USERNAME.',
    },
    passwordFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'MQTT_PASSWORD_FILE',
      doc: 'File holding the MQTT password (trailing newline ignored); used instead of MQTT_PASSWORD.',
    },
    caFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'MQTT_CA_FILE',
      doc: 'PEM CA file that verifies the broker for mqtts:// (empty = system CAs).',
    },
    certFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'MQTT_CERT_FILE',
      doc: 'PEM client certificate for brokers that want one (with MQTT_KEY_FILE).',
    },
    keyFile: {
      format: FORMATS.optionalFile.name,
      default: '',
      env: 'MQTT_KEY_FILE',
      doc: 'PEM private key of MQTT_CERT_FILE.',
    },
    clientId: {
      format: FORMATS.text.name,
      default: '',
      env: 'MQTT_CLIENT_ID',
      doc: 'MQTT client id; empty = fleet-telemetry- plus a random suffix (instances must not share one).',
    },
    protocolVersion: {
      format: FORMATS.integer.name,
      min: 4,
      max: 5,
      default: 4,
      env: 'MQTT_PROTOCOL_VERSION',
      doc: 'MQTT protocol: 4 (3.1.1) or 5.',
    },
    topicPrefix: {
      format: FORMATS.mqttTopicPrefix.name,
      default: 'tesla',
      env: 'MQTT_TOPIC_PREFIX',
      doc: 'First topic level(s) of everything the server publishes: <prefix>/<VIN>/...',
    },
    qos: {
      format: FORMATS.integer.name,
      min: 0,
      max: 2,
      default: 1,
      env: 'MQTT_QOS',
      doc: 'QoS of every publish (0, 1 or 2).',
    },
    heartbeatSeconds: {
      format: FORMATS.integer.name,
      min: 0,
      max: 86400,
      default: 0,
      env: 'MQTT_HEARTBEAT_SECONDS',
      doc: 'Republish a field whose value did not change once this many seconds passed since it was last published; 0 = only on change.',
    },
    rawRecords: {
      format: FORMATS.boolean.name,
      default: false,
      env: 'MQTT_RAW_RECORDS',
      doc: 'Also publish each whole record as canonical JSON on <prefix>/<VIN>/record/<topic> (not retained).',
    },
    maxQueuedEvents: {
      format: FORMATS.integer.name,
      min: 1,
      max: 1000000,
      default: 10000,
      env: 'MQTT_MAX_QUEUED_EVENTS',
      doc: 'Most non-retained messages (alerts, errors, raw records) waiting for the broker; past it the oldest are dropped and counted.',
    },
    maxInFlight: {
      format: FORMATS.integer.name,
      min: 1,
      max: 65535,
      default: 256,
      env: 'MQTT_MAX_IN_FLIGHT',
      doc: 'Most publishes awaiting the broker at once.',
    },
    maxMessagesPerSecond: {
      format: FORMATS.integer.name,
      min: 0,
      max: 1000000,
      default: 1000,
      env: 'MQTT_MAX_MESSAGES_PER_SECOND',
      doc: 'Most MQTT publishes per second (0 = no cap). Bounds the CPU the MQTT output takes beside the cars; past it values are published less often (the latest one wins), never queued without bound.',
    },
    discovery: {
      format: FORMATS.boolean.name,
      default: true,
      env: 'MQTT_HA_DISCOVERY',
      doc: 'Publish Home Assistant MQTT discovery messages so every car appears as a device.',
    },
    discoveryPrefix: {
      format: FORMATS.mqttTopicPrefix.name,
      default: 'homeassistant',
      env: 'MQTT_HA_DISCOVERY_PREFIX',
      doc: "Home Assistant's discovery prefix; its birth message is expected on <prefix>/status.",
    },
  },
  selfCheck: {
    format: FORMATS.boolean.name,
    default: true,
    env: 'SELF_CHECK',
    doc: 'Check at start-up that the server certificate is what a car will accept (covers DOMAIN, verifies with TLS_CA_CHAIN_FILE); when false those findings are warnings.',
  },
  shutdownGraceMs: {
    format: FORMATS.integer.name,
    min: 0,
    max: 600000,
    default: 10000,
    env: 'SHUTDOWN_GRACE_MS',
    doc: 'Milliseconds given to in-flight work and open sockets on shutdown before the process exits.',
  },
  shutdownSpreadMs: {
    format: FORMATS.integer.name,
    min: 0,
    max: 600000,
    default: 5000,
    env: 'SHUTDOWN_SPREAD_MS',
    doc: "Milliseconds over which a stopping server closes its cars with 'going away', one after another, so a large fleet does not reconnect to the next process at once; at most SHUTDOWN_GRACE_MS is used. 0 closes them all together.",
  },
};

/** One leaf of the schema, flattened: what validation, redaction and the docs work from. */
export interface Setting {
  env: string;
  path: string;
  format: FormatKey;
  default: unknown;
  doc: string;
  sensitive: boolean;
  /** null is allowed and means "not set" (the setting has no default). */
  nullable: boolean;
  min?: number;
  max?: number;
}

const FORMAT_KEY_BY_NAME = new Map<string, FormatKey>(
  (Object.keys(FORMATS) as FormatKey[]).map((key) => [FORMATS[key].name, key]),
);

function flatten(node: Record<string, unknown>, prefix: string, out: Setting[]): Setting[] {
  for (const [key, child] of Object.entries(node)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const item = child as Record<string, unknown>;
    if (!('default' in item)) {
      flatten(item, path, out);
      continue;
    }
    const format = FORMAT_KEY_BY_NAME.get(String(item.format));
    if (format === undefined || typeof item.env !== 'string' || typeof item.doc !== 'string') {
      throw new Error(`config schema: ${path} lacks a known format, env or doc`);
    }
    out.push({
      env: item.env,
      path,
      format,
      default: item.default,
      doc: item.doc,
      sensitive: item.sensitive === true,
      nullable: item.nullable === true,
      ...(typeof item.min === 'number' ? { min: item.min } : {}),
      ...(typeof item.max === 'number' ? { max: item.max } : {}),
    });
  }
  return out;
}

export const SETTINGS: readonly Setting[] = Object.freeze(flatten(schema as Record<string, unknown>, '', []));

export const SETTING_BY_PATH: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((s) => [s.path, s]));
export const SETTING_BY_ENV: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((s) => [s.env, s]));
