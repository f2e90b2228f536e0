import { isIP } from 'node:net';
import convict from 'convict';
import { VIN_PATTERN } from '../protocol/vin.js';

/**
 * Value formats of the settings. Each format turns an environment string into a typed value and
 * checks the result. The coercion keeps the raw string when it cannot parse it, so that the check can
 * report exactly what the operator wrote (convict's built-in `int` would turn "8443abc" into 8443 and
 * "abc" into NaN, and its boolean treats anything but "false" as true).
 */

/** The schema item properties a check may read (convict passes the schema item to validators). */
export interface FormatLimits {
  min?: number;
  max?: number;
}

export interface ValueFormat {
  name: string;
  /** One-line reason the value is unacceptable, or undefined when it is fine. */
  check(value: unknown, limits: FormatLimits): string | undefined;
  coerce(raw: string): unknown;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const NODE_ENVS = ['production', 'development', 'test'] as const;

/** nats://, tls://, ws(s):// or a bare host[:port], optionally with user:password@. */
const NATS_URL_SHAPE = /^((nats|tls|ws|wss):\/\/)?([^\s/@]+@)?[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?$/;
const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** How a rejected value is shown: strings quoted so that empty and space-padded values are visible. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const URL_REDACTED = '[redacted]';

/**
 * A URL fit to print: user name, password, every query value and the fragment replaced, since any of
 * them may carry a credential (`https://user:pass@idp/jwks?token=...`). Text that does not parse as a
 * URL gets the same treatment by pattern.
 */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.username !== '') url.username = URL_REDACTED;
    if (url.password !== '') url.password = URL_REDACTED;
    for (const key of [...new Set(url.searchParams.keys())]) url.searchParams.set(key, URL_REDACTED);
    if (url.hash !== '') url.hash = URL_REDACTED;
    return url.toString().replaceAll(encodeURIComponent(URL_REDACTED), URL_REDACTED);
  } catch {
    // Not a URL: anything shaped like user:password@ or after ? / # goes, wherever it stands.
    return value.replace(/[^\s/@]+@/g, `${URL_REDACTED}@`).replace(/([?#]).*$/s, `$1${URL_REDACTED}`);
  }
}

function shownUrl(value: string): string {
  return shown(redactUrl(value));
}

function coerceInteger(raw: string): unknown {
  const trimmed = raw.trim();
  return /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : raw;
}

function coerceBoolean(raw: string): unknown {
  const word = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(word)) return true;
  if (['false', '0', 'no', 'off'].includes(word)) return false;
  return raw;
}

function coerceList(raw: string): unknown {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  return bare.split('.').every((label) => DNS_LABEL.test(label));
}

export function isLoopbackHost(hostname: string): boolean {
  const bare = hostname.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * URL rule shared by the Fleet API base and the JWKS endpoint: https, except plain http to a loopback
 * address (a local mock or a sidecar) since nothing leaves the machine then.
 */
function urlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be an absolute https:// URL, got ${shownUrl(value)}`;
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return `must be an https:// URL (plain http only to a loopback address), got ${shownUrl(value)}`;
}

function integerProblem(value: unknown, limits: FormatLimits): string | undefined {
  const min = limits.min ?? Number.MIN_SAFE_INTEGER;
  const max = limits.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return undefined;
  const range =
    limits.min !== undefined && limits.max !== undefined
      ? `from ${limits.min} to ${limits.max}`
      : limits.min !== undefined
        ? `of at least ${limits.min}`
        : 'number';
  return `must be an integer ${range}, got ${shown(value)}`;
}

export const FORMATS = {
  port: {
    name: 'telemetry-port',
    coerce: coerceInteger,
    check: (value) =>
      typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535
        ? undefined
        : `must be a port number (0-65535), got ${shown(value)}`,
  },
  integer: {
    name: 'telemetry-integer',
    coerce: coerceInteger,
    check: integerProblem,
  },
  idleTimeout: {
    name: 'telemetry-idle-timeout',
    coerce: coerceInteger,
    // uWebSockets.js aborts on other values: it counts idle time in 4-second ticks.
    check: (value) =>
      typeof value === 'number' &&
      Number.isInteger(value) &&
      (value === 0 || (value >= 8 && value <= 960 && value % 4 === 0))
        ? undefined
        : `must be 0 (no timeout) or a multiple of 4 from 8 to 960 (a uWebSockets.js rule), got ${shown(value)}`,
  },
  boolean: {
    name: 'telemetry-boolean',
    coerce: coerceBoolean,
    check: (value) =>
      typeof value === 'boolean' ? undefined : `must be true or false, got ${shown(value)}`,
  },
  logLevel: {
    name: 'telemetry-log-level',
    coerce: (raw) => raw.trim().toLowerCase(),
    check: (value) =>
      (LOG_LEVELS as readonly unknown[]).includes(value)
        ? undefined
        : `must be one of ${LOG_LEVELS.join(', ')}, got ${shown(value)}`,
  },
  nodeEnv: {
    name: 'telemetry-node-env',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      (NODE_ENVS as readonly unknown[]).includes(value)
        ? undefined
        : `must be one of ${NODE_ENVS.join(', ')}, got ${shown(value)}`,
  },
  domain: {
    name: 'telemetry-domain',
    coerce: (raw) => raw.trim().toLowerCase(),
    check: (value) =>
      typeof value === 'string' && (isHostname(value) || isIP(value) !== 0)
        ? undefined
        : `must be a bare DNS name such as telemetry.example.com (no scheme, port or path), got ${shown(value)}`,
  },
  listenHost: {
    name: 'telemetry-listen-host',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      typeof value === 'string' && (isIP(value) !== 0 || isHostname(value))
        ? undefined
        : `must be an IP address to listen on (e.g. 0.0.0.0, 127.0.0.1, ::) or a host name, got ${shown(value)}`,
  },
  file: {
    name: 'telemetry-file',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      typeof value !== 'string'
        ? `must be a file path, got ${shown(value)}`
        : value.length === 0
          ? 'is required (a file path)'
          : undefined,
  },
  optionalFile: {
    name: 'telemetry-optional-file',
    coerce: (raw) => raw.trim(),
    check: (value) => (typeof value === 'string' ? undefined : `must be a file path, got ${shown(value)}`),
  },
  url: {
    name: 'telemetry-url',
    coerce: (raw) => raw.trim(),
    check: (value) => (typeof value === 'string' ? urlProblem(value) : 'must be a URL'),
  },
  optionalUrl: {
    name: 'telemetry-optional-url',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      typeof value !== 'string'
        ? 'must be a URL'
        : value.length === 0
          ? undefined
          : urlProblem(value),
  },
  text: {
    name: 'telemetry-text',
    coerce: (raw) => raw.trim(),
    check: (value) => (typeof value === 'string' ? undefined : `must be text, got ${shown(value)}`),
  },
  /**
   * Secrets are taken verbatim (no trimming: a trailing space may be part of a passphrase) and their
   * checks never describe the value.
   */
  secret: {
    name: 'telemetry-secret',
    coerce: (raw) => raw,
    check: (value) => (typeof value === 'string' ? undefined : 'must be text'),
  },
  originList: {
    name: 'telemetry-origin-list',
    coerce: coerceList,
    check: (value) => {
      if (!isStringList(value)) return `must be a comma-separated list of origins, got ${shown(value)}`;
      const bad = value.filter((origin) => origin !== '*' && !isOrigin(origin));
      return bad.length === 0
        ? undefined
        : `each entry must be an origin like https://dash.example.com (scheme, host, optional port; no path) or *, got ${bad.map(shown).join(', ')}`;
    },
  },
  vinList: {
    name: 'telemetry-vin-list',
    coerce: (raw) => (coerceList(raw) as string[]).map((vin) => vin.toUpperCase()),
    check: (value) => {
      if (!isStringList(value)) return `must be a comma-separated list of VINs, got ${shown(value)}`;
      const bad = value.filter((vin) => !VIN_PATTERN.test(vin.toUpperCase()));
      return bad.length === 0
        ? undefined
        : `each entry must be a VIN (17 letters and digits, no I, O or Q), got ${bad.map(shown).join(', ')}`;
    },
  },
  natsUrls: {
    name: 'telemetry-nats-urls',
    coerce: (raw) => raw.trim(),
    check: (value) => {
      if (typeof value !== 'string') return `must be NATS server URLs, got ${shown(value)}`;
      if (value === '') return undefined;
      const bad = value.split(',').map((entry) => entry.trim()).filter((entry) => !NATS_URL_SHAPE.test(entry));
      return bad.length === 0
        ? undefined
        : `each entry must be a NATS server URL like nats://host:4222 or tls://host:4222, got ${bad.map((entry) => shownUrl(entry)).join(', ')}`;
    },
  },
  natsSubjectPrefix: {
    name: 'telemetry-nats-subject-prefix',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      typeof value === 'string' && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(value)
        ? undefined
        : `must be dot-separated tokens of letters, digits, _ and - (e.g. telemetry), got ${shown(value)}`,
  },
  natsName: {
    name: 'telemetry-nats-name',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      typeof value === 'string' && /^[A-Za-z0-9_-]{0,64}$/.test(value)
        ? undefined
        : `must be at most 64 letters, digits, _ and -, got ${shown(value)}`,
  },
  natsRecordEncoding: {
    name: 'telemetry-nats-record-encoding',
    coerce: (raw) => raw.trim().toLowerCase(),
    check: (value) => (value === 'protobuf' || value === 'json' ? undefined : `must be protobuf or json, got ${shown(value)}`),
  },
  mqttUrl: {
    name: 'telemetry-mqtt-url',
    coerce: (raw) => raw.trim(),
    check: (value) => {
      if (typeof value !== 'string') return `must be an MQTT broker URL, got ${shown(value)}`;
      if (value === '') return undefined;
      const safe = value.replace(/\/\/[^@/]*@/, '//[redacted]@');
      try {
        const url = new URL(value);
        if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol) || url.hostname === '') {
          return `must be mqtt://host:1883, mqtts://host:8883, ws:// or wss://, got ${shown(safe)}`;
        }
        return undefined;
      } catch {
        return `must be mqtt://host:1883, mqtts://host:8883, ws:// or wss://, got ${shown(safe)}`;
      }
    },
  },
  mqttTopicPrefix: {
    name: 'telemetry-mqtt-topic-prefix',
    coerce: (raw) => raw.trim(),
    check: (value) =>
      typeof value === 'string' && /^[^\s/+#$][^\s+#]*$/.test(value) && !value.endsWith('/') && !value.includes('//')
        ? undefined
        : `must be MQTT topic levels separated by / without spaces, +, # or empty levels (e.g. tesla), got ${shown(value)}`,
  },
} satisfies Record<string, ValueFormat>;

export type FormatKey = keyof typeof FORMATS;

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value.replace(/\/$/, '');
  } catch {
    return false;
  }
}

/**
 * What a format's convict validator throws: the one-line problem. convict adds the setting's path
 * (`fullName`) to the thrown object before it folds every problem into one message, so the loader
 * keeps the objects (see validateSettings) and reports them one line per setting, by env name.
 */
export class SettingProblem extends Error {
  override readonly name = 'SettingProblem';
  /** Set by convict: the setting's dotted path. */
  fullName?: string;
}

/** The problems of the validate() call in progress (convict validates synchronously). */
let collecting: SettingProblem[] | null = null;

let registered = false;

/** convict keeps formats in a process-wide registry; registering twice is harmless but pointless. */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  for (const format of Object.values(FORMATS) as ValueFormat[]) {
    convict.addFormat({
      name: format.name,
      validate(value: unknown, schemaItem: convict.SchemaObj) {
        const problem = format.check(value, schemaItem as FormatLimits);
        if (problem === undefined) return;
        const error = new SettingProblem(problem);
        collecting?.push(error);
        throw error;
      },
      coerce: (raw: string) => format.coerce(raw),
    });
  }
}

/**
 * Runs `validate` (convict's validate() of one config) and returns what the formats refused during
 * it, each with convict's `fullName` set. A failure that is not a format's is rethrown as it is.
 */
export function collectSettingProblems(validate: () => void): SettingProblem[] {
  const found: SettingProblem[] = [];
  collecting = found;
  try {
    validate();
  } catch (error) {
    if (found.length === 0) throw error;
  } finally {
    collecting = null;
  }
  return found;
}
