import { createHash } from 'node:crypto';
import { VIN_PATTERN } from './dashboard-grant.js';
import { isObject, parseJson } from '../safety/json-reader.js';

/** Why Tesla's vehicle list could not be had; never carries the token. */
export class VehicleListError extends Error {
  constructor(
    readonly reason: 'tesla_rejected_token' | 'vehicle_list_unavailable',
    message: string,
  ) {
    super(message);
    this.name = 'VehicleListError';
  }
}

export interface TeslaVehicleListOptions {
  /** Fleet API base URL, e.g. https://fleet-api.prd.na.vn.cloud.tesla.com (http only to loopback). */
  apiBaseUrl: string;
  timeoutMs?: number;
  /** Most tokens whose lists are kept at once; the oldest is forgotten first. */
  maxEntries?: number;
  /** A VIN missing from a cached list triggers a refetch at most this often per token. */
  refreshCooldownMs?: number;
  now?: () => number;
}

interface CachedList {
  vins: ReadonlySet<string>;
  /** The token's exp (epoch ms): the list is only good while the token is. */
  expiresAt: number;
  fetchedAt: number;
  inFlight: Promise<ReadonlySet<string>> | null;
}

/** Tesla paginates the list; a person's account with more cars than this is not a dashboard case. */
const MAX_PAGES = 20;

/**
 * The VINs a Tesla access token may see, from `GET /api/1/vehicles` with that token. Lists are cached
 * until the token expires, keyed by a hash of the token so the cache never holds the token itself.
 */
export class TeslaVehicleList {
  private readonly cache = new Map<string, CachedList>();
  private readonly options: Required<Omit<TeslaVehicleListOptions, 'now'>> & { now: () => number };

  constructor(options: TeslaVehicleListOptions) {
    this.options = {
      timeoutMs: 5000,
      maxEntries: 10_000,
      refreshCooldownMs: 30_000,
      now: Date.now,
      ...options,
    };
  }

  /** The cached list, fetched when absent or expired. */
  async vinsFor(token: string, expiresAt: number): Promise<ReadonlySet<string>> {
    const key = cacheKey(token);
    const cached = this.cache.get(key);
    const now = this.options.now();
    if (cached !== undefined && cached.expiresAt > now) return cached.inFlight ?? cached.vins;
    return this.fetchInto(key, token, expiresAt);
  }

  /** Called on a miss: refetch unless the list was fetched moments ago. */
  async refresh(token: string, expiresAt: number): Promise<ReadonlySet<string>> {
    const key = cacheKey(token);
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      if (cached.inFlight !== null) return cached.inFlight;
      if (this.options.now() - cached.fetchedAt < this.options.refreshCooldownMs) return cached.vins;
    }
    return this.fetchInto(key, token, expiresAt);
  }

  get size(): number {
    return this.cache.size;
  }

  private fetchInto(key: string, token: string, expiresAt: number): Promise<ReadonlySet<string>> {
    const previous = this.cache.get(key);
    const entry: CachedList = {
      vins: previous?.vins ?? new Set(),
      expiresAt,
      fetchedAt: previous?.fetchedAt ?? 0,
      inFlight: null,
    };
    const fetching = this.fetchAll(token).then(
      (vins) => {
        entry.vins = vins;
        entry.fetchedAt = this.options.now();
        entry.inFlight = null;
        return vins;
      },
      (error: unknown) => {
        entry.inFlight = null;
        // A failed first fetch leaves nothing worth keeping.
        if (previous === undefined) this.cache.delete(key);
        throw error;
      },
    );
    entry.inFlight = fetching;
    this.cache.delete(key);
    this.cache.set(key, entry);
    this.evict();
    return fetching;
  }

  private evict(): void {
    const now = this.options.now();
    for (const [key, entry] of this.cache) {
      if (entry.expiresAt <= now && entry.inFlight === null) this.cache.delete(key);
    }
    // Map iteration is insertion order, and entries are re-inserted on fetch: oldest first.
    while (this.cache.size > this.options.maxEntries) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }

  private async fetchAll(token: string): Promise<ReadonlySet<string>> {
    const vins = new Set<string>();
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.fetchPage(token, page);
      for (const vehicle of body.response) {
        const vin = isObject(vehicle) && typeof vehicle.vin === 'string' ? vehicle.vin.toUpperCase() : '';
        if (VIN_PATTERN.test(vin)) vins.add(vin);
      }
      if (body.nextPage === null || body.response.length === 0) break;
    }
    return vins;
  }

  private async fetchPage(token: string, page: number): Promise<VehiclesResponse> {
    // Relative to the base URL, so a base with a path keeps it.
    const base = this.options.apiBaseUrl.endsWith('/') ? this.options.apiBaseUrl : `${this.options.apiBaseUrl}/`;
    const url = new URL('api/1/vehicles', base);
    if (page > 1) url.searchParams.set('page', String(page));
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: 'error',
      });
    } catch (error) {
      throw new VehicleListError('vehicle_list_unavailable', `Fleet API vehicle list request failed: ${(error as Error).name}`);
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new VehicleListError('tesla_rejected_token', `Fleet API refused the token for the vehicle list (HTTP ${response.status})`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new VehicleListError('vehicle_list_unavailable', `Fleet API vehicle list answered HTTP ${response.status}`);
    }
    let body: unknown;
    try {
      body = parseJson(await response.text());
    } catch {
      throw new VehicleListError('vehicle_list_unavailable', 'Fleet API vehicle list was not JSON');
    }
    if (!isObject(body) || !Array.isArray(body.response)) {
      throw new VehicleListError('vehicle_list_unavailable', 'Fleet API vehicle list has no `response` array');
    }
    const next = isObject(body.pagination) ? body.pagination.next : undefined;
    return { response: body.response as unknown[], nextPage: next === null || next === undefined ? null : next };
  }
}

/** One page of GET /api/1/vehicles: its entries unread, and whether Tesla says another page follows. */
interface VehiclesResponse {
  response: unknown[];
  nextPage: unknown;
}

function cacheKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
