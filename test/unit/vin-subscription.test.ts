import { expect } from 'chai';
import type { BusRecord, VehicleSnapshot } from '../../src/bus/record-bus.js';
import type { DashboardClient } from '../../src/dashboard/dashboard-hub.js';
import { RecordCoverage } from '../../src/dashboard/record-coverage.js';
import { VinSubscription } from '../../src/dashboard/vin-subscription.js';

const VIN = '5YJ3E7EB0LF000001';

/** Only what the coverage and the state machine read of a record; the message is the txid here. */
function record(txid: string, receivedAt: number, streamSeq?: number): BusRecord {
  return { vin: VIN, topic: 'V', txid, receivedAt, streamSeq } as BusRecord;
}

function snapshot(lastSeenAt: number | null, coveredSeq?: number): VehicleSnapshot {
  return { vin: VIN, connected: true, state: new Map(), lastSeenAt, stale: false, coveredSeq };
}

class MemoryClient implements DashboardClient {
  isOpen = true;
  readonly sent: string[] = [];
  joined = false;
  send(message: string): void {
    this.sent.push(message);
  }
  joinVin(): void {
    this.joined = true;
  }
  leaveVin(): void {
    this.joined = false;
  }
  close(): void {
    this.isOpen = false;
  }
}

describe('record coverage (what a dashboard already has of a VIN)', () => {
  it('a snapshot with coveredSeq covers by stream sequence, and replayed records move the cut', () => {
    const coverage = RecordCoverage.ofSnapshot(snapshot(5_000, 7));
    expect(coverage.covers(record('a', 9_000, 7))).to.equal(true, 'at the cut, whatever its time');
    expect(coverage.covers(record('b', 1, 8))).to.equal(false, 'past the cut, however old');
    coverage.add(record('b', 1, 8));
    expect(coverage.covers(record('b', 1, 8))).to.equal(true);
    expect(coverage.coveredMayArriveLate).to.equal(true);
  });

  it('a snapshot without coveredSeq covers by lastSeenAt; replayed records without a sequence by topic and txid', () => {
    const coverage = RecordCoverage.ofSnapshot(snapshot(5_000));
    expect(coverage.covers(record('a', 5_000))).to.equal(true);
    expect(coverage.covers(record('b', 5_001))).to.equal(false);
    coverage.add(record('b', 5_001));
    expect(coverage.covers(record('b', 5_001))).to.equal(true);
    expect(coverage.covers(record('c', 5_001))).to.equal(false);
    expect(coverage.coveredMayArriveLate).to.equal(false);
    expect(RecordCoverage.ofSnapshot(snapshot(null)).covers(record('d', 0))).to.equal(false, 'a car never heard from: nothing covered');
  });

  it('a snapshot taken with nothing held covers nothing held; a replay with sequences starts a sequence cut', () => {
    const coverage = RecordCoverage.none();
    expect(coverage.covers(record('a', 0, 1))).to.equal(false);
    coverage.add(record('a', 0, 3));
    expect(coverage.covers(record('z', 0, 2))).to.equal(true);
    expect(coverage.coveredMayArriveLate).to.equal(true);
  });
});

describe('VIN subscription states', () => {
  it('synchronous snapshot: sent and live in one step, later records are the topic\'s', () => {
    const client = new MemoryClient();
    const subscription = new VinSubscription(VIN, client, 10);
    subscription.joinWith('snapshot');
    expect(subscription.state).to.equal('live');
    expect(client.joined).to.equal(true);
    expect(subscription.offer(record('a', 1))).to.equal('ignored');
  });

  it('holds while awaiting the snapshot and replaying, sends what the coverage lacks, then joins', () => {
    const client = new MemoryClient();
    const subscription = new VinSubscription(VIN, client, 10);
    expect(subscription.offer(record('held-1', 0, 1))).to.equal('held');
    subscription.snapshotSent('snapshot', RecordCoverage.ofSnapshot(snapshot(0, 1)));
    subscription.startReplay();
    expect(subscription.state).to.equal('replaying');
    subscription.replayed(record('replayed-2', 0, 2), 'replayed-2');
    expect(subscription.offer(record('held-2', 0, 2))).to.equal('held');
    expect(subscription.offer(record('held-3', 0, 3))).to.equal('held');
    expect(subscription.catchUp((r) => r.txid)).to.equal(true);
    expect(subscription.state).to.equal('live');
    expect(client.sent).to.deep.equal(['snapshot', 'replayed-2', 'held-3']);
    expect(client.joined).to.equal(true);
  });

  it('joining: covered late records are dropped, the first one past the coverage joins', () => {
    const client = new MemoryClient();
    const subscription = new VinSubscription(VIN, client, 10);
    subscription.snapshotSent('snapshot', RecordCoverage.ofSnapshot(snapshot(0, 4)));
    expect(subscription.catchUp((r) => r.txid)).to.equal(false);
    expect(subscription.state).to.equal('joining');
    expect(subscription.joining).to.equal(true);
    expect(subscription.offer(record('late', 0, 4))).to.equal('covered');
    expect(client.joined).to.equal(false);
    expect(subscription.offer(record('next', 0, 5))).to.equal('joined');
    expect(client.joined).to.equal(true);
    expect(subscription.state).to.equal('live');
  });

  it('overflow past the hold limit; a released subscription takes nothing and refuses to move on', () => {
    const client = new MemoryClient();
    const subscription = new VinSubscription(VIN, client, 1);
    expect(subscription.offer(record('a', 1))).to.equal('held');
    expect(subscription.offer(record('b', 2))).to.equal('overflow');
    subscription.release();
    expect(subscription.active).to.equal(false);
    expect(subscription.offer(record('c', 3))).to.equal('ignored');
    expect(() => subscription.snapshotSent('snapshot', RecordCoverage.none())).to.throw(/released, expected awaiting_snapshot/);
    expect(client.sent).to.deep.equal([]);
  });
});
