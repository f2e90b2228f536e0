import { expect } from 'chai';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord, RecordBus, RecordListener, SafeCallback, SnapshotSource, VehicleSnapshot } from '../../src/bus/record-bus.js';
import { DashboardGrant } from '../../src/dashboard/dashboard-grant.js';
import { CLOSE_TOO_SLOW, DashboardHub, DashboardSession, type DashboardClient, type DashboardHubOptions } from '../../src/dashboard/dashboard-hub.js';
import { originAllowed } from '../../src/dashboard/dashboard-listener.js';
import { parseRequest, snapshotMessage, RequestError } from '../../src/dashboard/dashboard-protocol.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';

const VIN_A = '5YJ3E7EB0LF000001';
const VIN_B = '5YJ3E7EB0LF000002';

/** A dashboard connection in memory: what it was sent, directly or through the VINs it joined. */
class MemoryClient implements DashboardClient {
  isOpen = true;
  readonly received: string[] = [];
  readonly joined = new Set<string>();
  closedWith: number | null = null;
  send(message: string): void {
    this.received.push(message);
  }
  joinVin(vin: string): void {
    this.joined.add(vin);
  }
  leaveVin(vin: string): void {
    this.joined.delete(vin);
  }
  close(code: number): void {
    this.closedWith = code;
  }
  parsed(): Array<Record<string, unknown>> {
    return this.received.map((m) => JSON.parse(m) as Record<string, unknown>);
  }
}

/** The in-process bus, recording what it is asked to watch. */
class WatchCountingBus implements RecordBus {
  readonly name = 'watch_counting';
  readonly watches: string[] = [];
  readonly unwatches: string[] = [];
  private readonly inner = new InProcessBus();
  publish(record: BusRecord, onSafe: SafeCallback): void {
    this.inner.publish(record, onSafe);
  }
  subscribe(listener: RecordListener): () => void {
    return this.inner.subscribe(listener);
  }
  watch(vin: string): void {
    this.watches.push(vin);
  }
  unwatch(vin: string): void {
    this.unwatches.push(vin);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function record(vin: string, speed: number, receivedAt: number): BusRecord {
  const recordJson = JSON.stringify({ data: [{ key: 'VehicleSpeed', value: { doubleValue: speed } }], vin });
  return {
    vin, topic: 'V', txid: `t-${speed}`, receivedAt, recordJson, payload: null,
    dashboardMessage: JSON.stringify({ type: 'record', vin, topic: 'V', receivedAt: new Date(receivedAt).toISOString(), record: JSON.parse(recordJson) }),
  };
}

/**
 * A bus that keeps history like the NATS one: records get stream sequences when published, and replay
 * reads them back by time. `duringReplay` runs after the first replayed record, to publish live ones
 * while a replay is under way.
 */
class HistoryBus extends WatchCountingBus {
  readonly stored: BusRecord[] = [];
  duringReplay: () => void = () => {};
  private seq = 0;
  override publish(record: BusRecord, onSafe: SafeCallback): void {
    record.streamSeq = ++this.seq;
    this.stored.push(record);
    super.publish(record, onSafe);
  }
  /** Stored now, reaching this instance's listeners later (as JetStream delivers to another instance). */
  storeOnly(record: BusRecord): void {
    record.streamSeq = ++this.seq;
    this.stored.push(record);
  }
  deliverLate(record: BusRecord): void {
    super.publish(record, () => {});
  }
  async replay(vin: string, sinceMs: number, onRecord: (record: BusRecord) => boolean | void): Promise<number> {
    let count = 0;
    for (let i = 0; i < this.stored.length; i++) {
      const r = this.stored[i]!;
      if (r.vin !== vin || r.receivedAt < sinceMs) continue;
      await Promise.resolve();
      if (onRecord(r) === false) break;
      if (count++ === 0) this.duringReplay();
    }
    return count;
  }
}

function speeds(messages: Array<Record<string, unknown>>): Array<number | string> {
  return messages.map((m) =>
    m.type === 'record' ? (m.record as { data: Array<{ value: { doubleValue: number } }> }).data[0]!.value.doubleValue : String(m.type),
  );
}

function setup(snapshots: SnapshotSource, bus: WatchCountingBus = new WatchCountingBus(), extra: Partial<DashboardHubOptions> = {}) {
  const clients = new Map<DashboardSession, MemoryClient>();
  const hub = new DashboardHub({
    bus,
    snapshots,
    // The publisher delivers to every client that joined the VIN, as uWS topics do.
    publisher: { publish: (vin, message) => { for (const c of clients.values()) if (c.joined.has(vin)) c.send(message); } },
    directory: { summary: (vin) => ({ vin, connected: false, stale: false, lastSeenAt: null }), list: () => [] },
    metrics: new ServerMetrics({ collectDefaults: false }).dashboard,
    logger: silentLogger(),
    ...extra,
  });
  hub.start();
  const open = (vins: string[] | '*') => {
    const client = new MemoryClient();
    const session = new DashboardSession(client, new DashboardGrant(vins === '*', vins === '*' ? [] : vins, Date.now() + 60_000, null, 'hs256'));
    clients.set(session, client);
    hub.opened(session);
    return { client, session };
  };
  const publish = (r: BusRecord) => bus.publish(r, () => {});
  return { bus, hub, open, publish };
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

function snapshotOf(vin: string, speed: number | null, lastSeenAt: number | null): VehicleSnapshot {
  const state = new Map<string, { value: string; at: string }>();
  if (speed !== null) state.set('VehicleSpeed', { value: JSON.stringify({ doubleValue: speed }), at: '2026-11-28T10:00:00.000Z' });
  return { vin, connected: true, state, lastSeenAt, stale: false };
}

describe('dashboard hub', () => {
  it('with a synchronous source: snapshot and join in one go, then only records of joined VINs', async () => {
    let speed = 3;
    const source = { snapshot: async (vin: string) => snapshotOf(vin, speed, 1), snapshotNow: (vin: string) => snapshotOf(vin, speed, 1) };
    const { hub, open, publish } = setup(source);
    const { client, session } = open([VIN_A]);
    publish(record(VIN_A, 3, 1)); // before the subscribe: nobody watches, nothing sent
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A, VIN_B] }));
    speed = 4;
    publish(record(VIN_A, 4, 2));
    publish(record(VIN_B, 99, 2));
    const types = client.parsed().map((m) => `${m.type}:${m.vin ?? ''}`);
    expect(types).to.deep.equal(['hello:', `snapshot:${VIN_A}`, `error:${VIN_B}`, `record:${VIN_A}`]);
    const snap = client.parsed()[1]!;
    expect(snap).to.deep.include({ connected: true, stale: false });
    expect(snap.state).to.deep.equal({ VehicleSpeed: { value: { doubleValue: 3 }, at: '2026-11-28T10:00:00.000Z' } });
    expect(client.parsed()[2]).to.include({ code: 'forbidden_vin' });
  });

  it('with an async source: holds records while the snapshot is fetched and drops those it already covers', async () => {
    let release: (snapshot: VehicleSnapshot) => void = () => {};
    const source: SnapshotSource = { snapshot: () => new Promise((resolve) => (release = resolve)) };
    const { hub, open, publish } = setup(source);
    const { client, session } = open([VIN_A]);
    const subscribed = hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    await new Promise((resolve) => setImmediate(resolve));
    publish(record(VIN_A, 10, 1000)); // folded into the snapshot (receivedAt <= lastSeenAt)
    publish(record(VIN_A, 11, 2000)); // newer than the snapshot
    expect(client.parsed().map((m) => m.type)).to.deep.equal(['hello'], 'nothing before the snapshot');
    release(snapshotOf(VIN_A, 10, 1000));
    await subscribed;
    publish(record(VIN_A, 12, 3000));
    const sent = client.parsed().slice(1);
    expect(sent.map((m) => m.type)).to.deep.equal(['snapshot', 'record', 'record']);
    expect(sent.slice(1).map((m) => (m.record as { data: Array<{ value: { doubleValue: number } }> }).data[0]!.value.doubleValue)).to.deep.equal([11, 12]);
  });

  it('reports a failed async snapshot and does not leave the VIN watched', async () => {
    const source: SnapshotSource = { snapshot: async () => { throw new Error('store down'); } };
    const { bus, hub, open } = setup(source);
    const { client, session } = open([VIN_A]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    expect(client.parsed()[1]).to.include({ type: 'error', code: 'snapshot_unavailable', vin: VIN_A });
    expect(bus.watches).to.deep.equal([VIN_A]);
    expect(bus.unwatches).to.deep.equal([VIN_A]);
    expect(hub.watchedVins).to.equal(0);
  });

  it('watches a VIN on the bus once for all dashboards, and unwatches when the last one leaves', async () => {
    const source = { snapshot: async (vin: string) => snapshotOf(vin, null, null), snapshotNow: (vin: string) => snapshotOf(vin, null, null) };
    const { bus, hub, open } = setup(source);
    const one = open('*');
    const two = open([VIN_A]);
    await hub.received(one.session, JSON.stringify({ type: 'subscribe', vins: [VIN_A, VIN_B] }));
    await hub.received(two.session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    await hub.received(two.session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] })); // again: no-op
    expect(bus.watches).to.deep.equal([VIN_A, VIN_B]);
    await hub.received(one.session, JSON.stringify({ type: 'unsubscribe', vins: [VIN_A] }));
    expect(bus.unwatches).to.deep.equal([]);
    hub.closed(two.session);
    hub.closed(one.session);
    expect(bus.unwatches.sort()).to.deep.equal([VIN_A, VIN_B]);
    expect(hub.watchedVins).to.equal(0);
  });

  it('with a stream-sequence snapshot: drops covered records, also those that arrive after it, then joins', async () => {
    const bus = new HistoryBus();
    const late = [record(VIN_A, 1, 1000), record(VIN_A, 2, 1000)];
    for (const r of late) bus.storeOnly(r); // seq 1, 2: folded into the snapshot, not yet delivered here
    const source: SnapshotSource = { snapshot: async (vin) => ({ ...snapshotOf(vin, 2, 1000), coveredSeq: 2 }) };
    const { hub, open, publish } = setup(source, bus);
    const { client, session } = open([VIN_A]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    for (const r of late) bus.deliverLate(r); // same receivedAt as the next one: time could not tell them apart
    publish(record(VIN_A, 3, 1000));
    publish(record(VIN_A, 4, 1001));
    expect(speeds(client.parsed().slice(1))).to.deep.equal(['snapshot', 3, 4]);
  });

  it('since: snapshot, replayed history, a history marker, then held and live records, each once', async () => {
    const bus = new HistoryBus();
    const source: SnapshotSource = { snapshot: async (vin) => ({ ...snapshotOf(vin, 2, 2000), coveredSeq: 2 }) };
    const { hub, open, publish } = setup(source, bus);
    publish(record(VIN_A, 0, 500)); // before `since`
    publish(record(VIN_A, 1, 1000));
    publish(record(VIN_A, 2, 2000));
    publish(record(VIN_B, 50, 2000));
    // Stored while the replay runs: the replay reads it too, and it is held live as well.
    bus.duringReplay = () => publish(record(VIN_A, 3, 3000));
    const { client, session } = open([VIN_A]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A], since: new Date(1000).toISOString() }));
    publish(record(VIN_A, 4, 4000));
    const sent = client.parsed().slice(1);
    expect(speeds(sent)).to.deep.equal(['snapshot', 1, 2, 3, 'history', 4]);
    expect(sent[4]).to.deep.equal({ type: 'history', vin: VIN_A, since: '1970-01-01T00:00:01.000Z', records: 3, truncated: false });
  });

  it('since: cuts a replay short at its limit and says so', async () => {
    const bus = new HistoryBus();
    const source: SnapshotSource = { snapshot: async (vin) => ({ ...snapshotOf(vin, 9, 9), coveredSeq: 9 }) };
    const { hub, open, publish } = setup(source, bus);
    for (let i = 0; i < 10; i++) publish(record(VIN_A, i, i));
    (hub as unknown as { options: { maxReplayRecords: number } }).options.maxReplayRecords = 4;
    const { client, session } = open([VIN_A]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A], since: '1970-01-01T00:00:00Z' }));
    expect(speeds(client.parsed().slice(1))).to.deep.equal(['snapshot', 0, 1, 2, 3, 'history']);
    expect(client.parsed().at(-1)).to.include({ records: 4, truncated: true });
  });

  it('since without history: says so, still sends the snapshot and live records', async () => {
    const source = { snapshot: async (vin: string) => snapshotOf(vin, 1, 1), snapshotNow: (vin: string) => snapshotOf(vin, 1, 1) };
    const { hub, open, publish } = setup(source);
    const { client, session } = open([VIN_A]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A], since: '2026-11-28T10:00:00Z' }));
    publish(record(VIN_A, 2, 2));
    const sent = client.parsed().slice(1);
    expect(sent[0]).to.include({ type: 'error', code: 'history_unavailable', vin: VIN_A });
    expect(speeds(sent.slice(1))).to.deep.equal(['snapshot', 2]);
  });

  it('refuses a bad since without subscribing', async () => {
    const source = { snapshot: async (vin: string) => snapshotOf(vin, 1, 1), snapshotNow: (vin: string) => snapshotOf(vin, 1, 1) };
    const { bus, hub, open } = setup(source);
    const { client, session } = open([VIN_A]);
    for (const since of ['yesterday', '2026-02-30T10:00:00Z', '2026-11-28T10:00:00', 1700000000000]) {
      await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A], since }));
    }
    expect(client.parsed().slice(1).map((m) => m.code)).to.deep.equal(['invalid_since', 'invalid_since', 'invalid_since', 'invalid_since']);
    expect(bus.watches).to.deep.equal([]);
  });

  it('a request whose handling throws rejects, releases its VIN, and the session\'s next requests are still served', async () => {
    let broken = true;
    const source = {
      snapshot: async (vin: string) => snapshotOf(vin, 1, 1),
      snapshotNow: (vin: string) => {
        if (broken) throw new Error('actor state broken');
        return snapshotOf(vin, 1, 1);
      },
    };
    const { bus, hub, open, publish } = setup(source);
    const { client, session } = open([VIN_A]);
    const failure = await rejectionOf(hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] })));
    expect((failure as Error).message).to.equal('actor state broken');
    expect(hub.watchedVins).to.equal(0);
    expect(bus.unwatches).to.deep.equal([VIN_A]);
    expect(client.joined.size).to.equal(0);
    broken = false;
    await hub.received(session, JSON.stringify({ type: 'vehicles' }));
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    publish(record(VIN_A, 2, 2));
    expect(speeds(client.parsed().slice(1))).to.deep.equal(['vehicles', 'snapshot', 2]);
  });

  it('a step that never settles: request_timeout, its VIN released, the rest of the request and the next ones served', async () => {
    // The limit is wall time (a real timer), so the test waits it out; 50 ms keeps that short.
    let lateSnapshot: (snapshot: VehicleSnapshot) => void = () => {};
    let storeStuck = true;
    const source: SnapshotSource = {
      snapshot: (vin) =>
        vin === VIN_A && storeStuck ? new Promise<VehicleSnapshot>((resolve) => (lateSnapshot = resolve)) : Promise.resolve(snapshotOf(vin, 7, 7)),
    };
    const { bus, hub, open, publish } = setup(source, new WatchCountingBus(), { maxRequestStepMs: 50 });
    const { client, session } = open([VIN_A, VIN_B]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A, VIN_B] }));
    const [timeout, snapshotB] = client.parsed().slice(1);
    expect(timeout).to.include({ type: 'error', code: 'request_timeout', vin: VIN_A });
    expect(snapshotB).to.include({ type: 'snapshot', vin: VIN_B });
    expect(hub.watchedVins).to.equal(1);
    expect(bus.unwatches).to.deep.equal([VIN_A]);
    // The snapshot that comes after the limit is not sent, and A's records do not reach the dashboard.
    lateSnapshot(snapshotOf(VIN_A, 1, 1));
    await hub.received(session, JSON.stringify({ type: 'vehicles' }));
    publish(record(VIN_A, 2, 2));
    publish(record(VIN_B, 8, 8));
    expect(speeds(client.parsed().slice(3))).to.deep.equal(['vehicles', 8]);
    // Asked again once the store answers, A is served.
    storeStuck = false;
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    expect(client.parsed()[5]).to.include({ type: 'snapshot', vin: VIN_A });
    expect(hub.watchedVins).to.equal(2);
  });

  it('an async snapshot that breaks the snapshot message: nothing stays held for the dashboard, later requests are served', async () => {
    let lastSeenAt = Number.NaN; // no ISO form: snapshotMessage throws
    const source: SnapshotSource = { snapshot: async (vin) => snapshotOf(vin, 1, lastSeenAt) };
    const { hub, open, publish } = setup(source);
    const { client, session } = open([VIN_A]);
    const failure = await rejectionOf(hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] })));
    expect(failure).to.be.instanceOf(RangeError);
    expect(hub.watchedVins).to.equal(0);
    publish(record(VIN_A, 2, 2)); // no subscription holds it, nobody is sent it
    expect(client.parsed().map((m) => m.type)).to.deep.equal(['hello']);
    lastSeenAt = 1;
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    publish(record(VIN_A, 3, 3));
    expect(speeds(client.parsed().slice(1))).to.deep.equal(['snapshot', 3]);
  });

  it('a replay that throws: history_failed, the snapshot and live records follow, and the next request is served', async () => {
    const bus = new HistoryBus();
    bus.replay = () => {
      throw new Error('stream unreadable');
    };
    const source: SnapshotSource = { snapshot: async (vin) => ({ ...snapshotOf(vin, 1, 1000), coveredSeq: 0 }) };
    const { hub, open, publish } = setup(source, bus);
    const { client, session } = open('*');
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A], since: '1970-01-01T00:00:00Z' }));
    publish(record(VIN_A, 2, 2000));
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_B] }));
    const sent = client.parsed().slice(1);
    expect(sent.map((m) => `${String(m.type)}:${String(m.code ?? m.vin)}`)).to.deep.equal([
      `snapshot:${VIN_A}`, 'error:history_failed', `record:${VIN_A}`, `snapshot:${VIN_B}`,
    ]);
  });

  it('a replayed record our code cannot send is a bug, not history_failed: it rejects, and the next request is served', async () => {
    const bus = new HistoryBus();
    const broken = { ...record(VIN_A, 1, 1000), dashboardMessage: '', receivedAt: Number.NaN }; // no ISO time: the message cannot be built
    bus.storeOnly(broken);
    const source: SnapshotSource = { snapshot: async (vin) => ({ ...snapshotOf(vin, 1, 1000), coveredSeq: 0 }) };
    const { hub, open } = setup(source, bus);
    const { client, session } = open('*');
    const failure = await rejectionOf(hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A], since: '1970-01-01T00:00:00Z' })));
    expect(failure).to.be.instanceOf(RangeError);
    expect(hub.watchedVins).to.equal(0);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_B] }));
    expect(client.parsed().slice(1).map((m) => `${String(m.type)}:${String(m.code ?? m.vin)}`)).to.deep.equal([`snapshot:${VIN_A}`, `snapshot:${VIN_B}`]);
  });

  it('drops a dashboard whose held records pass the limit while its snapshot is read', async () => {
    let release: (snapshot: VehicleSnapshot) => void = () => {};
    const source: SnapshotSource = { snapshot: () => new Promise((resolve) => (release = resolve)) };
    const { hub, open, publish } = setup(source);
    (hub as unknown as { options: { maxBufferedRecords: number } }).options.maxBufferedRecords = 2;
    const { client, session } = open([VIN_A]);
    const subscribed = hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    await new Promise((resolve) => setImmediate(resolve));
    publish(record(VIN_A, 1, 1));
    publish(record(VIN_A, 2, 2));
    expect(client.closedWith).to.equal(null);
    publish(record(VIN_A, 3, 3));
    expect(client.closedWith).to.equal(CLOSE_TOO_SLOW);
    hub.closed(session); // what the listener does when the socket closes
    release(snapshotOf(VIN_A, 0, 0));
    await subscribed;
    expect(hub.watchedVins).to.equal(0);
    expect(client.parsed().map((m) => m.type)).to.deep.equal(['hello']);
  });

  it('a dashboard joining after a stream-sequence snapshot hears watchdog events before its first record', async () => {
    const bus = new HistoryBus();
    const late = record(VIN_A, 1, 1000);
    bus.storeOnly(late); // seq 1, folded into the snapshot, not delivered here yet
    const source: SnapshotSource = { snapshot: async (vin) => ({ ...snapshotOf(vin, 1, 1000), coveredSeq: 1 }) };
    const { hub, open, publish } = setup(source, bus);
    const { client, session } = open([VIN_A]);
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: [VIN_A] }));
    expect(client.joined.has(VIN_A)).to.equal(false, 'waits for the first record past the snapshot');
    hub.onWatchdog({ vin: VIN_A, event: 'stale', lastSeenAt: 1000 });
    bus.deliverLate(late);
    expect(client.joined.has(VIN_A)).to.equal(false, 'a covered record does not join');
    publish(record(VIN_A, 2, 2000));
    expect(client.joined.has(VIN_A)).to.equal(true);
    expect(speeds(client.parsed().slice(1))).to.deep.equal(['snapshot', 'watchdog', 2]);
  });

  it('answers malformed requests with an error message', async () => {
    const source = { snapshot: async (vin: string) => snapshotOf(vin, null, null), snapshotNow: (vin: string) => snapshotOf(vin, null, null) };
    const { hub, open } = setup(source);
    const { client, session } = open('*');
    await hub.received(session, 'not json');
    await hub.received(session, JSON.stringify({ type: 'dance' }));
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: 'x' }));
    await hub.received(session, JSON.stringify({ type: 'subscribe', vins: ['short'] }));
    expect(client.parsed().slice(1).map((m) => m.code)).to.deep.equal(['malformed_message', 'unknown_type', 'malformed_message', 'invalid_vin']);
  });
});

describe('dashboard protocol and origin rules', () => {
  it('parses requests', () => {
    expect(parseRequest('{"type":"subscribe","vins":["5yj3e7eb0lf000001"]}')).to.deep.equal({ type: 'subscribe', vins: [VIN_A], since: null });
    expect(parseRequest('{"type":"subscribe","vins":[],"since":"2026-11-28T12:00:00.5+02:00"}')).to.deep.equal({ type: 'subscribe', vins: [], since: Date.parse('2026-11-28T10:00:00.500Z') });
    expect(parseRequest('{"type":"unsubscribe","vins":[],"since":"ignored"}')).to.deep.equal({ type: 'unsubscribe', vins: [] });
    expect(parseRequest('{"type":"vehicles"}')).to.deep.equal({ type: 'vehicles' });
    expect(() => parseRequest('[]')).to.throw(RequestError);
  });

  it('splices canonical JSON values into the snapshot unchanged', () => {
    const text = snapshotMessage({ vin: VIN_A, connected: false, stale: true, lastSeenAt: 0, state: new Map([['Gear', { value: '{"shiftStateValue":"ShiftStateP"}', at: '2026-11-28T10:00:00Z' }]]) });
    expect(JSON.parse(text)).to.deep.equal({
      type: 'snapshot', vin: VIN_A, connected: false, stale: true, lastSeenAt: '1970-01-01T00:00:00.000Z',
      state: { Gear: { value: { shiftStateValue: 'ShiftStateP' }, at: '2026-11-28T10:00:00Z' } },
    });
  });

  it('allows non-browsers, the page\'s own origin and listed origins; * allows any', () => {
    expect(originAllowed('', 'dash.example.com', [])).to.equal(true);
    expect(originAllowed('https://dash.example.com', 'dash.example.com', [])).to.equal(true);
    expect(originAllowed('https://evil.example.com', 'dash.example.com', [])).to.equal(false);
    expect(originAllowed('http://dash.example.com', 'dash.example.com', [])).to.equal(false);
    expect(originAllowed('https://ops.example.com', 'dash.example.com', ['https://ops.example.com'])).to.equal(true);
    expect(originAllowed('https://evil.example.com', 'dash.example.com', ['*'])).to.equal(true);
    expect(originAllowed('null', 'dash.example.com', [])).to.equal(false);
  });
});
