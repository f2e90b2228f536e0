import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { deriveKey, readSessionRecord, seal, unseal, type SessionPersistence, type SessionRecord } from './session-store.js';
import { parseJson, ShapeError } from '../safety/json-reader.js';

/**
 * Sign in with Tesla sessions in NATS mode: one KV entry per session (key = the hashed session id,
 * value sealed with AES-256-GCM under a key derived from DASHBOARD_SESSION_SECRET), so any instance can
 * serve a signed-in browser, a sign-out on one instance closes that session's sockets on all of them
 * (the delete is watched), and a token one instance refreshed is the one the others use next. The
 * NATS scale-out only provides the bucket (NatsScaleOut.sessionsBucket): the session format is ours.
 */
export class KvSessionPersistence implements SessionPersistence {
  private readonly key: Buffer;

  constructor(
    private readonly kv: KV,
    secret: string,
    private readonly logger: Logger,
  ) {
    this.key = deriveKey(secret, 'dashboard session store');
  }

  async load(): Promise<SessionRecord[]> {
    const records: SessionRecord[] = [];
    const ids: string[] = [];
    for await (const id of await this.kv.keys()) ids.push(id);
    for (const id of ids) {
      const record = await this.fetch(id);
      if (record !== null) records.push(record);
    }
    return records;
  }

  async fetch(id: string): Promise<SessionRecord | null> {
    const entry = await this.kv.get(id);
    if (entry === null || entry.operation !== 'PUT') return null;
    return this.open(entry.string());
  }

  async saved(record: SessionRecord | null, id: string): Promise<void> {
    if (record === null) await this.kv.delete(id);
    else await this.kv.put(id, seal(this.key, JSON.stringify(record)));
  }

  async watch(onPut: (record: SessionRecord) => void, onDelete: (id: string) => void): Promise<() => void> {
    const updates = await this.kv.watch({ include: 'updates' });
    void (async () => {
      for await (const entry of updates) {
        if (entry.operation === 'PUT') {
          const record = this.open(entry.string());
          if (record !== null) onPut(record);
        } else {
          onDelete(entry.key);
        }
      }
    })().catch((error: unknown) => this.logger.warn({ error: (error as Error).message }, 'dashboard_session_watch_failed'));
    return () => updates.stop();
  }

  private open(sealed: string): SessionRecord | null {
    try {
      return readSessionRecord(parseJson(unseal(this.key, sealed)), 'session entry');
    } catch (error) {
      // Sealed under another DASHBOARD_SESSION_SECRET: that session signs in again.
      if (error instanceof ShapeError) this.logger.warn({ problem: error.message }, 'dashboard_session_entry_unreadable');
      return null;
    }
  }
}
