import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { ConnectivityArbiter } from '../vehicle-state.js';
import { kvKey } from './nats-names.js';
import { isWrongLastSequence } from './nats-errors.js';
import { objectAt, parseJson } from '../../safety/json-reader.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** One VIN's sockets across all instances: "<instance>/<connection id>" -> epoch ms opened. */
type SocketSet = Record<string, number>;

/**
 * A VIN's entry as written by any instance. A socket whose opening time is not a number still counts
 * as open (at time 0: it is the oldest), so a bad entry can never hide a connected car.
 */
function parseSockets(bytes: Uint8Array): SocketSet {
  const parsed = objectAt(parseJson(fromUtf8.decode(bytes)), 'connectivity entry');
  const sockets: SocketSet = {};
  if (parsed.sockets === undefined || parsed.sockets === null) return sockets;
  for (const [socket, openedAt] of Object.entries(objectAt(parsed.sockets, 'connectivity entry.sockets'))) {
    sockets[socket] = typeof openedAt === 'number' ? openedAt : 0;
  }
  return sockets;
}

export interface SharedConnectivityOptions {
  kv: KV;
  instanceId: string;
  /** Instances alive now; sockets of others are counted as gone (a crashed instance never says goodbye). */
  presence: InstancePresence;
  logger: Logger;
  now?: () => number;
}

/**
 * VIN-level connectivity across instances. Each VIN has one KV key holding every open socket on every
 * instance; opening and closing are compare-and-set updates, so exactly one instance sees the set go
 * from empty to non-empty (it publishes CONNECTED) and exactly one sees it go back to empty
 * (DISCONNECTED), whichever instances the car's sockets are on.
 */
export class SharedConnectivity implements ConnectivityArbiter {
  private readonly chains = new Map<string, Promise<unknown>>();
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: SharedConnectivityOptions) {}

  opened(vin: string, connectionId: string): Promise<boolean> {
    return this.serialised(vin, () =>
      this.change(vin, (sockets) => {
        const wasEmpty = Object.keys(sockets).length === 0;
        sockets[this.socketKey(connectionId)] = (this.options.now ?? Date.now)();
        return wasEmpty;
      }),
    );
  }

  closed(vin: string, connectionId: string): Promise<boolean> {
    return this.serialised(vin, () =>
      this.change(vin, (sockets) => {
        const key = this.socketKey(connectionId);
        if (!(key in sockets)) return false;
        delete sockets[key];
        return Object.keys(sockets).length === 0;
      }),
    );
  }

  async connectedAnywhere(vin: string): Promise<boolean> {
    const entry = await this.options.kv.get(kvKey(vin));
    if (entry === null || entry.operation !== 'PUT') return false;
    return Object.keys(await this.living(parseSockets(entry.value))).length > 0;
  }

  /** Resolves when no connectivity change is in progress (shutdown waits for the last DISCONNECTEDs). */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private socketKey(connectionId: string): string {
    return `${this.options.instanceId}/${connectionId}`;
  }

  /** Sockets whose instance is still alive. */
  private async living(sockets: SocketSet): Promise<SocketSet> {
    const alive: SocketSet = {};
    for (const [key, since] of Object.entries(sockets)) {
      const instance = key.slice(0, key.indexOf('/'));
      if (instance === this.options.instanceId || (await this.options.presence.isAlive(instance))) alive[key] = since;
    }
    return alive;
  }

  /** One VIN's changes from this instance run one after another, in the order the sockets opened and closed. */
  private serialised<T>(vin: string, work: () => Promise<T>): Promise<T> {
    this.inFlight++;
    const previous = this.chains.get(vin) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(vin, settled);
    void settled.then(() => {
      if (this.chains.get(vin) === settled) this.chains.delete(vin);
      if (--this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    });
    return next;
  }

  private async change(vin: string, edit: (sockets: SocketSet) => boolean): Promise<boolean> {
    const { kv } = this.options;
    const key = kvKey(vin);
    for (let attempt = 0; ; attempt++) {
      const entry = await kv.get(key);
      const revision = entry?.revision ?? 0;
      const sockets = await this.living(entry !== null && entry.operation === 'PUT' ? parseSockets(entry.value) : {});
      const verdict = edit(sockets);
      const bytes = utf8.encode(JSON.stringify({ sockets }));
      try {
        if (revision === 0) await kv.create(key, bytes);
        else await kv.update(key, bytes, revision);
        return verdict;
      } catch (error) {
        // Another instance changed this VIN's sockets in between: read again and redo the edit.
        if (!isWrongLastSequence(error) || attempt >= 20) throw error;
      }
    }
  }
}

export interface InstancePresenceOptions {
  kv: KV;
  instanceId: string;
  /** The bucket's TTL: an instance not heard from for this long counts as gone. */
  ttlMs: number;
  logger: Logger;
}

/**
 * Which instances are alive: each writes its own key to a bucket whose entries expire, several times
 * per TTL, and reads the bucket's keys as often. A killed instance's key expires, and its sockets stop
 * counting towards a car's connectivity.
 */
export class InstancePresence {
  private alive = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: InstancePresenceOptions) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beat().catch((error: unknown) => this.options.logger.warn({ err: error }, 'nats_presence_failed'));
    }, Math.max(250, Math.floor(this.options.ttlMs / 3)));
    this.timer.unref();
  }

  /**
   * From the cache when known alive; otherwise asked of the bucket, because an instance that started
   * since the last read must not have its sockets dropped.
   */
  async isAlive(instanceId: string): Promise<boolean> {
    if (this.alive.has(instanceId)) return true;
    const entry = await this.options.kv.get(instanceId);
    const alive = entry !== null && entry.operation === 'PUT';
    if (alive) this.alive.add(instanceId);
    return alive;
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.options.kv.delete(this.options.instanceId).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const { kv, instanceId } = this.options;
    await kv.put(instanceId, utf8.encode(String(Date.now())));
    const alive = new Set<string>();
    for await (const key of await kv.keys()) alive.add(key);
    alive.add(instanceId);
    this.alive = alive;
  }
}
