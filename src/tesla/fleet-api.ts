import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as delayFor } from 'node:timers/promises';
import type { Logger } from 'pino';

/**
 * A small Fleet API client for the fleet telemetry endpoints (tesla-protocol.md section 5). It retries
 * 429 and 5xx with backoff, honouring Retry-After, and runs config writes one at a time: Tesla allows a
 * single fleet_telemetry_config call in flight per account. The bearer token goes into the request
 * header and nowhere else: errors and logs carry the endpoint name, status and Tesla's message only.
 */

/** Bounded endpoint names, used as a metric label and in messages. */
export type FleetEndpoint =
  | 'fleet_telemetry_config_push'
  | 'fleet_telemetry_config_jws'
  | 'fleet_telemetry_config_get'
  | 'fleet_telemetry_config_delete'
  | 'partner_fleet_telemetry_errors'
  | 'vehicle_fleet_telemetry_errors'
  | 'partner_accounts_register'
  | 'partner_accounts_public_key'
  | 'users_region';

export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx' | 'network_error';

export interface FleetApiOptions {
  baseUrl: string;
  /** A fixed token, or where a fresh one comes from (TESLA_TOKEN_FILE refreshes before expiry). */
  accessToken: string | (() => Promise<string>);
  timeoutMs: number;
  /** Extra CA for the server's certificate (the vehicle-command proxy runs with its own). */
  caPem?: string;
  /** Attempts per call including the first (default 4). */
  maxAttempts?: number;
  /** First backoff delay; doubles per retry (default 1000 ms). */
  baseDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the call fails saying how long Tesla asked for. */
  maxDelayMs?: number;
  logger?: Logger;
  /** Called once per HTTP attempt (metrics). */
  onAttempt?: (endpoint: FleetEndpoint, statusClass: StatusClass) => void;
  sleep?: (ms: number) => Promise<void>;
}

export class FleetApiError extends Error {
  constructor(
    readonly endpoint: FleetEndpoint,
    /** HTTP status, or null when no response came back. */
    readonly status: number | null,
    /** Tesla's own wording, when the response carried one. */
    readonly teslaMessage: string,
    message: string,
  ) {
    super(message);
    this.name = 'FleetApiError';
  }
}

export interface SkippedVehicles {
  missing_key: string[];
  unsupported_hardware: string[];
  unsupported_firmware: string[];
  max_configs: string[];
  /** Reasons Tesla may add later are kept rather than dropped. */
  [reason: string]: string[];
}

export interface PushResult {
  updated_vehicles: number;
  skipped_vehicles: SkippedVehicles;
}

export interface ConfigStatus {
  synced: boolean;
  /** The config the car has, or null when it has none. */
  config: Record<string, unknown> | null;
  limit_reached: boolean;
  key_paired: boolean;
}

export interface TelemetryErrorEntry {
  name: string;
  error: string;
  vin: string;
  created_at?: string;
  error_name?: string;
  txID?: string;
}

interface Call {
  endpoint: FleetEndpoint;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  /** Config writes: serialised behind each other. */
  exclusive?: boolean;
}

interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

class NetworkError extends Error {}

export class FleetApiClient {
  private readonly options: FleetApiOptions;
  private readonly base: URL;
  private exclusiveTail: Promise<unknown> = Promise.resolve();

  constructor(options: FleetApiOptions) {
    this.options = options;
    this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    if (options.accessToken === '') throw new Error('a Fleet API access token is required (TESLA_ACCESS_TOKEN)');
  }

  /** Through the vehicle-command proxy, which signs `config` and forwards the JWS. */
  pushConfig(vins: string[], config: Record<string, unknown>): Promise<PushResult> {
    return this.call({
      endpoint: 'fleet_telemetry_config_push',
      method: 'POST',
      path: 'api/1/vehicles/fleet_telemetry_config',
      body: { vins, config },
      exclusive: true,
    }).then((response) => asPushResult(response, 'fleet_telemetry_config_push'));
  }

  /** A config we signed ourselves (Tesla.SS256 JWS). */
  pushConfigJws(vins: string[], token: string): Promise<PushResult> {
    return this.call({
      endpoint: 'fleet_telemetry_config_jws',
      method: 'POST',
      path: 'api/1/vehicles/fleet_telemetry_config_jws',
      body: { vins, token },
      exclusive: true,
    }).then((response) => asPushResult(response, 'fleet_telemetry_config_jws'));
  }

  async configStatus(vin: string): Promise<ConfigStatus> {
    const response = await this.call({
      endpoint: 'fleet_telemetry_config_get',
      method: 'GET',
      path: `api/1/vehicles/${encodeURIComponent(vin)}/fleet_telemetry_config`,
    });
    if (!isObject(response)) throw unexpected('fleet_telemetry_config_get');
    const config = response.config;
    return {
      synced: response.synced === true,
      config: isObject(config) ? config : null,
      limit_reached: response.limit_reached === true,
      key_paired: response.key_paired === true,
    };
  }

  async deleteConfig(vin: string): Promise<{ updated_vehicles: number }> {
    const response = await this.call({
      endpoint: 'fleet_telemetry_config_delete',
      method: 'DELETE',
      path: `api/1/vehicles/${encodeURIComponent(vin)}/fleet_telemetry_config`,
      exclusive: true,
    });
    if (!isObject(response) || typeof response.updated_vehicles !== 'number') throw unexpected('fleet_telemetry_config_delete');
    return { updated_vehicles: response.updated_vehicles };
  }

  /** Errors Tesla's side saw for every car of the partner account (needs a partner token). */
  async partnerErrors(): Promise<TelemetryErrorEntry[]> {
    const response = await this.call({
      endpoint: 'partner_fleet_telemetry_errors',
      method: 'GET',
      path: 'api/1/partner_accounts/fleet_telemetry_errors',
    });
    return asErrorList(response, 'partner_fleet_telemetry_errors');
  }

  async vehicleErrors(vin: string): Promise<TelemetryErrorEntry[]> {
    const response = await this.call({
      endpoint: 'vehicle_fleet_telemetry_errors',
      method: 'GET',
      path: `api/1/vehicles/${encodeURIComponent(vin)}/fleet_telemetry_errors`,
    });
    return asErrorList(response, 'vehicle_fleet_telemetry_errors').map((entry) => ({ ...entry, vin: entry.vin || vin }));
  }

  /** Registers DOMAIN for the partner account (partner token); Tesla fetches the public key meanwhile. */
  async registerPartner(domain: string): Promise<Record<string, unknown>> {
    const response = await this.call({ endpoint: 'partner_accounts_register', method: 'POST', path: 'api/1/partner_accounts', body: { domain } });
    return isObject(response) ? response : {};
  }

  /** The public key Tesla holds for DOMAIN (hex of the uncompressed P-256 point). */
  async partnerPublicKey(domain: string): Promise<string> {
    const response = await this.call({
      endpoint: 'partner_accounts_public_key',
      method: 'GET',
      path: `api/1/partner_accounts/public_key?domain=${encodeURIComponent(domain)}`,
    });
    if (!isObject(response) || typeof response.public_key !== 'string') throw unexpected('partner_accounts_public_key');
    return response.public_key;
  }

  /** The user token's region and its Fleet API base URL. */
  async userRegion(): Promise<{ region: string; fleetApiBaseUrl: string }> {
    const response = await this.call({ endpoint: 'users_region', method: 'GET', path: 'api/1/users/region' });
    if (!isObject(response) || typeof response.fleet_api_base_url !== 'string') throw unexpected('users_region');
    return { region: String(response.region ?? ''), fleetApiBaseUrl: response.fleet_api_base_url };
  }

  /** Runs a call (serialised when exclusive) and returns the `response` member of Tesla's reply. */
  private call(call: Call): Promise<unknown> {
    if (!call.exclusive) return this.withRetries(call);
    const run = this.exclusiveTail.then(() => this.withRetries(call));
    this.exclusiveTail = run.catch(() => undefined);
    return run;
  }

  /** Tesla's `response` member, unread: each endpoint's method checks the shape it expects. */
  private async withRetries(call: Call): Promise<unknown> {
    const maxAttempts = this.options.maxAttempts ?? 4;
    const baseDelay = this.options.baseDelayMs ?? 1000;
    const maxDelay = this.options.maxDelayMs ?? 60_000;
    const sleep = this.options.sleep ?? ((ms: number) => delayFor(ms));
    for (let attempt = 1; ; attempt++) {
      let raw: RawResponse;
      // Outside the retry: a token that cannot be had (revoked refresh token) is not a network blip.
      const token = typeof this.options.accessToken === 'string' ? this.options.accessToken : await this.options.accessToken();
      try {
        raw = await this.sendWith(call, token);
      } catch (error) {
        this.options.onAttempt?.(call.endpoint, 'network_error');
        const reason = (error as Error).message;
        if (attempt >= maxAttempts) {
          throw new FleetApiError(call.endpoint, null, '', `${call.endpoint}: no response from ${this.base.origin} after ${attempt} attempts (${reason})`);
        }
        const delay = baseDelay * 2 ** (attempt - 1);
        this.options.logger?.warn({ endpoint: call.endpoint, attempt, delayMs: delay, reason }, 'tesla_api_retry');
        await sleep(delay);
        continue;
      }
      this.options.onAttempt?.(call.endpoint, statusClassOf(raw.status));
      const parsed = parseJson(raw.text);
      if (raw.status >= 200 && raw.status < 300) {
        if (!isObject(parsed) || !('response' in parsed)) throw unexpected(call.endpoint, raw.status);
        return parsed.response;
      }
      const teslaMessage = teslaMessageOf(parsed, raw.text);
      const retryable = raw.status === 429 || raw.status >= 500;
      if (!retryable || attempt >= maxAttempts) {
        throw new FleetApiError(call.endpoint, raw.status, teslaMessage, describeFailure(call.endpoint, raw.status, teslaMessage, attempt));
      }
      const asked = retryAfterMs(raw.headers['retry-after']);
      if (asked !== null && asked > maxDelay) {
        throw new FleetApiError(
          call.endpoint,
          raw.status,
          teslaMessage,
          `${call.endpoint}: HTTP ${raw.status}, Tesla asks to retry after ${Math.ceil(asked / 1000)} s${teslaMessage ? `: ${teslaMessage}` : ''}`,
        );
      }
      const delay = asked ?? baseDelay * 2 ** (attempt - 1);
      this.options.logger?.warn({ endpoint: call.endpoint, status: raw.status, attempt, delayMs: delay }, 'tesla_api_retry');
      await sleep(delay);
    }
  }

  private sendWith(call: Call, token: string): Promise<RawResponse> {
    const url = new URL(call.path, this.base);
    const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body), 'utf8');
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = request(
        url,
        {
          method: call.method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
          },
          ...(this.options.caPem ? { ca: this.options.caPem } : {}),
          timeout: this.options.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (error) => reject(new NetworkError(error.message)));
        },
      );
      req.on('timeout', () => req.destroy(new NetworkError(`timed out after ${this.options.timeoutMs} ms`)));
      req.on('error', (error) => reject(new NetworkError(error.message)));
      req.end(body);
    });
  }
}

export function statusClassOf(status: number): StatusClass {
  if (status >= 200 && status < 300) return '2xx';
  if (status >= 300 && status < 400) return '3xx';
  if (status >= 400 && status < 500) return '4xx';
  return '5xx';
}

/** Retry-After in delta-seconds or HTTP-date form; null when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return null;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Tesla errors look like {"response": null, "error": "...", "error_description": "..."}. */
function teslaMessageOf(parsed: unknown, text: string): string {
  if (isObject(parsed)) {
    const parts = [parsed.error, parsed.error_description, parsed.message].filter(
      (part): part is string => typeof part === 'string' && part.trim() !== '',
    );
    if (parts.length > 0) return [...new Set(parts)].join(': ');
  }
  return text.trim().slice(0, 300);
}

const STATUS_HINTS: Record<number, string> = {
  401: 'the access token is missing, expired or invalid (refresh TESLA_ACCESS_TOKEN)',
  403: 'the token lacks a scope this call needs (vehicle_device_data / vehicle_cmds), or the app is not allowed for this car',
  404: 'unknown vehicle or endpoint: check the VIN and the region base URL (TESLA_API_BASE_URL)',
  408: 'the car did not answer in time (asleep or offline)',
  412: 'the partner account is not registered in this region (POST /api/1/partner_accounts first)',
  421: 'wrong region: this account is served by another Fleet API base URL',
  422: 'Tesla refused the request body',
  429: 'rate limited by Tesla',
};

function describeFailure(endpoint: FleetEndpoint, status: number, teslaMessage: string, attempts: number): string {
  const hint = STATUS_HINTS[status] ?? (status >= 500 ? 'Tesla-side failure' : 'request refused');
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  return `${endpoint}: HTTP ${status}${tries} (${hint})${teslaMessage ? `: Tesla says "${teslaMessage}"` : ''}`;
}

function unexpected(endpoint: FleetEndpoint, status = 200): FleetApiError {
  return new FleetApiError(endpoint, status, '', `${endpoint}: unexpected response shape from the Fleet API`);
}

function asPushResult(response: unknown, endpoint: FleetEndpoint): PushResult {
  if (!isObject(response) || typeof response.updated_vehicles !== 'number') throw unexpected(endpoint);
  const skipped: SkippedVehicles = { missing_key: [], unsupported_hardware: [], unsupported_firmware: [], max_configs: [] };
  if (isObject(response.skipped_vehicles)) {
    for (const [reason, vins] of Object.entries(response.skipped_vehicles)) {
      skipped[reason] = Array.isArray(vins) ? vins.filter((vin): vin is string => typeof vin === 'string') : [];
    }
  }
  return { updated_vehicles: response.updated_vehicles, skipped_vehicles: skipped };
}

function asErrorList(response: unknown, endpoint: FleetEndpoint): TelemetryErrorEntry[] {
  if (!isObject(response)) throw unexpected(endpoint);
  const list = response.fleet_telemetry_errors;
  if (list === null || list === undefined) return [];
  if (!Array.isArray(list)) throw unexpected(endpoint);
  return list.filter(isObject).map((entry) => ({
    name: String(entry.name ?? ''),
    error: String(entry.error ?? ''),
    vin: String(entry.vin ?? ''),
    ...(typeof entry.created_at === 'string' ? { created_at: entry.created_at } : {}),
    ...(typeof entry.error_name === 'string' ? { error_name: entry.error_name } : {}),
    ...(typeof entry.txID === 'string' ? { txID: entry.txID } : {}),
  }));
}
