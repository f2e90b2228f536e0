import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as delayFor } from 'node:timers/promises';
import type { Logger } from 'pino';
import { writeAtomically } from '../pki/dev-certs.js';
import { OAuthError, type TeslaOAuth, type TokenSet } from './tesla-oauth.js';
import { objectAt, parseJson } from '../safety/json-reader.js';

/**
 * TESLA_TOKEN_FILE: the operator's Tesla tokens (from `fleet-telemetry auth login`), so the server and
 * every CLI command get an access token that is never stale. The access token is refreshed a few
 * minutes before it expires; Tesla rotates the refresh token on every refresh, so the new one is
 * written (write-then-rename, mode 0600) before the new access token is used. One refresh at a time:
 * in this process by sharing the promise, across processes (the server and a CLI command) by a lock
 * file, after which the file is read again in case the other process already refreshed.
 */

export interface StoredTokens {
  refreshToken: string;
  accessToken: string;
  /** Epoch ms of the access token's expiry. */
  expiresAt: number;
  scopes: string[];
  subject: string | null;
  /** The Fleet API base URL of the account's region (GET /api/1/users/region), when known. */
  apiBaseUrl: string;
}

export type RefreshResult = 'ok' | 'revoked' | 'failed';

export interface TokenFileOptions {
  /** Refresh this long before expiry (default 5 minutes). */
  refreshBeforeMs?: number;
  logger?: Logger;
  onRefresh?: (result: RefreshResult) => void;
  now?: () => number;
  /** A lock older than this was left by a process that died mid-refresh. */
  staleLockMs?: number;
}

export class TokenFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenFileError';
  }
}

const LOCK_POLL_MS = 50;
const LOCK_WAIT_MS = 20_000;

export async function readTokenFile(path: string): Promise<StoredTokens> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new TokenFileError(`TESLA_TOKEN_FILE: cannot read ${path} (${code}); run \`fleet-telemetry auth login\` first`);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = objectAt(parseJson(text), 'token file');
  } catch {
    throw new TokenFileError(`TESLA_TOKEN_FILE: ${path} is not a JSON object; run \`fleet-telemetry auth login\` again`);
  }
  if (typeof parsed.refresh_token !== 'string' || parsed.refresh_token === '') {
    throw new TokenFileError(`TESLA_TOKEN_FILE: ${path} holds no refresh_token; run \`fleet-telemetry auth login\` again`);
  }
  return {
    refreshToken: parsed.refresh_token,
    accessToken: typeof parsed.access_token === 'string' ? parsed.access_token : '',
    expiresAt: typeof parsed.expires_at === 'number' ? parsed.expires_at : 0,
    scopes: Array.isArray(parsed.scopes) ? parsed.scopes.filter((s): s is string => typeof s === 'string') : [],
    subject: typeof parsed.subject === 'string' ? parsed.subject : null,
    apiBaseUrl: typeof parsed.api_base_url === 'string' ? parsed.api_base_url : '',
  };
}

export async function writeTokenFile(path: string, tokens: StoredTokens): Promise<void> {
  const body = {
    refresh_token: tokens.refreshToken,
    access_token: tokens.accessToken,
    expires_at: tokens.expiresAt,
    scopes: tokens.scopes,
    subject: tokens.subject,
    api_base_url: tokens.apiBaseUrl,
    updated_at: new Date().toISOString(),
  };
  await writeAtomically(path, `${JSON.stringify(body, null, 2)}\n`, 0o600);
}

export function storedFrom(tokens: TokenSet, previous: StoredTokens | null): StoredTokens {
  return {
    // Tesla sends a new refresh token with every refresh; keep the old one only if it sent none.
    refreshToken: tokens.refreshToken || previous?.refreshToken || '',
    accessToken: tokens.accessToken,
    expiresAt: tokens.expiresAt,
    scopes: tokens.scopes.length > 0 ? tokens.scopes : previous?.scopes ?? [],
    subject: tokens.subject ?? previous?.subject ?? null,
    apiBaseUrl: previous?.apiBaseUrl ?? '',
  };
}

export class TeslaTokenFile {
  private current: StoredTokens | null = null;
  private refreshing: Promise<string> | null = null;
  private readonly now: () => number;
  private readonly refreshBeforeMs: number;

  constructor(
    readonly path: string,
    private readonly oauth: TeslaOAuth,
    private readonly options: TokenFileOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.refreshBeforeMs = options.refreshBeforeMs ?? 5 * 60_000;
  }

  /** The stored tokens as last read or written (reads the file the first time). */
  async tokens(): Promise<StoredTokens> {
    this.current ??= await readTokenFile(this.path);
    return this.current;
  }

  /** An access token good for at least `refreshBeforeMs`, refreshing (once, for all callers) when not. */
  async accessToken(): Promise<string> {
    const tokens = await this.tokens();
    if (this.fresh(tokens)) return tokens.accessToken;
    this.refreshing ??= this.refreshLocked().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** Refresh now, whatever the expiry (tests, and `auth status --refresh`). */
  forceRefresh(): Promise<string> {
    this.refreshing ??= this.refreshLocked(true).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private fresh(tokens: StoredTokens): boolean {
    return tokens.accessToken !== '' && tokens.expiresAt - this.refreshBeforeMs > this.now();
  }

  private async refreshLocked(force = false): Promise<string> {
    const release = await this.lock();
    try {
      // Another process may have refreshed while we waited: its rotated token is the only good one now.
      const onDisk = await readTokenFile(this.path);
      if (!force && this.fresh(onDisk)) {
        this.current = onDisk;
        return onDisk.accessToken;
      }
      let fresh: TokenSet;
      try {
        fresh = await this.oauth.refresh(onDisk.refreshToken);
      } catch (error) {
        const revoked = error instanceof OAuthError && (error.reason === 'revoked' || error.reason === 'bad_client');
        this.options.onRefresh?.(revoked ? 'revoked' : 'failed');
        const fix = revoked
          ? 'Tesla refused the stored refresh token (revoked, expired or already used): run `fleet-telemetry auth login` again'
          : 'Tesla could not be reached to refresh the access token; the next call tries again';
        this.options.logger?.error({ reason: error instanceof OAuthError ? error.reason : 'failed', fix, tokenFile: this.path }, 'tesla_token_refresh_failed');
        throw new TokenFileError(`${fix} (${(error as Error).message})`);
      }
      const next = storedFrom(fresh, onDisk);
      await writeTokenFile(this.path, next);
      this.current = next;
      this.options.onRefresh?.('ok');
      this.options.logger?.info({ expiresAt: new Date(next.expiresAt).toISOString() }, 'tesla_token_refreshed');
      return next.accessToken;
    } finally {
      await release();
    }
  }

  /** An O_EXCL lock file beside the token file; a lock left by a dead process is taken over. */
  private async lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.path}.lock`;
    const staleMs = this.options.staleLockMs ?? 60_000;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const handle = await open(lockPath, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => rm(lockPath, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      try {
        const info = await stat(lockPath);
        if (Date.now() - info.mtimeMs > staleMs) {
          await rm(lockPath, { force: true });
          continue;
        }
      } catch {
        continue; // released between our open and stat
      }
      if (Date.now() > deadline) throw new TokenFileError(`TESLA_TOKEN_FILE: ${lockPath} is held by another process for too long; remove it if no fleet-telemetry process is running`);
      await delayFor(LOCK_POLL_MS);
    }
  }
}
