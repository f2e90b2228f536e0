import { createHash } from 'node:crypto';
import type { DashboardGrant } from './dashboard-grant.js';

/**
 * Tokens verified moments ago, so the dashboard socket can be upgraded at once, inside the call uWS
 * makes for the upgrade request (where the response is corked the way uWS expects), instead of after
 * an asynchronous verification. The page checks its token at /api/session right before it opens the
 * socket, and reconnects with the same token, so a browser's upgrade normally finds its grant here.
 * Keys are SHA-256 digests (the tokens themselves are not kept); entries live a short while and never
 * past the token's expiry, and the map is bounded.
 */
export class VerifiedGrants {
  private readonly entries = new Map<string, { grant: DashboardGrant; sessionId: string | null; until: number }>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(token: string | null): { grant: DashboardGrant; sessionId: string | null } | undefined {
    if (token === null) return undefined;
    const key = digest(token);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return { grant: entry.grant, sessionId: entry.sessionId };
  }

  /** `token` is the credential the client presented: a bearer token or, for sign-in sessions, its cookie header. */
  put(token: string | null, grant: DashboardGrant, sessionId: string | null = null): void {
    if (token === null) return;
    const key = digest(token);
    this.entries.delete(key);
    this.entries.set(key, { grant, sessionId, until: Math.min(grant.expiresAt, this.now() + this.ttlMs) });
    // Oldest first in a Map: drop from the front.
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** A sign-in session that ended (signed out, revoked) must not open a socket from here either. */
  dropSession(sessionId: string): void {
    for (const [key, entry] of this.entries) if (entry.sessionId === sessionId) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}
