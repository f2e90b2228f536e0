import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  describeSettings,
  loadConfig,
  redactedConfig,
  type AppConfig,
  defaultDecodeWorkers,
} from '../../src/config/index.js';
import { parseDotenv } from '../../src/config/dotenv.js';

const OPENSSL = '/usr/bin/openssl';
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONFIG_MODULE = fileURLToPath(new URL('../../src/config/index.js', import.meta.url));

const JWT_SECRET = 'jwt-secret-SENTINEL-0123456789abcdefghij';
const KEY_PASSPHRASE = 'passphrase-SENTINEL-42';
const DAY_MS = 24 * 3600 * 1000;
/** NATS settings stay at their defaults in these tests (NATS mode is covered by test/unit/nats-*.test.ts). */
const SIGN_IN_DEFAULTS: AppConfig['signIn'] = {
  clientId: '',
  clientSecret: '',
  authorizeUrl: 'https://auth.tesla.com/oauth2/v3/authorize',
  tokenUrl: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token',
  tokenFile: '',
  redirectUri: '',
  sessionSecret: '',
  sessionFile: '',
  sessionMaxAgeSeconds: 2592000,
  vehicleListRefreshSeconds: 300,
};
const HISTORY_DEFAULTS: AppConfig['history'] = {
  enabled: true,
  windowHours: 24,
  resolutionSeconds: 5,
  maxPointsPerCar: 1024,
  mapTileUrl: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
  mapAttribution: '© OpenStreetMap contributors',
};
const POSTGRES_DEFAULTS: AppConfig['postgres'] = { url: '', batchRows: 1000, flushMs: 1000, queueMaxRows: 1000000 };
const MQTT_DEFAULTS: AppConfig['mqtt'] = {
  url: '',
  username: '',
  password: '',
  passwordFile: '',
  caFile: '',
  certFile: '',
  keyFile: '',
  clientId: '',
  protocolVersion: 4,
  topicPrefix: 'tesla',
  qos: 1,
  heartbeatSeconds: 0,
  rawRecords: false,
  maxQueuedEvents: 10000,
  maxInFlight: 256,
  maxMessagesPerSecond: 1000,
  discovery: true,
  discoveryPrefix: 'homeassistant',
};

const NATS_DEFAULTS: AppConfig['nats'] = {
  url: '', credsFile: '', user: '', password: '', token: '', tlsCaFile: '', subjectPrefix: 'telemetry', stream: 'TELEMETRY',
  recordEncoding: 'protobuf', maxAgeSeconds: 604800, maxBytes: 0, duplicateWindowSeconds: 600, replicas: 1,
  maxPendingPublishes: 10000, publishTimeoutMs: 5000, stateFlushMs: 1000, instanceId: '',
};

/** Test PKI made with the openssl CLI, so these tests do not lean on the project's own PKI code. */
let pki: string;
const cleanup: string[] = [];

function openssl(args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: pki, stdio: ['ignore', 'ignore', 'pipe'] });
}

function at(name: string): string {
  return join(pki, name);
}

function newKey(name: string, curve = 'P-256'): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', name]);
}

function selfSigned(key: string, cert: string, subject: string, days: number, ...ext: string[]): void {
  openssl([
    'req', '-x509', '-key', key, '-subj', subject, '-days', String(days), '-out', cert,
    ...ext.flatMap((e) => ['-addext', e]),
  ]);
}

/** A leaf for `dns` signed by ca.pem, valid 30 days (outside the 14-day expiry warning). */
function issuedByCa(name: string, dns: string, caName = 'ca'): void {
  newKey(`${name}.key`);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${dns}`, '-out', `${name}.csr`]);
  writeFileSync(at(`${name}.ext`), `subjectAltName=DNS:${dns}\nbasicConstraints=CA:FALSE\n`);
  openssl([
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial',
    '-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.pem`,
  ]);
}

describe('config stage', () => {
  before(function () {
    this.timeout(60000);
    pki = mkdtempSync(join(tmpdir(), 'config-test-pki-'));
    cleanup.push(pki);
    newKey('ca.key');
    selfSigned('ca.key', 'ca.pem', '/CN=Config Test Root CA', 60, 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign');
    issuedByCa('server', 'localhost');
    issuedByCa('dashboard', 'dash.localhost');
    newKey('other-ca.key');
    selfSigned('other-ca.key', 'other-ca.pem', '/CN=Unrelated CA', 60, 'basicConstraints=critical,CA:TRUE');
    newKey('other.key');
    newKey('self.key');
    selfSigned('self.key', 'self.pem', '/CN=localhost', 30, 'subjectAltName=DNS:localhost');
    // -days -1 puts notAfter a day before now: a certificate that really is expired.
    openssl(['x509', '-in', 'self.pem', '-signkey', 'self.key', '-days', '-1', '-out', 'expired.pem']);
    openssl(['pkey', '-in', 'server.key', '-aes256', '-passout', `pass:${KEY_PASSPHRASE}`, '-out', 'server-encrypted.key']);
    openssl(['pkey', '-in', 'server.key', '-pubout', '-out', 'app-public.pem']);
    newKey('p384.key', 'P-384');
    openssl(['pkey', '-in', 'p384.key', '-pubout', '-out', 'p384-public.pem']);
    newKey('tesla-named-ca.key');
    selfSigned('tesla-named-ca.key', 'tesla-named-ca.pem', '/O=Tesla Motors/CN=Tesla Test Issuing CA', 60, 'basicConstraints=critical,CA:TRUE');
    writeFileSync(at('ca-and-expired.pem'), readFileSync(at('ca.pem'), 'utf8') + readFileSync(at('expired.pem'), 'utf8'));
    writeFileSync(at('garbage.pem'), 'this is not a certificate\n');
    writeFileSync(at('broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n');
  });

  after(() => {
    for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
  });

  /** A working directory holding the default certificate paths, as an operator's checkout would. */
  function workdir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'config-test-cwd-'));
    cleanup.push(dir);
    mkdirSync(join(dir, 'certs'));
    copyFileSync(at('server.pem'), join(dir, 'certs/server.pem'));
    copyFileSync(at('server.key'), join(dir, 'certs/server.key'));
    copyFileSync(at('ca.pem'), join(dir, 'certs/ca-chain.pem'));
    copyFileSync(at('ca.pem'), join(dir, 'certs/vehicle-ca.pem'));
    return dir;
  }

  function baseEnv(): NodeJS.ProcessEnv {
    return { NODE_ENV: 'test', JWT_SECRET };
  }

  interface Loaded {
    config: AppConfig;
    warnings: string[];
  }

  function load(dir: string, env: NodeJS.ProcessEnv, now?: Date): Loaded {
    const warnings: string[] = [];
    const config = loadConfig({ cwd: dir, env, now, onWarning: (line) => warnings.push(line) });
    return { config, warnings };
  }

  function problemsOf(dir: string, env: NodeJS.ProcessEnv, now?: Date): { problems: string[]; message: string; warnings: string[] } {
    const warnings: string[] = [];
    try {
      loadConfig({ cwd: dir, env, now, onWarning: (line) => warnings.push(line) });
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      const configError = error as ConfigError;
      expect(configError.message).to.equal(configError.problems.join('\n'));
      return { problems: configError.problems, message: configError.message, warnings };
    }
    expect.fail('loadConfig accepted a configuration it should have refused');
  }

  function expectedDefaults(dir: string): AppConfig {
    return {
      env: 'test',
      logLevel: 'info',
      domain: 'localhost',
      vehicle: { host: '0.0.0.0', port: 443, maxFrameBytes: 1000000, idleTimeoutSeconds: 120, maxBackpressureBytes: 1048576, maxFramesPerSecond: 0, maxSocketsPerVin: 3, maxSockets: 200000, firstFrameTimeoutSeconds: 300 },
      tls: {
        certFile: join(dir, 'certs/server.pem'),
        keyFile: join(dir, 'certs/server.key'),
        keyPassphrase: '',
        caChainFile: join(dir, 'certs/ca-chain.pem'),
        watchFiles: true,
      },
      vehicleCa: { file: join(dir, 'certs/vehicle-ca.pem'), extraFile: '' },
      decode: { workers: defaultDecodeWorkers(), batchMaxFrames: 256, taskTimeoutMs: 5000, inlineMaxFrames: 32, inlineMaxBytes: 16384 },
      watchdog: { staleAfterSeconds: 300, sweepIntervalSeconds: 5, forgetAfterSeconds: 2592000 },
      dashboard: {
        host: '0.0.0.0',
        port: 8443,
        certFile: '',
        keyFile: '',
        jwtSecret: JWT_SECRET,
        jwksUrl: '',
        jwtIssuer: '',
        jwtAudience: '',
        allowedOrigins: [],
        maxBackpressureBytes: 4194304,
        teslaSignIn: false,
        teslaJwksUrl: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/discovery/keys',
        teslaIssuer: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/nts',
        teslaAudience: 'https://fleet-api.prd.na.vn.cloud.tesla.com',
        maxTokenLifetimeSeconds: 2678400, maxSocketsPerSubject: 16, maxReplaysPerMinute: 30,
      },
      metrics: { host: '127.0.0.1', port: 9464 },
      tesla: {
        accessToken: '',
        vins: [],
        apiBaseUrl: 'https://fleet-api.prd.na.vn.cloud.tesla.com',
        publicKeyFile: '',
        autoConfigure: false,
        partnerToken: '',
        proxyUrl: '',
        proxyCaFile: '',
        privateKeyFile: '',
        configPreset: 'driving',
        configFieldsFile: '',
        alertTypes: 'service',
        configExpiryDays: 0,
        requestTimeoutMs: 15000,
        errorsPollIntervalSeconds: 600,
        repushMinIntervalSeconds: 3600,
      },
      signIn: SIGN_IN_DEFAULTS,
      nats: NATS_DEFAULTS,
      history: HISTORY_DEFAULTS,
      postgres: POSTGRES_DEFAULTS,
      mqtt: MQTT_DEFAULTS,
      selfCheck: true,
      shutdownGraceMs: 10000,
      shutdownSpreadMs: 5000,
    };
  }

  describe('config: loading a valid configuration', () => {
    it('loads the defaults plus JWT_SECRET into the expected AppConfig, file paths resolved against cwd', () => {
      const dir = workdir();
      const { config, warnings } = load(dir, baseEnv());
      expect(config).to.deep.equal(expectedDefaults(dir));
      expect(warnings).to.deep.equal([]);
    });

    it('maps every environment variable onto its AppConfig field', () => {
      const dir = workdir();
      const env: NodeJS.ProcessEnv = {
        NODE_ENV: 'development',
        LOG_LEVEL: 'debug',
        DOMAIN: 'localhost',
        HOST: '127.0.0.1',
        PORT: '8444',
        MAX_FRAME_BYTES: '2000000',
        VEHICLE_IDLE_TIMEOUT_SECONDS: '0',
        VEHICLE_MAX_BACKPRESSURE_BYTES: '65536',
        TLS_CERT_FILE: at('server.pem'),
        TLS_KEY_FILE: at('server-encrypted.key'),
        TLS_KEY_PASSPHRASE: KEY_PASSPHRASE,
        TLS_CA_CHAIN_FILE: at('ca.pem'),
        VEHICLE_CA_FILE: at('ca.pem'),
        VEHICLE_EXTRA_CA_FILE: at('other-ca.pem'),
        DECODE_WORKERS: '4',
        DECODE_BATCH_MAX_FRAMES: '64',
        DECODE_TASK_TIMEOUT_MS: '2500',
        DECODE_INLINE_MAX_FRAMES: '2',
        DECODE_INLINE_MAX_BYTES: '32768',
        WATCHDOG_STALE_AFTER_SECONDS: '60',
        WATCHDOG_SWEEP_INTERVAL_SECONDS: '10',
        DASHBOARD_HOST: '::1',
        DASHBOARD_PORT: '9443',
        DASHBOARD_TLS_CERT_FILE: at('dashboard.pem'),
        DASHBOARD_TLS_KEY_FILE: at('dashboard.key'),
        JWT_SECRET: '',
        JWT_JWKS_URL: 'http://127.0.0.1:9000/jwks.json',
        JWT_ISSUER: 'https://idp.example.com/',
        JWT_AUDIENCE: 'fleet-dashboard',
        DASHBOARD_ALLOWED_ORIGINS: 'https://dash.example.com/, http://localhost:5173',
        DASHBOARD_MAX_BACKPRESSURE_BYTES: '131072',
        METRICS_HOST: '0.0.0.0',
        METRICS_PORT: '0',
        TESLA_ACCESS_TOKEN: 'token-SENTINEL',
        TESLA_VIN: '5yj3e1ea7kf000001, 5YJ3E1EA7KF000002,5YJ3E1EA7KF000001',
        TESLA_API_BASE_URL: 'https://fleet-api.prd.eu.vn.cloud.tesla.com',
        TESLA_PUBLIC_KEY_FILE: at('app-public.pem'),
        TESLA_AUTO_CONFIGURE: 'yes',
        SELF_CHECK: 'off',
        SHUTDOWN_GRACE_MS: '0',
      };
      const { config } = load(dir, env);
      expect(config).to.deep.equal({
        env: 'development',
        logLevel: 'debug',
        domain: 'localhost',
        vehicle: { host: '127.0.0.1', port: 8444, maxFrameBytes: 2000000, idleTimeoutSeconds: 0, maxBackpressureBytes: 65536, maxFramesPerSecond: 0, maxSocketsPerVin: 3, maxSockets: 200000, firstFrameTimeoutSeconds: 300 },
        tls: { certFile: at('server.pem'), keyFile: at('server-encrypted.key'), keyPassphrase: KEY_PASSPHRASE, caChainFile: at('ca.pem'), watchFiles: true },
        vehicleCa: { file: at('ca.pem'), extraFile: at('other-ca.pem') },
        decode: { workers: 4, batchMaxFrames: 64, taskTimeoutMs: 2500, inlineMaxFrames: 2, inlineMaxBytes: 32768 },
        watchdog: { staleAfterSeconds: 60, sweepIntervalSeconds: 10, forgetAfterSeconds: 2592000 },
        dashboard: {
          host: '::1',
          port: 9443,
          certFile: at('dashboard.pem'),
          keyFile: at('dashboard.key'),
          jwtSecret: '',
          jwksUrl: 'http://127.0.0.1:9000/jwks.json',
          jwtIssuer: 'https://idp.example.com/',
          jwtAudience: 'fleet-dashboard',
          allowedOrigins: ['https://dash.example.com', 'http://localhost:5173'],
          maxBackpressureBytes: 131072,
          teslaSignIn: false,
          teslaJwksUrl: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/discovery/keys',
          teslaIssuer: 'https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/nts',
          teslaAudience: 'https://fleet-api.prd.na.vn.cloud.tesla.com',
          maxTokenLifetimeSeconds: 2678400, maxSocketsPerSubject: 16, maxReplaysPerMinute: 30,
        },
        metrics: { host: '0.0.0.0', port: 0 },
        tesla: {
          accessToken: 'token-SENTINEL',
          vins: ['5YJ3E1EA7KF000001', '5YJ3E1EA7KF000002'],
          apiBaseUrl: 'https://fleet-api.prd.eu.vn.cloud.tesla.com',
          publicKeyFile: at('app-public.pem'),
          autoConfigure: true,
          partnerToken: '',
          proxyUrl: '',
          proxyCaFile: '',
          privateKeyFile: '',
          configPreset: 'driving',
          configFieldsFile: '',
          alertTypes: 'service',
          configExpiryDays: 0,
          requestTimeoutMs: 15000,
          errorsPollIntervalSeconds: 600,
          repushMinIntervalSeconds: 3600,
        },
        signIn: SIGN_IN_DEFAULTS,
        nats: NATS_DEFAULTS,
        history: HISTORY_DEFAULTS,
        postgres: POSTGRES_DEFAULTS,
        mqtt: MQTT_DEFAULTS,
        selfCheck: false,
        shutdownGraceMs: 0,
        shutdownSpreadMs: 5000,
      } satisfies AppConfig);
    });

    it('never reads process.env when an environment is given', () => {
      const dir = workdir();
      const saved = process.env.PORT;
      process.env.PORT = 'not-a-port';
      try {
        expect(load(dir, baseEnv()).config.vehicle.port).to.equal(443);
      } finally {
        if (saved === undefined) delete process.env.PORT;
        else process.env.PORT = saved;
      }
    });

    it('accepts a self-signed certificate that is its own chain', () => {
      const dir = workdir();
      const env = { ...baseEnv(), TLS_CERT_FILE: at('self.pem'), TLS_KEY_FILE: at('self.key'), TLS_CA_CHAIN_FILE: at('self.pem') };
      expect(load(dir, env).config.tls.certFile).to.equal(at('self.pem'));
    });

    it('with SELF_CHECK=false a certificate not covering DOMAIN is a warning, not an error', () => {
      const dir = workdir();
      const { config, warnings } = load(dir, { ...baseEnv(), DOMAIN: 'telemetry.example.com', SELF_CHECK: 'false' });
      expect(config.domain).to.equal('telemetry.example.com');
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/^config: warning: TLS_CERT_FILE: certificate does not cover DOMAIN "telemetry\.example\.com" \(it names DNS:localhost\)$/);
    });

    it('warns when the certificate expires within two weeks', () => {
      const dir = workdir();
      const { warnings } = load(dir, baseEnv(), new Date(Date.now() + 25 * DAY_MS));
      expect(warnings.some((w) => /^config: warning: TLS_CERT_FILE: certificate expires in [45] days/.test(w))).to.equal(true, warnings.join('\n'));
    });

    it('in production, warns when VEHICLE_CA_FILE holds no Tesla CA', () => {
      const dir = workdir();
      const { warnings } = load(dir, { JWT_SECRET });
      expect(warnings).to.deep.equal([
        'config: warning: VEHICLE_CA_FILE: no Tesla CA in certs/vehicle-ca.pem: real cars will be refused (NODE_ENV is production)',
      ]);
      copyFileSync(at('tesla-named-ca.pem'), join(dir, 'certs/vehicle-ca.pem'));
      expect(load(dir, { JWT_SECRET }).warnings).to.deep.equal([]);
    });

    it('warns about an expired CA in TLS_CA_CHAIN_FILE but not in the vehicle CA bundles', () => {
      const dir = workdir();
      const env = {
        ...baseEnv(),
        TLS_CA_CHAIN_FILE: at('ca-and-expired.pem'),
        VEHICLE_CA_FILE: at('expired.pem'),
        VEHICLE_EXTRA_CA_FILE: at('expired.pem'),
      };
      const { warnings } = load(dir, env);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/^config: warning: TLS_CA_CHAIN_FILE: CA certificate "CN=localhost" in .*ca-and-expired\.pem has expired$/);
    });

    it('warns that auto-configure needs a public domain', () => {
      const dir = workdir();
      const env = { ...baseEnv(), TESLA_AUTO_CONFIGURE: 'true', TESLA_ACCESS_TOKEN: 'tok-123456', TESLA_VIN: '5YJ3E1EA7KF000001' };
      const { warnings } = load(dir, env);
      expect(warnings).to.deep.equal(['config: warning: DOMAIN: cars can only be configured with the public domain registered with Tesla, got "localhost"']);
    });
  });

  interface FailureCase {
    name: string;
    env?: NodeJS.ProcessEnv;
    unset?: string[];
    files?: Record<string, string>;
    now?: () => Date;
    expect: RegExp[];
  }

  const failures: FailureCase[] = [
    { name: 'PORT=abc', env: { PORT: 'abc' }, expect: [/^config: PORT: must be a port number \(0-65535\), got "abc"$/] },
    { name: 'PORT=70000', env: { PORT: '70000' }, expect: [/^config: PORT: must be a port number \(0-65535\), got 70000$/] },
    { name: 'PORT=443abc (no lenient parseInt)', env: { PORT: '443abc' }, expect: [/^config: PORT: must be a port number \(0-65535\), got "443abc"$/] },
    { name: 'METRICS_PORT=-1', env: { METRICS_PORT: '-1' }, expect: [/^config: METRICS_PORT: must be a port number \(0-65535\), got -1$/] },
    {
      name: 'TLS_CERT_FILE names a missing file',
      env: { TLS_CERT_FILE: 'certs/missing.pem' },
      expect: [/^config: TLS_CERT_FILE: file not found: certs\/missing\.pem$/],
    },
    {
      name: 'TLS_CERT_FILE is a directory',
      env: { TLS_CERT_FILE: 'certs' },
      expect: [/^config: TLS_CERT_FILE: is a directory, not a file: certs$/],
    },
    {
      name: 'TLS_CERT_FILE is not a certificate',
      files: { 'certs/server.pem': 'garbage.pem' },
      expect: [/^config: TLS_CERT_FILE: no PEM certificate found in certs\/server\.pem$/],
    },
    {
      name: 'TLS_CERT_FILE holds a corrupt PEM block',
      files: { 'certs/server.pem': 'broken.pem' },
      expect: [/^config: TLS_CERT_FILE: certificate #1 in certs\/server\.pem cannot be parsed$/],
    },
    {
      name: 'TLS_CERT_FILE holds a key',
      files: { 'certs/server.pem': 'server.key' },
      expect: [/^config: TLS_CERT_FILE: no PEM certificate found in certs\/server\.pem \(it holds a private key\)$/],
    },
    {
      name: 'TLS_KEY_FILE does not match the certificate',
      files: { 'certs/server.key': 'other.key' },
      expect: [/^config: TLS_KEY_FILE: private key in certs\/server\.key does not match the certificate in TLS_CERT_FILE \(certs\/server\.pem\)$/],
    },
    {
      name: 'TLS_KEY_FILE holds a certificate',
      files: { 'certs/server.key': 'server.pem' },
      expect: [/^config: TLS_KEY_FILE: no PEM private key found in certs\/server\.key \(it holds a certificate\)$/],
    },
    {
      name: 'TLS_KEY_FILE is encrypted and TLS_KEY_PASSPHRASE is unset',
      files: { 'certs/server.key': 'server-encrypted.key' },
      expect: [/^config: TLS_KEY_FILE: private key in certs\/server\.key is encrypted: set TLS_KEY_PASSPHRASE$/],
    },
    {
      name: 'TLS_KEY_PASSPHRASE is wrong',
      files: { 'certs/server.key': 'server-encrypted.key' },
      env: { TLS_KEY_PASSPHRASE: 'wrong-passphrase-SENTINEL' },
      expect: [/^config: TLS_KEY_FILE: private key in certs\/server\.key cannot be decrypted with TLS_KEY_PASSPHRASE \(wrong passphrase\?\)$/],
    },
    {
      name: 'the certificate has expired (made expired by openssl)',
      files: { 'certs/server.pem': 'expired.pem', 'certs/server.key': 'self.key', 'certs/ca-chain.pem': 'expired.pem' },
      expect: [/^config: TLS_CERT_FILE: certificate expired (2[345] hours|\d+ minutes) ago \(notAfter \d{4}-\d\d-\d\dT/],
    },
    {
      name: 'the certificate has expired (clock moved past notAfter)',
      now: () => new Date(Date.now() + 40 * DAY_MS),
      expect: [/^config: TLS_CERT_FILE: certificate expired 10 days ago \(notAfter /],
    },
    {
      name: 'the certificate is not valid yet',
      now: () => new Date(Date.now() - 3 * DAY_MS),
      expect: [/^config: TLS_CERT_FILE: certificate is not valid yet: valid from \S+ \(in 3 days\); check the clock$/],
    },
    {
      name: 'the certificate does not cover DOMAIN (SELF_CHECK on)',
      env: { DOMAIN: 'telemetry.example.com' },
      expect: [/^config: TLS_CERT_FILE: certificate does not cover DOMAIN "telemetry\.example\.com" \(it names DNS:localhost\)$/],
    },
    {
      name: 'TLS_CA_CHAIN_FILE does not verify the server certificate',
      files: { 'certs/ca-chain.pem': 'other-ca.pem' },
      expect: [/^config: TLS_CA_CHAIN_FILE: does not verify the certificate in TLS_CERT_FILE .*cars given this chain would refuse the server$/],
    },
    {
      name: 'VEHICLE_CA_FILE is not a certificate bundle',
      files: { 'certs/vehicle-ca.pem': 'garbage.pem' },
      expect: [/^config: VEHICLE_CA_FILE: no PEM certificate found in certs\/vehicle-ca\.pem$/],
    },
    {
      name: 'VEHICLE_EXTRA_CA_FILE names a missing file',
      env: { VEHICLE_EXTRA_CA_FILE: 'certs/extra.pem' },
      expect: [/^config: VEHICLE_EXTRA_CA_FILE: file not found: certs\/extra\.pem$/],
    },
    { name: 'JWT_SECRET missing', unset: ['JWT_SECRET'], expect: [/^config: JWT_SECRET: is required \(at least 32 bytes\) unless JWT_JWKS_URL is set$/] },
    { name: 'JWT_SECRET empty', env: { JWT_SECRET: '' }, expect: [/^config: JWT_SECRET: is required/] },
    { name: 'JWT_SECRET too short', env: { JWT_SECRET: 'short' }, expect: [/^config: JWT_SECRET: is too short: must be at least 32 bytes, got 5$/] },
    {
      name: 'TESLA_AUTO_CONFIGURE=true without token and VIN',
      env: { TESLA_AUTO_CONFIGURE: 'true' },
      expect: [
        /^config: TESLA_ACCESS_TOKEN: or TESLA_TOKEN_FILE \(`fleet-telemetry auth login`\) is required when TESLA_AUTO_CONFIGURE is true$/,
        /^config: TESLA_VIN: is required when TESLA_AUTO_CONFIGURE is true/,
      ],
    },
    {
      name: 'DASHBOARD_REDIRECT_URI without the client and a session secret',
      env: { DASHBOARD_REDIRECT_URI: 'https://dash.example.com/auth/callback', DASHBOARD_SESSION_SECRET: 'short' },
      expect: [
        /^config: TESLA_CLIENT_ID: is required when DASHBOARD_REDIRECT_URI is set \(Sign in with Tesla\)$/,
        /^config: TESLA_CLIENT_SECRET: is required when DASHBOARD_REDIRECT_URI is set \(Sign in with Tesla\)$/,
        /^config: DASHBOARD_SESSION_SECRET: is required with DASHBOARD_REDIRECT_URI and must be at least 32 bytes, got 5$/,
      ],
    },
    {
      name: 'DASHBOARD_REDIRECT_URI on another path',
      env: { DASHBOARD_REDIRECT_URI: 'https://dash.example.com/callback?x=1', TESLA_CLIENT_ID: 'id', TESLA_CLIENT_SECRET: 'secret', DASHBOARD_SESSION_SECRET: 'x'.repeat(32) },
      expect: [/^config: DASHBOARD_REDIRECT_URI: must end in \/auth\/callback/, /^config: DASHBOARD_REDIRECT_URI: must have no query or fragment$/],
    },
    { name: 'DASHBOARD_REDIRECT_URI over http', env: { DASHBOARD_REDIRECT_URI: 'http://dash.example.com/auth/callback' }, expect: [/^config: DASHBOARD_REDIRECT_URI: must be an https:\/\/ URL/] },
    { name: 'TESLA_TOKEN_FILE without TESLA_CLIENT_ID', env: { TESLA_TOKEN_FILE: 'tesla-token.json' }, expect: [/^config: TESLA_CLIENT_ID: is required when TESLA_TOKEN_FILE is set/] },
    { name: 'TESLA_AUTO_CONFIGURE=maybe', env: { TESLA_AUTO_CONFIGURE: 'maybe' }, expect: [/^config: TESLA_AUTO_CONFIGURE: must be true or false, got "maybe"$/] },
    { name: 'TESLA_VIN too short', env: { TESLA_VIN: 'ABC123' }, expect: [/^config: TESLA_VIN: each entry must be a VIN \(17 letters and digits, no I, O or Q\), got "ABC123"$/] },
    {
      name: 'TESLA_VIN with a letter O',
      env: { TESLA_VIN: '5YJ3E1EA7KF000001,5YJ3E1EA7KF00000O' },
      expect: [/^config: TESLA_VIN: each entry must be a VIN .*, got "5YJ3E1EA7KF00000O"$/],
    },
    { name: 'LOG_LEVEL=verbose', env: { LOG_LEVEL: 'verbose' }, expect: [/^config: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/] },
    { name: 'NODE_ENV=staging', env: { NODE_ENV: 'staging' }, expect: [/^config: NODE_ENV: must be one of production, development, test, got "staging"$/] },
    {
      name: 'VEHICLE_IDLE_TIMEOUT_SECONDS=5',
      env: { VEHICLE_IDLE_TIMEOUT_SECONDS: '5' },
      expect: [/^config: VEHICLE_IDLE_TIMEOUT_SECONDS: must be 0 \(no timeout\) or a multiple of 4 from 8 to 960 \(a uWebSockets\.js rule\), got 5$/],
    },
    { name: 'VEHICLE_IDLE_TIMEOUT_SECONDS=10 (not a multiple of 4)', env: { VEHICLE_IDLE_TIMEOUT_SECONDS: '10' }, expect: [/^config: VEHICLE_IDLE_TIMEOUT_SECONDS: .*got 10$/] },
    { name: 'VEHICLE_IDLE_TIMEOUT_SECONDS=964', env: { VEHICLE_IDLE_TIMEOUT_SECONDS: '964' }, expect: [/^config: VEHICLE_IDLE_TIMEOUT_SECONDS: .*got 964$/] },
    { name: 'DECODE_WORKERS=-1', env: { DECODE_WORKERS: '-1' }, expect: [/^config: DECODE_WORKERS: must be an integer from 0 to 64, got -1$/] },
    { name: 'DECODE_WORKERS=65', env: { DECODE_WORKERS: '65' }, expect: [/^config: DECODE_WORKERS: must be an integer from 0 to 64, got 65$/] },
    { name: 'MAX_FRAME_BYTES=1.5', env: { MAX_FRAME_BYTES: '1.5' }, expect: [/^config: MAX_FRAME_BYTES: must be an integer from 1024 to 67108864, got "1\.5"$/] },
    { name: 'SHUTDOWN_GRACE_MS empty', env: { SHUTDOWN_GRACE_MS: '' }, expect: [/^config: SHUTDOWN_GRACE_MS: must be an integer from 0 to 600000, got ""$/] },
    { name: 'JWT_JWKS_URL is not a URL', env: { JWT_JWKS_URL: 'not a url', JWT_ISSUER: 'i', JWT_AUDIENCE: 'a' }, expect: [/^config: JWT_JWKS_URL: must be an absolute https:\/\/ URL, got "not a url"$/] },
    {
      name: 'JWT_JWKS_URL over plain http to a public host',
      env: { JWT_JWKS_URL: 'http://idp.example.com/jwks', JWT_ISSUER: 'i', JWT_AUDIENCE: 'a' },
      expect: [/^config: JWT_JWKS_URL: must be an https:\/\/ URL \(plain http only to a loopback address\), got "http:\/\/idp\.example\.com\/jwks"$/],
    },
    {
      name: 'JWT_JWKS_URL without JWT_ISSUER and JWT_AUDIENCE',
      env: { JWT_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json' },
      unset: ['JWT_SECRET'],
      expect: [/^config: JWT_ISSUER: is required when JWT_JWKS_URL is set$/, /^config: JWT_AUDIENCE: is required when JWT_JWKS_URL is set$/],
    },
    { name: 'TESLA_API_BASE_URL over http', env: { TESLA_API_BASE_URL: 'http://fleet-api.example.com' }, expect: [/^config: TESLA_API_BASE_URL: must be an https:\/\/ URL/] },
    {
      name: 'DASHBOARD_ALLOWED_ORIGINS entry with a path',
      env: { DASHBOARD_ALLOWED_ORIGINS: 'https://ok.example.com,https://dash.example.com/app' },
      expect: [/^config: DASHBOARD_ALLOWED_ORIGINS: each entry must be an origin .*, got "https:\/\/dash\.example\.com\/app"$/],
    },
    { name: 'DOMAIN with a scheme', env: { DOMAIN: 'https://telemetry.example.com' }, expect: [/^config: DOMAIN: must be a bare DNS name .*, got "https:\/\/telemetry\.example\.com"$/] },
    { name: 'HOST that is not an address', env: { HOST: 'not a host' }, expect: [/^config: HOST: must be an IP address to listen on .*, got "not a host"$/] },
    {
      name: 'DASHBOARD_PORT equal to PORT on overlapping hosts',
      env: { DASHBOARD_PORT: '443' },
      expect: [/^config: DASHBOARD_PORT: 443 is also PORT \(HOST 0\.0\.0\.0, DASHBOARD_HOST 0\.0\.0\.0\); each listener needs its own port$/],
    },
    {
      name: 'DASHBOARD_TLS_CERT_FILE without DASHBOARD_TLS_KEY_FILE',
      env: { DASHBOARD_TLS_CERT_FILE: 'certs/server.pem' },
      expect: [/^config: DASHBOARD_TLS_KEY_FILE: is required when DASHBOARD_TLS_CERT_FILE is set/],
    },
    {
      name: 'DASHBOARD_TLS_KEY_FILE not matching DASHBOARD_TLS_CERT_FILE',
      env: { DASHBOARD_TLS_CERT_FILE: 'certs/server.pem', DASHBOARD_TLS_KEY_FILE: 'certs/other.key' },
      files: { 'certs/other.key': 'other.key' },
      expect: [/^config: DASHBOARD_TLS_KEY_FILE: private key in certs\/other\.key does not match the certificate in DASHBOARD_TLS_CERT_FILE/],
    },
    {
      name: 'WATCHDOG_SWEEP_INTERVAL_SECONDS not shorter than the stale limit',
      env: { WATCHDOG_SWEEP_INTERVAL_SECONDS: '300' },
      expect: [/^config: WATCHDOG_SWEEP_INTERVAL_SECONDS: must be shorter than WATCHDOG_STALE_AFTER_SECONDS \(300\), got 300$/],
    },
    {
      name: 'MAP_TILE_URL without the tile coordinates',
      env: { MAP_TILE_URL: 'https://tiles.example.com/tile.png' },
      expect: [/^config: MAP_TILE_URL: must be an http\(s\) URL template with \{z\}, \{x\} and \{y\}, got "https:\/\/tiles\.example\.com\/tile\.png"$/],
    },
    {
      name: 'DATABASE_URL not a PostgreSQL URL (and its value never shown)',
      env: { DATABASE_URL: 'mysql://user:hunter2secret@db/x' },
      expect: [/^config: DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL$/],
    },
    {
      name: 'HISTORY_MAX_POINTS_PER_CAR below its floor',
      env: { HISTORY_MAX_POINTS_PER_CAR: '10' },
      expect: [/^config: HISTORY_MAX_POINTS_PER_CAR: must be an integer/],
    },
    {
      name: 'TESLA_PUBLIC_KEY_FILE holds a private key',
      env: { TESLA_PUBLIC_KEY_FILE: 'certs/server.key' },
      expect: [/^config: TESLA_PUBLIC_KEY_FILE: certs\/server\.key holds a private key; it must hold only the public key/],
    },
    {
      name: 'TESLA_PUBLIC_KEY_FILE on the wrong curve',
      env: { TESLA_PUBLIC_KEY_FILE: 'certs/p384.pem' },
      files: { 'certs/p384.pem': 'p384-public.pem' },
      expect: [/^config: TESLA_PUBLIC_KEY_FILE: public key in certs\/p384\.pem must be an EC P-256 \(prime256v1\) key, got EC secp384r1$/],
    },
  ];

  describe('config: each bad setting is refused with a line naming it', () => {
    for (const testCase of failures) {
      it(testCase.name, () => {
        const dir = workdir();
        for (const [target, source] of Object.entries(testCase.files ?? {})) copyFileSync(at(source), join(dir, target));
        const env = { ...baseEnv(), ...testCase.env };
        for (const name of testCase.unset ?? []) delete env[name];
        const { problems } = problemsOf(dir, env, testCase.now?.());
        expect(problems, problems.join('\n')).to.have.length(testCase.expect.length);
        for (const pattern of testCase.expect) {
          expect(problems.some((line) => pattern.test(line)), `no line matches ${pattern}:\n${problems.join('\n')}`).to.equal(true);
        }
      });
    }
  });

  describe('config: several problems at once', () => {
    it('reports every problem, one line each', () => {
      const dir = workdir();
      const env: NodeJS.ProcessEnv = {
        NODE_ENV: 'test',
        PORT: 'abc',
        LOG_LEVEL: 'loud',
        TLS_KEY_FILE: 'certs/nope.key',
        TESLA_VIN: 'bad',
        DECODE_WORKERS: '100',
      };
      const { problems, message } = problemsOf(dir, env);
      expect(problems).to.have.length(6);
      for (const name of ['PORT', 'LOG_LEVEL', 'TLS_KEY_FILE', 'TESLA_VIN', 'DECODE_WORKERS', 'JWT_SECRET']) {
        expect(problems.filter((line) => line.startsWith(`config: ${name}: `)), name).to.have.length(1);
      }
      expect(message.split('\n')).to.deep.equal(problems);
    });
  });

  describe('config: the .env file', () => {
    it('is read, and the real environment wins over it', () => {
      const dir = workdir();
      writeFileSync(
        join(dir, '.env'),
        [
          '# local overrides',
          'PORT=8444',
          'export LOG_LEVEL=debug',
          `JWT_SECRET="${JWT_SECRET} # not a comment"`,
          "DOMAIN='localhost'",
          'METRICS_PORT=9100   # trailing comment',
          '',
        ].join('\n'),
      );
      const { config } = load(dir, { NODE_ENV: 'test', LOG_LEVEL: 'warn', METRICS_PORT: '9200' });
      expect(config.vehicle.port).to.equal(8444);
      expect(config.logLevel).to.equal('warn');
      expect(config.metrics.port).to.equal(9200);
      expect(config.dashboard.jwtSecret).to.equal(`${JWT_SECRET} # not a comment`);
    });

    it('may choose NODE_ENV and so the config file', () => {
      const dir = workdir();
      writeFileSync(join(dir, '.env'), 'NODE_ENV=development\n');
      mkdirSync(join(dir, 'config'));
      writeFileSync(join(dir, 'config/development.json'), JSON.stringify({ metrics: { port: 9999 } }));
      const { config } = load(dir, { JWT_SECRET });
      expect(config.env).to.equal('development');
      expect(config.metrics.port).to.equal(9999);
    });

    it('reports a malformed line by number without echoing it', () => {
      const dir = workdir();
      writeFileSync(join(dir, '.env'), 'PORT=1\nthis line holds SENTINEL-dotenv\nJWT_SECRET="SENTINEL-unterminated\n');
      const { problems, message } = problemsOf(dir, baseEnv());
      expect(problems).to.deep.equal([
        'config: .env: line 2: expected KEY=VALUE',
        'config: .env: line 3: JWT_SECRET: unterminated double quote (multi-line values are not supported)',
      ]);
      expect(message).to.not.include('SENTINEL');
    });

    it('names .env as the source of a bad value', () => {
      const dir = workdir();
      writeFileSync(join(dir, '.env'), 'PORT=eighty\n');
      const { problems } = problemsOf(dir, baseEnv());
      expect(problems).to.deep.equal(['config: PORT: must be a port number (0-65535), got "eighty" (from .env)']);
    });
  });

  describe('config: parseDotenv', () => {
    it('reads quotes, escapes, export and comments', () => {
      const { values, problems } = parseDotenv(
        [
          '\uFEFFA=plain',
          'B = spaced out ',
          'C="line\\nbreak # not a comment"',
          "D='literal \\n # kept'",
          'E="abc#123"',
          'F=value # comment',
          'export G=exported',
          'H=',
          'A=last wins',
          '   # indented comment',
        ].join('\r\n'),
      );
      expect(problems).to.deep.equal([]);
      expect(Object.fromEntries(values)).to.deep.equal({
        A: 'last wins',
        B: 'spaced out',
        C: 'line\nbreak # not a comment',
        D: 'literal \\n # kept',
        E: 'abc#123',
        F: 'value',
        G: 'exported',
        H: '',
      });
    });

    it('rejects keys that are not identifiers and text after a closing quote', () => {
      const { values, problems } = parseDotenv('1BAD=x\nOK="a" b\nGOOD=1');
      expect(problems).to.deep.equal(['line 1: expected KEY=VALUE', 'line 2: OK: unexpected text after the closing quote']);
      expect(Object.fromEntries(values)).to.deep.equal({ GOOD: '1' });
    });

    it('refuses an unquoted "#" that would cut the value short, and a broken line sets nothing after it', () => {
      const { values, problems } = parseDotenv("SECRET=abc#SENTINEL\nQUOTED='x\nAFTER=1");
      expect(problems).to.deep.equal([
        'line 1: SECRET: a "#" inside an unquoted value starts a comment; quote the value',
        'line 2: QUOTED: unterminated single quote (multi-line values are not supported)',
      ]);
      expect(problems.join('\n')).to.not.include('SENTINEL');
      expect(Object.fromEntries(values)).to.deep.equal({ AFTER: '1' });
    });
  });

  describe('config: config/<NODE_ENV>.json', () => {
    function withConfigFile(content: string): string {
      const dir = workdir();
      mkdirSync(join(dir, 'config'));
      writeFileSync(join(dir, 'config/test.json'), content);
      return dir;
    }

    it('is read, below .env and the real environment', () => {
      const dir = withConfigFile(
        JSON.stringify({
          vehicle: { port: 1111, maxFrameBytes: 500000 },
          metrics: { port: 1112 },
          dashboard: { allowedOrigins: ['https://dash.example.com'], jwtAudience: 'from-file' },
          tesla: { vins: ['5yj3e1ea7kf000001'] },
          logLevel: 'error',
        }),
      );
      writeFileSync(join(dir, '.env'), 'PORT=2222\nMETRICS_PORT=2223\n');
      const { config } = load(dir, { ...baseEnv(), METRICS_PORT: '3333' });
      expect(config.vehicle.port).to.equal(2222);
      expect(config.vehicle.maxFrameBytes).to.equal(500000);
      expect(config.metrics.port).to.equal(3333);
      expect(config.dashboard.allowedOrigins).to.deep.equal(['https://dash.example.com']);
      expect(config.dashboard.jwtAudience).to.equal('from-file');
      expect(config.tesla.vins).to.deep.equal(['5YJ3E1EA7KF000001']);
      expect(config.logLevel).to.equal('error');
    });

    it('reports unknown keys by their path', () => {
      const dir = withConfigFile(JSON.stringify({ vehicle: { prot: 8443 }, colour: 'red', tls: 5, env: 'production' }));
      const { problems } = problemsOf(dir, baseEnv());
      expect(problems).to.have.members([
        'config: config/test.json: unknown setting "vehicle.prot"',
        'config: config/test.json: unknown setting "colour"',
        'config: config/test.json: "tls" must be an object of settings',
        'config: config/test.json: "env" cannot be set in a config file: NODE_ENV chooses the file',
      ]);
      expect(problems).to.have.length(4);
    });

    it('names the file as the source of a bad value', () => {
      const dir = withConfigFile(JSON.stringify({ vehicle: { port: 'abc' } }));
      expect(problemsOf(dir, baseEnv()).problems).to.deep.equal([
        'config: PORT: must be a port number (0-65535), got "abc" (from config/test.json "vehicle.port")',
      ]);
    });

    it('accepts null only where a setting has no default', () => {
      const dir = withConfigFile(JSON.stringify({ dashboard: { jwtSecret: null }, tls: { keyPassphrase: null } }));
      expect(problemsOf(dir, { NODE_ENV: 'test' }).problems).to.deep.equal([
        'config: TLS_KEY_PASSPHRASE: must be text (from config/test.json "tls.keyPassphrase")',
        'config: JWT_SECRET: is required (at least 32 bytes) unless JWT_JWKS_URL is set',
      ]);
    });

    it('reports invalid JSON by position without quoting the file', () => {
      const dir = withConfigFile('{\n  "dashboard": { "jwtSecret": "file-SENTINEL-secret-value-0123456789" \n');
      const { problems, message } = problemsOf(dir, baseEnv());
      expect(problems).to.have.length(1);
      expect(problems[0]).to.equal('config: config/test.json: is not valid JSON (error at line 3, column 1)');
      expect(message).to.not.include('SENTINEL');
    });
  });

  describe('config: secrets', () => {
    it('never appear in ConfigError messages', () => {
      const dir = workdir();
      copyFileSync(at('server-encrypted.key'), join(dir, 'certs/server.key'));
      mkdirSync(join(dir, 'config'));
      writeFileSync(join(dir, 'config/test.json'), JSON.stringify({ tesla: { accessToken: { nested: 'token-SENTINEL-in-object' } } }));
      const env: NodeJS.ProcessEnv = {
        NODE_ENV: 'test',
        JWT_SECRET: 'SENTINEL-jwt', // too short
        TLS_KEY_PASSPHRASE: 'SENTINEL-wrong-passphrase',
        TESLA_AUTO_CONFIGURE: 'true',
        TESLA_VIN: 'SENTINELVIN',
      };
      const { problems, message, warnings } = problemsOf(dir, env);
      expect(problems.some((line) => line.startsWith('config: JWT_SECRET: is too short'))).to.equal(true);
      expect(problems.some((line) => line.startsWith('config: TLS_KEY_FILE: private key in certs/server.key cannot be decrypted'))).to.equal(true);
      expect(problems).to.include('config: TESLA_ACCESS_TOKEN: must be text (from config/test.json "tesla.accessToken")');
      expect(message).to.not.match(/SENTINEL-(jwt|wrong|token)/);
      expect(warnings.join('\n')).to.not.include('SENTINEL');
    });

    it('are redacted by redactedConfig, and unset ones are shown empty', () => {
      const dir = workdir();
      copyFileSync(at('server-encrypted.key'), join(dir, 'certs/server.key'));
      const env: NodeJS.ProcessEnv = {
        ...baseEnv(),
        TLS_KEY_PASSPHRASE: KEY_PASSPHRASE,
        JWT_JWKS_URL: 'https://user:urlpw-SENTINEL@idp.example.com/jwks',
        JWT_ISSUER: 'issuer',
        JWT_AUDIENCE: 'audience',
      };
      const { config } = load(dir, env);
      expect(config.tls.keyPassphrase).to.equal(KEY_PASSPHRASE);
      const redacted = redactedConfig(config);
      const printed = JSON.stringify(redacted);
      expect(printed).to.not.include('SENTINEL');
      expect(redacted.tls).to.include({ keyPassphrase: '[redacted]' });
      expect(redacted.dashboard).to.include({ jwtSecret: '[redacted]' });
      expect(redacted.tesla).to.include({ accessToken: '' });
      expect((redacted.dashboard as { jwksUrl: string }).jwksUrl).to.equal('https://[redacted]:[redacted]@idp.example.com/jwks');
      expect(redacted.vehicle).to.deep.equal(config.vehicle);
      // The live config is untouched.
      expect(config.dashboard.jwtSecret).to.equal(JWT_SECRET);
    });
  });

  describe('config: MQTT settings', () => {
    it('refuses a bad broker URL, prefix, a lone client certificate and two passwords, naming each setting, without the password', () => {
      const dir = workdir();
      const { problems, message } = problemsOf(dir, {
        ...baseEnv(),
        MQTT_URL: 'http://user:mqttpw-SENTINEL@broker:1883',
        MQTT_TOPIC_PREFIX: 'tesla/#',
        MQTT_CERT_FILE: 'client.pem',
        MQTT_PASSWORD: 'pw-SENTINEL-1',
        MQTT_PASSWORD_FILE: 'pw.txt',
      });
      expect(problems.some((line) => line.startsWith('config: MQTT_URL: must be mqtt://host:1883'))).to.equal(true);
      expect(problems.some((line) => line.startsWith('config: MQTT_TOPIC_PREFIX: must be MQTT topic levels'))).to.equal(true);
      expect(problems.some((line) => line.startsWith('config: MQTT_KEY_FILE: is required'))).to.equal(true);
      expect(problems.some((line) => line.startsWith('config: MQTT_PASSWORD_FILE: and MQTT_PASSWORD are both set'))).to.equal(true);
      expect(problems).to.include('config: MQTT_CERT_FILE: cannot read client.pem (ENOENT)');
      expect(message).to.not.include('SENTINEL');
    });

    it('masks a password inside MQTT_URL when the config is printed', () => {
      const { config } = load(workdir(), { ...baseEnv(), MQTT_URL: 'mqtts://fleet:mqttpw-SENTINEL@broker.example.net:8883' });
      expect(config.mqtt.url).to.include('SENTINEL');
      expect(JSON.stringify(redactedConfig(config))).to.not.include('SENTINEL');
    });
  });

  describe('config: describeSettings', () => {
    const required = [
      'PORT', 'HOST', 'DOMAIN', 'TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_KEY_PASSPHRASE', 'TLS_CA_CHAIN_FILE', 'VEHICLE_CA_FILE',
      'VEHICLE_EXTRA_CA_FILE', 'DASHBOARD_PORT', 'DASHBOARD_HOST', 'DASHBOARD_TLS_CERT_FILE', 'DASHBOARD_TLS_KEY_FILE', 'JWT_SECRET',
      'JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'DASHBOARD_ALLOWED_ORIGINS', 'DASHBOARD_MAX_BACKPRESSURE_BYTES',
      'DASHBOARD_TESLA_SIGN_IN', 'TESLA_AUTH_JWKS_URL', 'TESLA_AUTH_ISSUER', 'TESLA_AUTH_AUDIENCE', 'METRICS_PORT',
      'METRICS_HOST', 'TESLA_ACCESS_TOKEN', 'TESLA_VIN', 'TESLA_API_BASE_URL', 'TESLA_PUBLIC_KEY_FILE', 'TESLA_AUTO_CONFIGURE',
      'TESLA_PARTNER_TOKEN', 'TESLA_PROXY_URL', 'TESLA_PROXY_CA_FILE', 'TESLA_PRIVATE_KEY_FILE', 'TESLA_CONFIG_PRESET',
      'TESLA_CONFIG_FIELDS_FILE', 'TESLA_ALERT_TYPES', 'TESLA_CONFIG_EXPIRY_DAYS', 'TESLA_API_TIMEOUT_MS',
      'TESLA_ERRORS_POLL_INTERVAL_SECONDS', 'TESLA_REPUSH_MIN_INTERVAL_SECONDS',
      'LOG_LEVEL', 'NODE_ENV', 'MAX_FRAME_BYTES', 'VEHICLE_IDLE_TIMEOUT_SECONDS', 'VEHICLE_MAX_BACKPRESSURE_BYTES', 'VEHICLE_MAX_FRAMES_PER_SECOND', 'DECODE_WORKERS',
      'DECODE_BATCH_MAX_FRAMES', 'DECODE_TASK_TIMEOUT_MS', 'DECODE_INLINE_MAX_FRAMES', 'DECODE_INLINE_MAX_BYTES', 'WATCHDOG_STALE_AFTER_SECONDS', 'WATCHDOG_SWEEP_INTERVAL_SECONDS',
      'SELF_CHECK', 'SHUTDOWN_GRACE_MS', 'SHUTDOWN_SPREAD_MS',
      'NATS_URL', 'NATS_CREDS_FILE', 'NATS_USER', 'NATS_PASSWORD', 'NATS_TOKEN', 'NATS_TLS_CA_FILE', 'NATS_SUBJECT_PREFIX', 'NATS_STREAM',
      'NATS_RECORD_ENCODING', 'NATS_STREAM_MAX_AGE_SECONDS', 'NATS_STREAM_MAX_BYTES', 'NATS_DUPLICATE_WINDOW_SECONDS', 'NATS_STREAM_REPLICAS',
      'NATS_MAX_PENDING_PUBLISHES', 'NATS_PUBLISH_TIMEOUT_MS', 'NATS_STATE_FLUSH_MS', 'NATS_INSTANCE_ID',
      'TESLA_CLIENT_ID', 'TESLA_CLIENT_SECRET', 'TESLA_AUTHORIZE_URL', 'TESLA_TOKEN_URL', 'TESLA_TOKEN_FILE', 'DASHBOARD_REDIRECT_URI',
      'DASHBOARD_SESSION_SECRET', 'DASHBOARD_SESSION_FILE', 'DASHBOARD_SESSION_MAX_AGE_SECONDS', 'DASHBOARD_VEHICLE_LIST_REFRESH_SECONDS',
      'VEHICLE_MAX_SOCKETS_PER_VIN', 'VEHICLE_MAX_SOCKETS', 'VEHICLE_FIRST_FRAME_TIMEOUT_SECONDS',
      'DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS', 'DASHBOARD_MAX_SOCKETS_PER_SUBJECT', 'DASHBOARD_MAX_REPLAYS_PER_MINUTE', 'WATCHDOG_FORGET_AFTER_SECONDS',
      'HISTORY_ENABLED', 'HISTORY_WINDOW_HOURS', 'HISTORY_RESOLUTION_SECONDS', 'HISTORY_MAX_POINTS_PER_CAR', 'MAP_TILE_URL', 'MAP_ATTRIBUTION',
      'DATABASE_URL', 'POSTGRES_BATCH_ROWS', 'POSTGRES_FLUSH_MS', 'POSTGRES_QUEUE_MAX_ROWS',
      'MQTT_URL', 'MQTT_USERNAME', 'MQTT_PASSWORD', 'MQTT_PASSWORD_FILE', 'MQTT_CA_FILE', 'MQTT_CERT_FILE', 'MQTT_KEY_FILE',
      'MQTT_CLIENT_ID', 'MQTT_PROTOCOL_VERSION', 'MQTT_TOPIC_PREFIX', 'MQTT_QOS', 'MQTT_HEARTBEAT_SECONDS', 'MQTT_RAW_RECORDS',
      'MQTT_MAX_QUEUED_EVENTS', 'MQTT_MAX_IN_FLIGHT', 'MQTT_MAX_MESSAGES_PER_SECOND', 'MQTT_HA_DISCOVERY', 'MQTT_HA_DISCOVERY_PREFIX',
      'TLS_WATCH_FILES',
    ];

    it('lists exactly the documented variables, each with a doc', () => {
      const settings = describeSettings();
      expect(settings.map((s) => s.env)).to.have.members(required);
      expect(settings).to.have.length(required.length);
      for (const setting of settings) expect(setting.doc.length, setting.env).to.be.greaterThan(10);
    });

    it('marks exactly the secrets as sensitive', () => {
      const sensitive = describeSettings().filter((s) => s.sensitive).map((s) => s.env);
      expect(sensitive).to.have.members(['JWT_SECRET', 'TLS_KEY_PASSPHRASE', 'TESLA_ACCESS_TOKEN', 'TESLA_PARTNER_TOKEN', 'NATS_PASSWORD', 'NATS_TOKEN', 'TESLA_CLIENT_SECRET', 'DASHBOARD_SESSION_SECRET', 'DATABASE_URL', 'MQTT_PASSWORD']);
    });

    it('carries the defaults and the AppConfig paths', () => {
      const byEnv = new Map(describeSettings().map((s) => [s.env, s]));
      expect(byEnv.get('PORT')).to.include({ path: 'vehicle.port', default: 443 });
      expect(byEnv.get('METRICS_HOST')).to.include({ path: 'metrics.host', default: '127.0.0.1' });
      expect(byEnv.get('JWT_SECRET')).to.include({ path: 'dashboard.jwtSecret', default: null });
      expect(byEnv.get('TESLA_VIN')?.default).to.deep.equal([]);
    });

    it('docs/CONFIGURATION.md is what scripts/config-doc.mjs prints', () => {
      const result = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/config-doc.mjs')], { encoding: 'utf8' });
      expect(result.status, result.stderr).to.equal(0);
      expect(readFileSync(join(REPO_ROOT, 'docs/CONFIGURATION.md'), 'utf8')).to.equal(result.stdout);
    });
  });

  describe('config: loadConfigOrExit', () => {
    it('prints each problem on its own stderr line and exits with status 2', () => {
      const dir = mkdtempSync(join(tmpdir(), 'config-test-exit-'));
      cleanup.push(dir);
      const script = `import { loadConfigOrExit } from ${JSON.stringify(CONFIG_MODULE)}; loadConfigOrExit(); console.log('listening');`;
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', '--port', '1'], {
        cwd: dir,
        env: { PATH: process.env.PATH, NODE_ENV: 'test', PORT: 'abc', JWT_SECRET: 'SENTINEL-short' },
        encoding: 'utf8',
      });
      expect(result.status).to.equal(2);
      expect(result.stdout).to.equal('');
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).to.include('config: PORT: must be a port number (0-65535), got "abc"');
      expect(lines).to.include('config: TLS_CERT_FILE: file not found: certs/server.pem');
      expect(lines).to.include('config: JWT_SECRET: is too short: must be at least 32 bytes, got 14');
      for (const line of lines) expect(line).to.match(/^config: /);
      expect(result.stderr).to.not.include('SENTINEL');
    });
  });
});
