import { availableParallelism } from 'node:os';
import { accessSync, constants as fsConstants, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import convict from 'convict';
import type { AppConfig } from './types.js';
import { FORMATS, collectSettingProblems, redactUrl, registerFormats } from './formats.js';
import { SETTINGS, SETTING_BY_PATH, schema, type Setting } from './schema.js';
import { parseDotenv } from './dotenv.js';
import { parseConfigFile, readTextFile } from './config-file.js';
import { checkSecretFileModes, checkVehicleCaFile, type SecretFile } from './file-safety.js';
import {
  chainReachesAnchor,
  checkCaBundle,
  checkKeyPair,
  checkPublicKeyFile,
  coversDomain,
  describeNames,
  type FileRef,
  type Reporter,
} from './tls-files.js';

export type { AppConfig, LogLevel } from './types.js';

/** Every problem found while loading, one operator-readable line each. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  /** The real environment; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where `.env`, `config/<NODE_ENV>.json` and relative file paths are found; defaults to process.cwd(). */
  cwd?: string;
  /** Receives each warning line (findings that do not stop start-up); defaults to stderr. */
  onWarning?: (line: string) => void;
  /** The instant certificates are checked against; defaults to now. */
  now?: Date;
  /**
   * Partial mode, for CLI commands: only these settings (AppConfig paths) are checked, and no file or
   * cross-setting check runs; the sources are merged exactly as for the server. Other fields of the
   * result hold whatever the sources say, unchecked: read only the ones named here.
   */
  only?: readonly string[];
}

const PREFIX = 'config: ';
const REDACTED = '[redacted]';
/** Shorter secrets are not scrubbed from messages: replacing a 3-letter word everywhere would garble them. */
const MIN_SCRUB_LENGTH = 6;

class Findings implements Reporter {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];

  error(subject: string, message: string): void {
    this.problems.push(`${PREFIX}${subject}: ${message}`);
  }

  warn(subject: string, message: string): void {
    this.warnings.push(`${PREFIX}warning: ${subject}: ${message}`);
  }
}

function writeStderrLine(line: string): void {
  // Synchronous, so every line is out before a process.exit() that follows.
  writeSync(2, `${line}\n`);
}

function readPath(root: unknown, path: string): unknown {
  let node = root;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function writePath(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let node = root;
  for (const key of keys) node = node[key] as Record<string, unknown>;
  node[last] = value;
}

interface Sources {
  realEnv: NodeJS.ProcessEnv;
  dotenv: Map<string, string>;
  filePaths: Set<string>;
  fileShown: string;
}

/** Where a rejected value came from, when that is not the real environment the operator looks at first. */
function sourceNote(setting: Setting, sources: Sources): string {
  if (sources.realEnv[setting.env] !== undefined) return '';
  if (sources.dotenv.has(setting.env)) return ' (from .env)';
  if (sources.filePaths.has(setting.path)) return ` (from ${sources.fileShown} "${setting.path}")`;
  return '';
}

function readDotenv(cwd: string, findings: Findings): Map<string, string> {
  const result = readTextFile(join(cwd, '.env'), '.env');
  if ('missing' in result) return new Map();
  if ('problem' in result) {
    findings.error('.env', result.problem);
    return new Map();
  }
  const parsed = parseDotenv(result.text);
  for (const problem of parsed.problems) findings.error('.env', problem);
  return parsed.values;
}

/** .env fills only what the real environment leaves unset. */
function mergeEnvironments(realEnv: NodeJS.ProcessEnv, dotenv: Map<string, string>): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = {};
  for (const [key, value] of dotenv) merged[key] = value;
  for (const [key, value] of Object.entries(realEnv)) {
    if (value !== undefined) merged[key] = value;
  }
  return merged;
}

function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** Settings whose validity depends on other settings. Runs only on settings that passed their own format. */
function checkRelations(raw: AppConfig, invalid: Set<string>, findings: Findings): void {
  const ok = (...paths: string[]): boolean => paths.every((path) => !invalid.has(path));
  const { dashboard, tesla, watchdog } = raw;

  if (ok('dashboard.jwtSecret')) {
    const secret = dashboard.jwtSecret ?? '';
    const bytes = Buffer.byteLength(secret, 'utf8');
    // A short secret is weak whether or not JWKS is also configured, so its length is always checked.
    if (secret === '' && ok('dashboard.jwksUrl') && dashboard.jwksUrl === '') {
      findings.error('JWT_SECRET', 'is required (at least 32 bytes) unless JWT_JWKS_URL is set');
    } else if (secret !== '' && bytes < 32) {
      findings.error('JWT_SECRET', `is too short: must be at least 32 bytes, got ${bytes}`);
    }
  }
  if (ok('dashboard.jwksUrl') && dashboard.jwksUrl !== '') {
    if (ok('dashboard.jwtIssuer') && dashboard.jwtIssuer === '') {
      findings.error('JWT_ISSUER', 'is required when JWT_JWKS_URL is set');
    }
    if (ok('dashboard.jwtAudience') && dashboard.jwtAudience === '') {
      findings.error('JWT_AUDIENCE', 'is required when JWT_JWKS_URL is set');
    }
  }
  if (ok('dashboard.certFile', 'dashboard.keyFile') && (dashboard.certFile === '') !== (dashboard.keyFile === '')) {
    const [setEnv, unsetEnv] =
      dashboard.certFile === '' ? ['DASHBOARD_TLS_KEY_FILE', 'DASHBOARD_TLS_CERT_FILE'] : ['DASHBOARD_TLS_CERT_FILE', 'DASHBOARD_TLS_KEY_FILE'];
    findings.error(unsetEnv, `is required when ${setEnv} is set (set both, or neither to reuse the vehicle certificate)`);
  }

  if (ok('tesla.autoConfigure') && tesla.autoConfigure === true) {
    if (ok('tesla.accessToken', 'signIn.tokenFile') && tesla.accessToken === '' && raw.signIn.tokenFile === '') {
      findings.error('TESLA_ACCESS_TOKEN', 'or TESLA_TOKEN_FILE (`fleet-telemetry auth login`) is required when TESLA_AUTO_CONFIGURE is true');
    }
    if (ok('tesla.vins') && tesla.vins.length === 0) {
      findings.error('TESLA_VIN', 'is required when TESLA_AUTO_CONFIGURE is true (comma-separated VINs)');
    }
    if (ok('domain') && (raw.domain === 'localhost' || raw.domain.endsWith('.localhost') || isIP(raw.domain) !== 0)) {
      findings.warn('DOMAIN', `cars can only be configured with the public domain registered with Tesla, got "${raw.domain}"`);
    }
  }

  checkSignIn(raw, ok, findings);

  if (ok('watchdog.staleAfterSeconds', 'watchdog.sweepIntervalSeconds') && watchdog.sweepIntervalSeconds >= watchdog.staleAfterSeconds) {
    findings.error(
      'WATCHDOG_SWEEP_INTERVAL_SECONDS',
      `must be shorter than WATCHDOG_STALE_AFTER_SECONDS (${watchdog.staleAfterSeconds}), got ${watchdog.sweepIntervalSeconds}`,
    );
  }

  const { nats } = raw;
  if (ok('nats.user', 'nats.password') && (nats.user === '') !== (nats.password === '')) {
    findings.error(nats.user === '' ? 'NATS_USER' : 'NATS_PASSWORD', 'is required when the other of NATS_USER / NATS_PASSWORD is set');
  }
  if (ok('nats.maxAgeSeconds', 'nats.duplicateWindowSeconds') && nats.maxAgeSeconds > 0 && nats.duplicateWindowSeconds > nats.maxAgeSeconds) {
    findings.error('NATS_DUPLICATE_WINDOW_SECONDS', `must not exceed NATS_STREAM_MAX_AGE_SECONDS (${nats.maxAgeSeconds}), got ${nats.duplicateWindowSeconds}`);
  }

  const { history, postgres } = raw;
  if (ok('history.mapTileUrl') && history.mapTileUrl !== '') {
    const template = history.mapTileUrl;
    if (!/^https?:\/\/[^\s]+$/.test(template) || !['{z}', '{x}', '{y}'].every((part) => template.includes(part))) {
      findings.error('MAP_TILE_URL', `must be an http(s) URL template with {z}, {x} and {y}, got "${template}"`);
    }
  }
  if (ok('postgres.url') && postgres.url !== '' && !/^postgres(ql)?:\/\//.test(postgres.url)) {
    findings.error('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
  }
  const { mqtt } = raw;
  if (ok('mqtt.certFile', 'mqtt.keyFile') && (mqtt.certFile === '') !== (mqtt.keyFile === '')) {
    findings.error(mqtt.certFile === '' ? 'MQTT_CERT_FILE' : 'MQTT_KEY_FILE', 'is required when the other of MQTT_CERT_FILE / MQTT_KEY_FILE is set');
  }
  if (ok('mqtt.password', 'mqtt.passwordFile') && mqtt.password !== '' && mqtt.passwordFile !== '') {
    findings.error('MQTT_PASSWORD_FILE', 'and MQTT_PASSWORD are both set; set one');
  }

  const listeners = [
    { env: 'PORT', hostEnv: 'HOST', path: 'vehicle', host: raw.vehicle.host, port: raw.vehicle.port },
    { env: 'DASHBOARD_PORT', hostEnv: 'DASHBOARD_HOST', path: 'dashboard', host: raw.dashboard.host, port: raw.dashboard.port },
    { env: 'METRICS_PORT', hostEnv: 'METRICS_HOST', path: 'metrics', host: raw.metrics.host, port: raw.metrics.port },
  ].filter((l) => ok(`${l.path}.host`, `${l.path}.port`) && l.port !== 0);
  listeners.forEach((later, index) => {
    const clash = listeners
      .slice(0, index)
      .find((earlier) => earlier.port === later.port && (earlier.host === later.host || isWildcardHost(earlier.host) || isWildcardHost(later.host)));
    if (clash !== undefined) {
      findings.error(later.env, `${later.port} is also ${clash.env} (${clash.hostEnv} ${clash.host}, ${later.hostEnv} ${later.host}); each listener needs its own port`);
    }
  });
}

/** Sign in with Tesla is on when DASHBOARD_REDIRECT_URI is set; then it needs its client and secret. */
function checkSignIn(raw: AppConfig, ok: (...paths: string[]) => boolean, findings: Findings): void {
  const { signIn } = raw;
  if (ok('signIn.tokenFile', 'signIn.clientId') && signIn.tokenFile !== '' && signIn.clientId === '' && raw.tesla.accessToken === '') {
    findings.error('TESLA_CLIENT_ID', 'is required when TESLA_TOKEN_FILE is set (refreshing the access token needs the client id)');
  }
  if (!ok('signIn.redirectUri') || signIn.redirectUri === '') return;
  if (ok('signIn.clientId') && signIn.clientId === '') findings.error('TESLA_CLIENT_ID', 'is required when DASHBOARD_REDIRECT_URI is set (Sign in with Tesla)');
  if (ok('signIn.clientSecret') && signIn.clientSecret === '') findings.error('TESLA_CLIENT_SECRET', 'is required when DASHBOARD_REDIRECT_URI is set (Sign in with Tesla)');
  if (ok('signIn.sessionSecret') && Buffer.byteLength(signIn.sessionSecret, 'utf8') < 32) {
    findings.error('DASHBOARD_SESSION_SECRET', `is required with DASHBOARD_REDIRECT_URI and must be at least 32 bytes, got ${Buffer.byteLength(signIn.sessionSecret, 'utf8')}`);
  }
  const url = new URL(signIn.redirectUri);
  if (url.pathname !== '/auth/callback') {
    findings.error('DASHBOARD_REDIRECT_URI', `must end in /auth/callback (the dashboard's callback route), got path "${url.pathname}"`);
  }
  if (url.search !== '' || url.hash !== '') findings.error('DASHBOARD_REDIRECT_URI', 'must have no query or fragment');
}

function checkFiles(raw: AppConfig, invalid: Set<string>, cwd: string, now: Date, findings: Findings): void {
  const ok = (...paths: string[]): boolean => paths.every((path) => !invalid.has(path));
  const ref = (path: string): FileRef => {
    const setting = SETTING_BY_PATH.get(path) as Setting;
    const shown = readPath(raw, path) as string;
    return { env: setting.env, path: resolve(cwd, shown), shown };
  };
  const passphrase = ok('tls.keyPassphrase') ? raw.tls.keyPassphrase : '';
  const selfCheck = ok('selfCheck') ? raw.selfCheck : true;
  // With SELF_CHECK on, a certificate a car would refuse stops start-up; off, the operator is told.
  const carFinding = (env: string, message: string): void =>
    selfCheck ? findings.error(env, message) : findings.warn(env, message);

  let serverChain: ReturnType<typeof checkKeyPair>;
  if (ok('tls.certFile', 'tls.keyFile')) {
    serverChain = checkKeyPair({ cert: ref('tls.certFile'), key: ref('tls.keyFile'), passphrase, now }, findings);
    if (serverChain !== undefined && ok('domain') && !coversDomain(serverChain[0], raw.domain)) {
      carFinding('TLS_CERT_FILE', `certificate does not cover DOMAIN "${raw.domain}" (it names ${describeNames(serverChain[0])})`);
    }
  }
  if (ok('tls.caChainFile')) {
    const anchors = checkCaBundle(ref('tls.caChainFile'), now, true, findings);
    if (anchors !== undefined && serverChain !== undefined && !chainReachesAnchor(serverChain, anchors)) {
      carFinding(
        'TLS_CA_CHAIN_FILE',
        `does not verify the certificate in TLS_CERT_FILE (no certificate in ${raw.tls.caChainFile} issued it or its intermediates); cars given this chain would refuse the server`,
      );
    }
  }
  if (ok('vehicleCa.file')) {
    const vehicleCas = checkCaBundle(ref('vehicleCa.file'), now, false, findings);
    if (vehicleCas !== undefined && raw.env === 'production' && !vehicleCas.some((ca) => /\bTesla\b/.test(ca.subject))) {
      findings.warn('VEHICLE_CA_FILE', `no Tesla CA in ${raw.vehicleCa.file}: real cars will be refused (NODE_ENV is production)`);
    }
  }
  if (ok('vehicleCa.extraFile') && raw.vehicleCa.extraFile !== '') checkCaBundle(ref('vehicleCa.extraFile'), now, false, findings);
  if (ok('dashboard.certFile', 'dashboard.keyFile') && raw.dashboard.certFile !== '' && raw.dashboard.keyFile !== '') {
    checkKeyPair({ cert: ref('dashboard.certFile'), key: ref('dashboard.keyFile'), passphrase, now }, findings);
  }
  if (ok('tesla.publicKeyFile') && raw.tesla.publicKeyFile !== '') checkPublicKeyFile(ref('tesla.publicKeyFile'), findings);
  // The MQTT output reads these at start; an unreadable one stops start-up here, named.
  for (const path of ['mqtt.passwordFile', 'mqtt.caFile', 'mqtt.certFile', 'mqtt.keyFile']) {
    if (!ok(path) || readPath(raw, path) === '') continue;
    const file = ref(path);
    try {
      accessSync(file.path, fsConstants.R_OK);
    } catch (error) {
      findings.error(file.env, `cannot read ${file.shown} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

/** Secrets on disk in production: keys and credentials private to the server's user, no dev or unguarded CA. */
function checkProductionFiles(raw: AppConfig, invalid: Set<string>, cwd: string, findings: Findings): void {
  const secretPaths = ['tls.keyFile', 'dashboard.keyFile', 'tesla.privateKeyFile', 'nats.credsFile'];
  const files: SecretFile[] = [];
  for (const path of secretPaths) {
    const shown = readPath(raw, path);
    if (invalid.has(path) || typeof shown !== 'string' || shown === '') continue;
    files.push({ env: (SETTING_BY_PATH.get(path) as Setting).env, path: resolve(cwd, shown), shown });
  }
  files.push({ env: '.env', path: join(cwd, '.env'), shown: '.env' });
  checkSecretFileModes(files, findings);
  for (const path of ['vehicleCa.file', 'vehicleCa.extraFile']) {
    const shown = readPath(raw, path);
    if (invalid.has(path) || typeof shown !== 'string' || shown === '') continue;
    checkVehicleCaFile({ env: (SETTING_BY_PATH.get(path) as Setting).env, path: resolve(cwd, shown), shown }, findings);
  }
}

/** Last line of defence: whatever a message says, it must not carry a secret's value. */
function scrubSecrets(lines: string[], raw: AppConfig, sources: Sources): string[] {
  const secrets = new Set<string>();
  for (const setting of SETTINGS) {
    if (!setting.sensitive) continue;
    for (const value of [readPath(raw, setting.path), sources.realEnv[setting.env], sources.dotenv.get(setting.env)]) {
      if (typeof value === 'string' && value.length >= MIN_SCRUB_LENGTH) secrets.add(value);
    }
  }
  if (secrets.size === 0) return lines;
  return lines.map((line) => {
    let clean = line;
    for (const secret of secrets) clean = clean.split(secret).join(REDACTED);
    return clean;
  });
}

function toAppConfig(raw: AppConfig, cwd: string): AppConfig {
  const file = (path: string): string => (path === '' ? '' : resolve(cwd, path));
  return {
    env: raw.env,
    logLevel: raw.logLevel,
    domain: raw.domain,
    vehicle: { ...raw.vehicle },
    tls: {
      certFile: file(raw.tls.certFile),
      keyFile: file(raw.tls.keyFile),
      keyPassphrase: raw.tls.keyPassphrase,
      caChainFile: file(raw.tls.caChainFile),
      watchFiles: raw.tls.watchFiles,
    },
    vehicleCa: { file: file(raw.vehicleCa.file), extraFile: file(raw.vehicleCa.extraFile) },
    decode: { ...raw.decode, workers: raw.decode.workers === 0 ? defaultDecodeWorkers() : raw.decode.workers },
    watchdog: { ...raw.watchdog },
    dashboard: {
      ...raw.dashboard,
      certFile: file(raw.dashboard.certFile),
      keyFile: file(raw.dashboard.keyFile),
      jwtSecret: raw.dashboard.jwtSecret ?? '',
      allowedOrigins: raw.dashboard.allowedOrigins.map((origin) => (origin === '*' ? origin : new URL(origin).origin)),
    },
    metrics: { ...raw.metrics },
    tesla: {
      ...raw.tesla,
      vins: [...new Set(raw.tesla.vins.map((vin) => vin.toUpperCase()))],
      publicKeyFile: file(raw.tesla.publicKeyFile),
      privateKeyFile: file(raw.tesla.privateKeyFile),
      proxyCaFile: file(raw.tesla.proxyCaFile),
      configFieldsFile: file(raw.tesla.configFieldsFile),
    },
    signIn: { ...raw.signIn, tokenFile: file(raw.signIn.tokenFile), sessionFile: file(raw.signIn.sessionFile) },
    nats: { ...raw.nats, credsFile: file(raw.nats.credsFile), tlsCaFile: file(raw.nats.tlsCaFile) },
    history: { ...raw.history },
    postgres: { ...raw.postgres },
    mqtt: {
      ...raw.mqtt,
      passwordFile: file(raw.mqtt.passwordFile),
      caFile: file(raw.mqtt.caFile),
      certFile: file(raw.mqtt.certFile),
      keyFile: file(raw.mqtt.keyFile),
    },
    selfCheck: raw.selfCheck,
    shutdownGraceMs: raw.shutdownGraceMs,
    shutdownSpreadMs: raw.shutdownSpreadMs,
  };
}

const FILE_FORMATS = new Set(['file', 'optionalFile']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every setting's problem by path, in schema order, from convict's own validate() and the formats'
 * validators. One case convict cannot see: a config file that gives an object where a value belongs
 * (convict flattens it into undeclared sub-keys and calls the setting "missing"); the setting's own
 * format names that one.
 */
function validateSettings(config: convict.Config<AppConfig>, raw: AppConfig): Map<string, string> {
  const byPath = new Map<string, string>();
  const shadowed = SETTINGS.filter((setting) => isPlainObject(readPath(raw, setting.path)));
  let refused: { fullName?: string; message: string }[];
  try {
    refused = collectSettingProblems(() => config.validate({ allowed: 'strict' }));
  } catch (error) {
    if (shadowed.length === 0) throw error;
    refused = [];
  }
  for (const problem of refused) {
    if (problem.fullName === undefined) throw new Error(`config: convict reported a problem without its setting: ${problem.message}`);
    byPath.set(problem.fullName, problem.message);
  }
  for (const setting of shadowed) {
    byPath.set(setting.path, FORMATS[setting.format].check(readPath(raw, setting.path), setting) ?? 'must not be an object');
  }
  const ordered = new Map<string, string>();
  for (const setting of SETTINGS) {
    const problem = byPath.get(setting.path);
    if (problem !== undefined) ordered.set(setting.path, problem);
  }
  return ordered;
}

/**
 * Partial mode's result: file paths resolved against cwd and VINs normalised as toAppConfig does, so
 * a CLI command sees the same values the server would; nothing else is derived from unchecked input.
 */
function partialAppConfig(raw: AppConfig, cwd: string): AppConfig {
  const copy = { ...raw, dashboard: { ...raw.dashboard, jwtSecret: raw.dashboard.jwtSecret ?? '' } };
  const result = structuredClone(copy) as unknown as Record<string, unknown>;
  for (const setting of SETTINGS) {
    const value = readPath(result, setting.path);
    if (FILE_FORMATS.has(setting.format) && typeof value === 'string' && value !== '') writePath(result, setting.path, resolve(cwd, value));
  }
  const config = result as unknown as AppConfig;
  if (Array.isArray(config.tesla.vins)) config.tesla.vins = [...new Set(config.tesla.vins.map((vin) => String(vin).toUpperCase()))];
  return config;
}

/**
 * Reads the configuration: schema defaults < config/<NODE_ENV>.json < .env < the real environment.
 * Checks every setting and the files they name, and throws one ConfigError listing every problem.
 */
export function loadConfig(options: LoadOptions = {}): AppConfig {
  registerFormats();
  const cwd = resolve(options.cwd ?? process.cwd());
  const realEnv = options.env ?? process.env;
  const now = options.now ?? new Date();
  const onWarning = options.onWarning ?? writeStderrLine;
  const findings = new Findings();

  const dotenv = readDotenv(cwd, findings);
  const config = convict(schema, { env: mergeEnvironments(realEnv, dotenv), args: [] });

  const nodeEnv = config.get('env');
  const fileShown = `config/${String(nodeEnv)}.json`;
  const filePaths = new Set<string>();
  if (FORMATS.nodeEnv.check(nodeEnv) === undefined) {
    const read = readTextFile(join(cwd, 'config', `${nodeEnv}.json`), fileShown);
    if ('problem' in read) {
      findings.error(fileShown, read.problem);
    } else if ('text' in read) {
      const parsed = parseConfigFile(read.text);
      for (const problem of parsed.problems) findings.error(fileShown, problem);
      for (const path of parsed.paths) filePaths.add(path);
      // convict re-applies the environment after loading, which keeps the environment on top.
      config.load(parsed.values);
    }
  }

  const raw = config.getProperties();
  const sources: Sources = { realEnv, dotenv, filePaths, fileShown };
  const invalid = new Set<string>();
  const only = options.only === undefined ? null : new Set(options.only);
  if (only !== null) for (const path of only) if (!SETTING_BY_PATH.has(path)) throw new Error(`loadConfig: no setting at ${path}`);
  // convict checks every setting against its format; partial mode reports only the named ones.
  for (const [path, problem] of validateSettings(config, raw)) {
    if (only !== null && !only.has(path)) continue;
    const setting = SETTING_BY_PATH.get(path) as Setting;
    invalid.add(path);
    findings.error(setting.env, problem + sourceNote(setting, sources));
  }
  if (only !== null) {
    for (const line of scrubSecrets(findings.warnings, raw, sources)) onWarning(line);
    if (findings.problems.length > 0) throw new ConfigError(scrubSecrets(findings.problems, raw, sources));
    return partialAppConfig(raw, cwd);
  }
  checkRelations(raw, invalid, findings);
  checkFiles(raw, invalid, cwd, now, findings);
  if (raw.env === 'production') checkProductionFiles(raw, invalid, cwd, findings);

  for (const line of scrubSecrets(findings.warnings, raw, sources)) onWarning(line);
  if (findings.problems.length > 0) throw new ConfigError(scrubSecrets(findings.problems, raw, sources));
  return toAppConfig(raw, cwd);
}

/**
 * For the entry point: on a bad configuration, print each problem on its own stderr line and exit
 * with status 2, before anything listens.
 */
export function loadConfigOrExit(options: LoadOptions = {}): AppConfig {
  try {
    return loadConfig(options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.problems) writeStderrLine(line);
    process.exit(2);
  }
}

/**
 * The configuration for printing: secrets become '[redacted]', or stay '' when unset so an operator
 * can see what is missing; passwords inside URLs are masked too.
 */
export function redactedConfig(config: AppConfig): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const setting of SETTINGS) {
    const value = readPath(copy, setting.path);
    if (setting.sensitive) {
      writePath(copy, setting.path, value === '' || value === null || value === undefined ? '' : REDACTED);
    } else if ((setting.format === 'url' || setting.format === 'optionalUrl' || setting.format === 'natsUrls' || setting.format === 'mqttUrl') && typeof value === 'string' && value !== '') {
      writePath(copy, setting.path, setting.format === 'natsUrls' ? value.split(',').map((entry) => redactUrl(entry.trim())).join(',') : redactUrl(value));
    }
  }
  return copy;
}

export interface SettingDescription {
  env: string;
  path: string;
  default: unknown;
  doc: string;
  sensitive: boolean;
}

/** Every setting, in schema order: drives the README configuration table and `--help`. */
export function describeSettings(): SettingDescription[] {
  return SETTINGS.map((setting) => ({
    env: setting.env,
    path: setting.path,
    default: structuredClone(setting.default),
    doc: setting.doc,
    sensitive: setting.sensitive,
  }));
}

/**
 * Decoding scales with cores while uWS, the actors and the dashboards share the main thread: leave it
 * one core. Measured on 2 cores: 2 workers beat 1 by a little on latency; with the load generator on
 * the same box, 1 is the default there.
 */
export function defaultDecodeWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}
