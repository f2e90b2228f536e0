import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { writeAtomically } from '../pki/dev-certs.js';
import { OAuthError, randomToken, type TeslaOAuth, type TokenSet } from '../tesla/tesla-oauth.js';
import { arrayAt, numberField, objectAt, optionalString, parseJson, stringArrayField, stringField } from '../safety/json-reader.js';

/**
 * Sign in with Tesla sessions, held on the server: the browser has only a random session id in an
 * HttpOnly cookie, never a Tesla token. Sessions are keyed by the SHA-256 of that id, so the store
 * (memory, and the encrypted file or KV bucket) never holds a usable cookie. Each session refreshes
 * its Tesla access token before it expires, keeps the rotated refresh token, and refetches the VINs
 * Tesla lists for it; a refresh Tesla refuses (revoked consent) ends the session.
 */

export interface SessionRecord {
  /** base64url SHA-256 of the cookie value. */
  id: string;
  subject: string | null;
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
  accessIssuedAt: number;
  scopes: string[];
  vins: string[];
  vinsFetchedAt: number;
  /** The account's region (GET /api/1/users/region at sign-in); empty = TESLA_API_BASE_URL. */
  apiBaseUrl?: string;
  createdAt: number;
  /** The session ends here at the latest (DASHBOARD_SESSION_MAX_AGE_SECONDS). */
  expiresAt: number;
}

/** A stored session as read back (file or KV), each field checked; a ShapeError names the first bad one. */
export function readSessionRecord(value: unknown, where: string): SessionRecord {
  const o = objectAt(value, where);
  const apiBaseUrl = optionalString(o, 'apiBaseUrl', where);
  const subject = optionalString(o, 'subject', where);
  return {
    id: stringField(o, 'id', where),
    subject: subject ?? null,
    accessToken: stringField(o, 'accessToken', where),
    refreshToken: stringField(o, 'refreshToken', where),
    accessExpiresAt: numberField(o, 'accessExpiresAt', where),
    accessIssuedAt: numberField(o, 'accessIssuedAt', where),
    scopes: stringArrayField(o, 'scopes', where),
    vins: stringArrayField(o, 'vins', where),
    vinsFetchedAt: numberField(o, 'vinsFetchedAt', where),
    ...(apiBaseUrl === undefined ? {} : { apiBaseUrl }),
    createdAt: numberField(o, 'createdAt', where),
    expiresAt: numberField(o, 'expiresAt', where),
  };
}

export type SessionEndReason = 'signed_out' | 'revoked' | 'expired' | 'ended_elsewhere';

/** Where sessions survive a restart: an encrypted file, a NATS KV bucket, or nowhere (memory only). */
export interface SessionPersistence {
  load(): Promise<SessionRecord[]>;
  /** The whole set after a change (file), or the one changed record (KV). */
  saved(record: SessionRecord | null, id: string, all: readonly SessionRecord[]): Promise<void>;
  /** Shared stores (KV): the latest copy, which another instance may have refreshed. */
  fetch?(id: string): Promise<SessionRecord | null>;
  /** Shared stores: other instances' changes as they happen; returns the stop function. */
  watch?(onPut: (record: SessionRecord) => void, onDelete: (id: string) => void): Promise<() => void>;
}

/** The account's cars at its region's Fleet API base URL (empty = the configured one). */
export type VehicleLister = (accessToken: string, apiBaseUrl: string) => Promise<ReadonlySet<string>>;

export interface SessionStoreOptions {
  oauth: TeslaOAuth;
  listVehicles: VehicleLister;
  persistence?: SessionPersistence | null;
  maxAgeMs: number;
  vehicleListRefreshMs: number;
  /** Refresh the access token this long before it expires (default 5 min, at most half its lifetime). */
  refreshBeforeMs?: number;
  /** How often sessions are looked over for refreshes (default 30 s). */
  sweepIntervalMs?: number;
  /** Most sessions kept; the oldest goes first. */
  maxSessions?: number;
  logger: Logger;
  onRefresh?: (result: 'ok' | 'revoked' | 'failed') => void;
  onCountChange?: (count: number) => void;
  now?: () => number;
}

export function sessionIdOf(cookieValue: string): string {
  return createHash('sha256').update(cookieValue).digest('base64url');
}

export class SessionStore extends EventEmitter<{ ended: [id: string, reason: SessionEndReason]; vinsRemoved: [id: string] }> {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly refreshing = new Map<string, Promise<SessionRecord | null>>();
  private readonly now: () => number;
  private sweepTimer: NodeJS.Timeout | null = null;
  private persistTail: Promise<void> = Promise.resolve();
  private unwatch: (() => void) | null = null;

  constructor(private readonly options: SessionStoreOptions) {
    super();
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  async start(): Promise<void> {
    const loaded = (await this.options.persistence?.load()) ?? [];
    const now = this.now();
    for (const record of loaded) if (record.expiresAt > now) this.sessions.set(record.id, record);
    this.options.onCountChange?.(this.sessions.size);
    const watch = this.options.persistence?.watch;
    if (watch !== undefined) {
      this.unwatch = await watch.call(
        this.options.persistence,
        (record) => {
          this.sessions.set(record.id, record);
          this.options.onCountChange?.(this.sessions.size);
        },
        (id) => {
          // Signed out (or revoked) on another instance: this instance's sockets of it close too.
          if (!this.sessions.delete(id)) return;
          this.options.onCountChange?.(this.sessions.size);
          this.emit('ended', id, 'ended_elsewhere');
        },
      );
    }
    const interval = this.options.sweepIntervalMs ?? 30_000;
    this.sweepTimer = setInterval(() => void this.sweep(), interval);
    this.sweepTimer.unref();
  }

  stop(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.unwatch?.();
    this.unwatch = null;
    return this.persistTail;
  }

  /** A new session for fresh tokens; returns the cookie value (shown to the browser once). */
  async create(tokens: TokenSet, vins: ReadonlySet<string>, apiBaseUrl = ''): Promise<string> {
    const cookie = randomToken(32);
    const now = this.now();
    const record: SessionRecord = {
      id: sessionIdOf(cookie),
      subject: tokens.subject,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      accessExpiresAt: tokens.expiresAt,
      accessIssuedAt: now,
      scopes: tokens.scopes,
      vins: [...vins].sort(),
      vinsFetchedAt: now,
      apiBaseUrl,
      createdAt: now,
      expiresAt: now + this.options.maxAgeMs,
    };
    this.sessions.set(record.id, record);
    this.evictOverflow();
    this.options.onCountChange?.(this.sessions.size);
    await this.persist(record.id);
    return cookie;
  }

  /** The live session for a cookie value, or null. */
  lookup(cookie: string): SessionRecord | null {
    const record = this.sessions.get(sessionIdOf(cookie));
    if (record === undefined) return null;
    if (record.expiresAt <= this.now()) {
      void this.end(record.id, 'expired');
      return null;
    }
    return record;
  }

  /** `lookup`, then the shared store (KV mode): a sign-in on another instance may not have reached us yet. */
  async find(cookie: string): Promise<SessionRecord | null> {
    const known = this.lookup(cookie);
    const fetch = this.options.persistence?.fetch;
    if (known !== null || fetch === undefined) return known;
    const stored = await fetch.call(this.options.persistence, sessionIdOf(cookie)).catch(() => null);
    if (stored === null || stored.expiresAt <= this.now()) return null;
    this.sessions.set(stored.id, stored);
    this.options.onCountChange?.(this.sessions.size);
    return stored;
  }

  async end(id: string, reason: SessionEndReason): Promise<void> {
    const had = this.sessions.delete(id);
    if (had) {
      this.options.onCountChange?.(this.sessions.size);
      this.options.logger.info({ reason }, 'dashboard_session_ended');
      this.emit('ended', id, reason);
    }
    // A shared store may hold a session this instance never loaded: delete it there all the same.
    if (had || this.options.persistence?.fetch !== undefined) await this.persist(id);
  }

  /** The session's VINs, fetched again from Tesla unless fetched within `minAgeMs`. */
  async vinsFor(id: string, minAgeMs: number): Promise<ReadonlySet<string>> {
    const record = this.sessions.get(id);
    if (record === undefined) return new Set();
    if (this.now() - record.vinsFetchedAt < minAgeMs) return new Set(record.vins);
    await this.refreshVins(record);
    return new Set(this.sessions.get(id)?.vins ?? []);
  }

  /** Refresh what is due: access tokens near expiry, VIN lists past their age. */
  async sweep(): Promise<void> {
    const now = this.now();
    for (const record of [...this.sessions.values()]) {
      if (record.expiresAt <= now) {
        await this.end(record.id, 'expired');
        continue;
      }
      if (this.needsRefresh(record)) await this.refreshToken(record.id);
      const current = this.sessions.get(record.id);
      if (current !== undefined && now - current.vinsFetchedAt >= this.options.vehicleListRefreshMs) await this.refreshVins(current);
    }
  }

  /** The session with an access token good for a while, refreshing once for all callers. */
  async fresh(id: string): Promise<SessionRecord | null> {
    const record = this.sessions.get(id);
    if (record === undefined) return null;
    if (!this.needsRefresh(record)) return record;
    return this.refreshToken(id);
  }

  private needsRefresh(record: SessionRecord): boolean {
    // A short-lived token is refreshed at half its life rather than never being "fresh".
    const lifetime = Math.max(0, record.accessExpiresAt - record.accessIssuedAt);
    const before = Math.min(this.options.refreshBeforeMs ?? 5 * 60_000, lifetime / 2);
    return record.accessExpiresAt - before <= this.now();
  }

  private refreshToken(id: string): Promise<SessionRecord | null> {
    let running = this.refreshing.get(id);
    if (running === undefined) {
      running = this.doRefresh(id).finally(() => this.refreshing.delete(id));
      this.refreshing.set(id, running);
    }
    return running;
  }

  private async doRefresh(id: string): Promise<SessionRecord | null> {
    let record = this.sessions.get(id);
    if (record === undefined) return null;
    // Another instance may have refreshed already: its rotated refresh token is the only live one.
    const adopted = await this.adoptShared(record);
    if (adopted === null) return null;
    record = adopted;
    if (!this.needsRefresh(record)) return record;
    const used = record.refreshToken;
    let tokens: TokenSet;
    try {
      tokens = await this.options.oauth.refresh(used);
    } catch (error) {
      const refused = error instanceof OAuthError && (error.reason === 'revoked' || error.reason === 'bad_client');
      if (refused) {
        // Refused because another instance rotated it a moment ago, or really revoked?
        const latest = await this.adoptShared(record);
        if (latest !== null && latest.refreshToken !== used) return latest;
      }
      const revoked = refused;
      this.options.onRefresh?.(revoked ? 'revoked' : 'failed');
      if (revoked) {
        this.options.logger.warn({ reason: (error as OAuthError).teslaError || 'refused' }, 'dashboard_session_refresh_refused');
        await this.end(id, 'revoked');
        return null;
      }
      // Tesla unreachable: keep the session, the next sweep tries again.
      this.options.logger.warn({ error: (error as Error).message }, 'dashboard_session_refresh_failed');
      return this.sessions.get(id) ?? null;
    }
    const current = this.sessions.get(id);
    if (current === undefined) return null;
    current.accessToken = tokens.accessToken;
    // Tesla rotates refresh tokens: the old one is now dead, so the new one is kept before anything else.
    if (tokens.refreshToken !== '') current.refreshToken = tokens.refreshToken;
    current.accessExpiresAt = tokens.expiresAt;
    current.accessIssuedAt = this.now();
    if (tokens.scopes.length > 0) current.scopes = tokens.scopes;
    this.options.onRefresh?.('ok');
    await this.persist(id);
    return current;
  }

  /** The shared store's copy when it is newer than ours (KV mode); ours otherwise; null when it is gone. */
  private async adoptShared(record: SessionRecord): Promise<SessionRecord | null> {
    const fetch = this.options.persistence?.fetch;
    if (fetch === undefined) return record;
    let stored: SessionRecord | null;
    try {
      stored = await fetch.call(this.options.persistence, record.id);
    } catch {
      return record; // the store is unreachable: go on with what we have
    }
    if (stored === null) return this.sessions.get(record.id) === undefined ? null : record;
    if (stored.accessIssuedAt > record.accessIssuedAt || stored.refreshToken !== record.refreshToken) {
      if (this.sessions.has(record.id)) this.sessions.set(record.id, stored);
      return stored;
    }
    return record;
  }

  private async refreshVins(record: SessionRecord): Promise<void> {
    const fresh = await this.fresh(record.id);
    if (fresh === null) return;
    try {
      const vins = await this.options.listVehicles(fresh.accessToken, fresh.apiBaseUrl ?? '');
      const removed = fresh.vins.some((vin) => !vins.has(vin));
      fresh.vins = [...vins].sort();
      // A car that left the account must stop streaming to this session's open pages now.
      if (removed) this.emit('vinsRemoved', fresh.id);
      fresh.vinsFetchedAt = this.now();
      await this.persist(fresh.id);
    } catch (error) {
      // Tesla being unreachable means "no new cars", not "lose the ones we know".
      this.options.logger.warn({ error: (error as Error).message }, 'dashboard_session_vehicle_list_failed');
    }
  }

  private evictOverflow(): void {
    const max = this.options.maxSessions ?? 100_000;
    while (this.sessions.size > max) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
      this.emit('ended', oldest, 'expired');
    }
  }

  /** Writes go one after another, each with the state at its turn. */
  private persist(id: string): Promise<void> {
    const persistence = this.options.persistence;
    if (persistence === null || persistence === undefined) return Promise.resolve();
    this.persistTail = this.persistTail
      .then(() => persistence.saved(this.sessions.get(id) ?? null, id, [...this.sessions.values()]))
      .catch((error: unknown) => this.options.logger.error({ error: (error as Error).message }, 'dashboard_session_persist_failed'));
    return this.persistTail;
  }
}

/** A 32-byte key for one purpose, derived from DASHBOARD_SESSION_SECRET. */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), `fleet-telemetry ${purpose}`, 32));
}

/** AES-256-GCM: iv | tag | ciphertext, base64. */
export function seal(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function unseal(key: Buffer, sealed: string): string {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 28) throw new Error('sealed data too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}

/** DASHBOARD_SESSION_FILE: the whole session set, sealed, rewritten (write-then-rename, 0600) on change. */
export class EncryptedSessionFile implements SessionPersistence {
  private readonly key: Buffer;

  constructor(
    private readonly path: string,
    secret: string,
    private readonly logger: Logger,
  ) {
    this.key = deriveKey(secret, 'dashboard session store');
  }

  async load(): Promise<SessionRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`DASHBOARD_SESSION_FILE: cannot read ${this.path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    try {
      const parsed = objectAt(parseJson(unseal(this.key, text.trim())), 'session file');
      return parsed.sessions === undefined ? [] : arrayAt(parsed.sessions, 'session file.sessions').map((record, i) => readSessionRecord(record, `session file.sessions[${i}]`));
    } catch {
      // Another DASHBOARD_SESSION_SECRET (or a damaged file): everyone signs in again; nothing else is lost.
      this.logger.warn({ sessionFile: this.path }, 'dashboard_session_file_unreadable');
      return [];
    }
  }

  async saved(_record: SessionRecord | null, _id: string, all: readonly SessionRecord[]): Promise<void> {
    await writeAtomically(this.path, `${seal(this.key, JSON.stringify({ v: 1, sessions: all }))}\n`, 0o600);
  }
}
