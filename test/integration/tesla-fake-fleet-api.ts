import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { fieldNames } from '../../src/protocol/proto-schema.js';
import type { AffinePoint } from '../../src/tesla/p256.js';
import { signTelemetryConfigJws, verifyTelemetryConfigJws, type AppKeyPair } from '../../src/tesla/ss256.js';
import { LoopbackServer, readBody, send } from '../helpers/loopback-http.js';

/**
 * A stand-in for Tesla's Fleet API on 127.0.0.1 that checks every request the way Tesla documents it
 * (tesla-protocol.md section 5) and answers with the documented shapes. Anything off is answered the
 * way Tesla would (401, 400, 404) and recorded in `violations`, so a test sees exactly what was wrong.
 */

export interface FakeVehicle {
  keyPaired: boolean;
  firmwareOk?: boolean;
  hardwareOk?: boolean;
  limitReached?: boolean;
  synced: boolean;
  config: Record<string, unknown> | null;
  errors?: Array<Record<string, unknown>>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

const FIELD_SET = new Set(fieldNames());
const TELEMETRY_PATH = /^\/api\/1\/vehicles\/([A-Z0-9]{17})\/fleet_telemetry_config$/;
const ERRORS_PATH = /^\/api\/1\/vehicles\/([A-Z0-9]{17})\/fleet_telemetry_errors$/;

/** What Tesla documents for a config: problems found, one per line. */
export function configShapeProblems(config: unknown): string[] {
  if (typeof config !== 'object' || config === null) return ['config is not an object'];
  const c = config as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof c.hostname !== 'string' || c.hostname === '') problems.push('hostname must be a string');
  if (typeof c.port !== 'number' || !Number.isInteger(c.port)) problems.push(`port must be an integer, got ${JSON.stringify(c.port)}`);
  if (typeof c.ca !== 'string' || !/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/.test(c.ca)) problems.push('ca must be a PEM chain');
  if (c.exp !== undefined && (typeof c.exp !== 'number' || !Number.isInteger(c.exp))) problems.push('exp must be epoch seconds');
  if (typeof c.fields !== 'object' || c.fields === null) problems.push('fields must be an object');
  else {
    for (const [name, spec] of Object.entries(c.fields as Record<string, Record<string, unknown>>)) {
      if (!FIELD_SET.has(name)) problems.push(`unknown field ${name}`);
      if (!Number.isInteger(spec?.interval_seconds) || (spec.interval_seconds as number) <= 0) problems.push(`${name}.interval_seconds must be a positive integer`);
    }
  }
  if (c.alert_types !== undefined && (!Array.isArray(c.alert_types) || !c.alert_types.every((t) => typeof t === 'string'))) problems.push('alert_types must be strings');
  if (c.prefer_typed !== undefined && typeof c.prefer_typed !== 'boolean') problems.push('prefer_typed must be a boolean');
  if (c.delivery_policy !== undefined && typeof c.delivery_policy !== 'string') problems.push('delivery_policy must be a string');
  return problems;
}

const teslaError = (error: string, description = ''): unknown => ({ response: null, error, error_description: description });

export class FakeFleetApi extends LoopbackServer {
  readonly vehicles = new Map<string, FakeVehicle>();
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  partnerErrors: Array<Record<string, unknown>> = [];
  /** The next N requests get 429 with this Retry-After. */
  rateLimit = { remaining: 0, retryAfter: '1' };
  /** The next N requests get 503. */
  failures = 0;
  /** Config writes take this long, so overlapping calls can be seen. */
  configDelayMs = 0;
  maxConcurrentConfigCalls = 0;
  /** Also accept these user tokens (access tokens a fake Tesla auth server issued and still honours). */
  acceptToken: ((token: string) => boolean) | null = null;
  private concurrentConfigCalls = 0;

  constructor(
    readonly accessToken: string,
    readonly partnerToken: string,
    /** The app's registered public key: a JWS signed by another key is refused. */
    readonly appPublicKey: AffinePoint,
  ) {
    super();
  }

  vehicle(vin: string, state: Partial<FakeVehicle> = {}): FakeVehicle {
    const vehicle: FakeVehicle = { keyPaired: true, synced: false, config: null, ...state };
    this.vehicles.set(vin, vehicle);
    return vehicle;
  }

  callsTo(pathPart: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.includes(pathPart));
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let body: unknown;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        this.violations.push(`${req.method} ${path}: body is not JSON`);
        return send(res, 400, teslaError('invalid_request', 'body is not JSON'));
      }
    }
    this.requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body });
    if (this.rateLimit.remaining > 0) {
      this.rateLimit.remaining--;
      return send(res, 429, teslaError('rate_limited', 'Too many requests'), { 'retry-after': this.rateLimit.retryAfter });
    }
    if (this.failures > 0) {
      this.failures--;
      return send(res, 503, teslaError('upstream_unavailable', 'try again'));
    }
    const partner = path === '/api/1/partner_accounts/fleet_telemetry_errors';
    const expected = `Bearer ${partner ? this.partnerToken : this.accessToken}`;
    const presented = req.headers.authorization ?? '';
    const accepted = presented === expected || (!partner && this.acceptToken !== null && this.acceptToken(presented.replace(/^Bearer /, '')));
    if (!accepted) {
      this.violations.push(`${req.method} ${path}: wrong or missing bearer token`);
      return send(res, 401, teslaError('invalid bearer token'));
    }
    if (req.method === 'POST' && req.headers['content-type'] !== 'application/json') {
      this.violations.push(`${req.method} ${path}: content-type ${String(req.headers['content-type'])}`);
      return send(res, 400, teslaError('invalid_request', 'content-type must be application/json'));
    }

    if (req.method === 'POST' && path === '/api/1/vehicles/fleet_telemetry_config_jws') return this.configWrite(res, () => this.pushJws(res, body));
    if (partner && req.method === 'GET') return send(res, 200, { response: { fleet_telemetry_errors: this.partnerErrors } });
    let match = TELEMETRY_PATH.exec(path);
    if (match !== null) {
      const vehicle = this.vehicles.get(match[1]!);
      if (vehicle === undefined) return send(res, 404, teslaError('not_found', 'vehicle not found'));
      if (req.method === 'GET') {
        return send(res, 200, {
          response: { synced: vehicle.synced, config: vehicle.config, limit_reached: vehicle.limitReached === true, key_paired: vehicle.keyPaired },
        });
      }
      if (req.method === 'DELETE') {
        return this.configWrite(res, () => {
          const had = vehicle.config !== null;
          vehicle.config = null;
          vehicle.synced = false;
          send(res, 200, { response: { updated_vehicles: had ? 1 : 0 } });
        });
      }
    }
    match = ERRORS_PATH.exec(path);
    if (match !== null && req.method === 'GET') {
      const vehicle = this.vehicles.get(match[1]!);
      if (vehicle === undefined) return send(res, 404, teslaError('not_found', 'vehicle not found'));
      return send(res, 200, { response: { fleet_telemetry_errors: vehicle.errors ?? [] } });
    }
    this.violations.push(`${req.method} ${path}: no such endpoint`);
    send(res, 404, teslaError('not_found', `no route ${req.method} ${path}`));
  }

  /** Tesla allows one config call at a time; an overlapping one is refused with 429. */
  private async configWrite(res: ServerResponse, work: () => void): Promise<void> {
    this.concurrentConfigCalls++;
    this.maxConcurrentConfigCalls = Math.max(this.maxConcurrentConfigCalls, this.concurrentConfigCalls);
    try {
      if (this.concurrentConfigCalls > 1) {
        this.violations.push('overlapping fleet_telemetry_config calls');
        return send(res, 429, teslaError('rate_limited', 'one fleet_telemetry_config call at a time'), { 'retry-after': '1' });
      }
      if (this.configDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.configDelayMs));
      work();
    } finally {
      this.concurrentConfigCalls--;
    }
  }

  private pushJws(res: ServerResponse, body: unknown): void {
    const b = body as { vins?: unknown; token?: unknown };
    if (!Array.isArray(b?.vins) || b.vins.length === 0 || !b.vins.every((v) => typeof v === 'string') || typeof b.token !== 'string') {
      this.violations.push('fleet_telemetry_config_jws: body must be {vins: [...], token: "<JWS>"}');
      return send(res, 400, teslaError('invalid_request', 'vins and token required'));
    }
    let claims: Record<string, unknown>;
    try {
      claims = verifyTelemetryConfigJws(b.token, this.appPublicKey).claims;
    } catch (error) {
      this.violations.push(`fleet_telemetry_config_jws: ${(error as Error).message}`);
      return send(res, 400, teslaError('invalid_token', (error as Error).message));
    }
    const { iss: _iss, aud: _aud, ...config } = claims;
    const problems = configShapeProblems(config);
    if (problems.length > 0) {
      this.violations.push(...problems.map((p) => `fleet_telemetry_config_jws: ${p}`));
      return send(res, 400, teslaError('invalid_config', problems.join('; ')));
    }
    const skipped = { missing_key: [] as string[], unsupported_hardware: [] as string[], unsupported_firmware: [] as string[], max_configs: [] as string[] };
    let updated = 0;
    for (const vin of b.vins as string[]) {
      const vehicle = this.vehicles.get(vin);
      if (vehicle === undefined || !vehicle.keyPaired) skipped.missing_key.push(vin);
      else if (vehicle.hardwareOk === false) skipped.unsupported_hardware.push(vin);
      else if (vehicle.firmwareOk === false) skipped.unsupported_firmware.push(vin);
      else if (vehicle.limitReached === true) skipped.max_configs.push(vin);
      else {
        vehicle.config = config;
        vehicle.synced = false;
        updated++;
      }
    }
    send(res, 200, { response: { updated_vehicles: updated, skipped_vehicles: skipped } });
  }
}

/**
 * Tesla's vehicle-command proxy: takes {vins, config} at /api/1/vehicles/fleet_telemetry_config, signs
 * the config with the app key and forwards {vins, token} to the Fleet API with the caller's bearer token.
 */
export class FakeCommandProxy extends LoopbackServer {
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];

  constructor(
    private readonly api: FakeFleetApi,
    private readonly key: AppKeyPair,
  ) {
    super();
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    this.requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body });
    if (req.method !== 'POST' || path !== '/api/1/vehicles/fleet_telemetry_config') {
      this.violations.push(`${req.method} ${path}: not the proxy's config endpoint`);
      return send(res, 404, teslaError('not_found'));
    }
    if (!req.headers.authorization?.startsWith('Bearer ')) {
      this.violations.push('missing bearer token');
      return send(res, 401, teslaError('missing bearer token'));
    }
    const b = body as { vins?: unknown; config?: unknown };
    const problems = Array.isArray(b?.vins) && b.vins.length > 0 ? configShapeProblems(b.config) : ['body must be {vins: [...], config: {...}}'];
    if (problems.length > 0) {
      this.violations.push(...problems);
      return send(res, 400, teslaError('invalid_config', problems.join('; ')));
    }
    const token = signTelemetryConfigJws(b.config as Record<string, unknown>, this.key);
    const forwarded = JSON.stringify({ vins: b.vins, token });
    const upstream = await new Promise<{ status: number; headers: Record<string, string>; text: string }>((resolve, reject) => {
      const up = request(
        `${this.api.url}/api/1/vehicles/fleet_telemetry_config_jws`,
        { method: 'POST', headers: { authorization: req.headers.authorization as string, 'content-type': 'application/json' } },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () =>
            resolve({
              status: r.statusCode ?? 0,
              headers: r.headers['retry-after'] ? { 'retry-after': String(r.headers['retry-after']) } : {},
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      up.on('error', reject);
      up.end(forwarded);
    });
    res.writeHead(upstream.status, { 'content-type': 'application/json', ...upstream.headers });
    res.end(upstream.text);
  }
}
