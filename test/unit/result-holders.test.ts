import { expect } from 'chai';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import type { DashboardClient } from '../../src/dashboard/dashboard-hub.js';
import { RecordCoverage } from '../../src/dashboard/record-coverage.js';
import { VinSubscription } from '../../src/dashboard/vin-subscription.js';
import { RecentHistory } from '../../src/history/recent-history.js';
import { SAMPLE_VALUES } from '../../src/history/signal-sample.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { storyRecords } from '../helpers/story-records.js';

// Who keeps a record past the bus listener holds it (BusRecord.hold) until done (letGo): the decode
// pool recycles a batch's result buffer only then (DecodePool's recycleResults).

const VIN = '5YJ3E7EB0LF000001';
const START = Date.parse('2026-11-28T08:00:00Z');

/** A record counting its holds: `holds` is what is held now; a hold let go of twice throws. */
function counted(record: BusRecord): BusRecord & { holds: number; everHeld: number } {
  const counting = Object.assign(record, {
    holds: 0,
    everHeld: 0,
    hold() {
      counting.holds++;
      counting.everHeld++;
      let done = false;
      return {
        letGo(): void {
          if (done) throw new Error('a hold let go of twice');
          done = true;
          counting.holds--;
        },
      };
    },
  });
  return counting;
}

class SilentClient implements DashboardClient {
  isOpen = true;
  readonly sent: string[] = [];
  send(message: string): void {
    this.sent.push(message);
  }
  joinVin(): void {}
  leaveVin(): void {}
  close(): void {}
}

describe('record holders: who says when a record\'s decode buffer may be recycled', () => {
  it('the in-process bus: every listener holds only while each subscribed with holdsRecords', () => {
    const bus = new InProcessBus();
    expect(bus.everyListenerHolds).to.equal(true);
    const offHolding = bus.subscribe(() => {}, { holdsRecords: true });
    expect(bus.everyListenerHolds).to.equal(true);
    const offKeeping = bus.subscribe(() => {});
    expect(bus.everyListenerHolds, 'a listener that may keep anything').to.equal(false);
    offKeeping();
    offKeeping();
    expect(bus.everyListenerHolds, 'unsubscribed (twice: counted once)').to.equal(true);
    offHolding();
    expect(bus.everyListenerHolds).to.equal(true);
  });

  it('the recent history holds each queued record until it is folded in, then lets go of it once', () => {
    const history = new RecentHistory({ windowMs: 3_600_000, resolutionMs: 5000, maxRowsPerCar: 1024, metrics: new ServerMetrics({ collectDefaults: false }).history, logger: silentLogger() });
    const bus = new InProcessBus();
    history.start(bus);
    expect(bus.everyListenerHolds).to.equal(true);
    const records = storyRecords(VIN, 30, START).map(counted);
    for (const record of records) bus.publishNow(record);
    expect(records.every((record) => record.holds === 1), 'held while queued').to.equal(true);
    history.drain();
    expect(records.every((record) => record.holds === 0 && record.everHeld === 1), 'let go of once folded in').to.equal(true);
    history.stop();
  });

  it('the recent history holds no record that brings the decode stage\'s samples (it copies them)', () => {
    const history = new RecentHistory({ windowMs: 3_600_000, resolutionMs: 5000, maxRowsPerCar: 1024, metrics: new ServerMetrics({ collectDefaults: false }).history, logger: silentLogger() });
    const bus = new InProcessBus();
    history.start(bus);
    const records = storyRecords(VIN, 30, START).map((record) => counted(Object.assign(record, { samples: new Float64Array(SAMPLE_VALUES), sampleAt: 0 })));
    for (const record of records) bus.publishNow(record);
    expect(records.every((record) => record.everHeld === 0), 'not held while queued').to.equal(true);
    history.drain();
    expect(records.every((record) => record.everHeld === 0)).to.equal(true);
    history.stop();
  });

  it('a dashboard subscription holds the records it keeps for after the snapshot, and lets go of them once sent or released', () => {
    const subscription = new VinSubscription(VIN, new SilentClient(), 10);
    const [first, second] = storyRecords(VIN, 2, START).map(counted);
    expect(subscription.offer(first!)).to.equal('held');
    expect(first!.holds).to.equal(1);
    subscription.snapshotSent('{}', RecordCoverage.none());
    expect(subscription.catchUp((record) => record.dashboardMessage)).to.equal(true);
    expect(first!.holds, 'sent').to.equal(0);

    const released = new VinSubscription(VIN, new SilentClient(), 10);
    expect(released.offer(second!)).to.equal('held');
    released.release();
    expect(second!.holds, 'released').to.equal(0);
    expect(second!.everHeld).to.equal(1);
  });
});
