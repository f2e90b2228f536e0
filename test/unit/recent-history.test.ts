import { expect } from 'chai';
import { InProcessBus } from '../../src/bus/in-process-bus.js';
import type { BusRecord } from '../../src/bus/record-bus.js';
import type { LocalVehicleState } from '../../src/bus/vehicle-state.js';
import { DashboardGrant } from '../../src/dashboard/dashboard-grant.js';
import { DashboardHub, DashboardSession, type DashboardClient } from '../../src/dashboard/dashboard-hub.js';
import { CarHistory } from '../../src/history/car-history.js';
import { tileOrigins } from '../../src/history/map-config.js';
import { RecentHistory } from '../../src/history/recent-history.js';
import { SignalSample, readSample, readSampleFromDatums } from '../../src/history/signal-sample.js';
import { decodeBatch, receiveOutcomes } from '../../src/decode/decode-batch.js';
import { DecodedBatch } from '../../src/decode/decoded-batch.js';
import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';
import { packFrames } from '../helpers/decode-task.js';
import { silentLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { storyRecords } from '../helpers/story-records.js';

const VIN_A = '5YJ3E7EB0LF000001';
const VIN_B = '5YJ3E7EB0LF000002';
const START = Date.parse('2026-11-28T08:00:00Z');

class MemoryClient implements DashboardClient {
  isOpen = true;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
  readonly received: Array<Record<string, any>> = [];
  send(message: string): void {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON the code under test wrote; the assertions below check its shape
    this.received.push(JSON.parse(message) as Record<string, any>);
  }
  joinVin(): void {}
  leaveVin(): void {}
  close(): void {}
}

function newHistory(metrics = new ServerMetrics({ collectDefaults: false }), maxRowsPerCar = 1024): RecentHistory {
  return new RecentHistory({ windowMs: 24 * 3_600_000, resolutionMs: 5000, maxRowsPerCar, metrics: metrics.history, logger: silentLogger() });
}

async function counter(metrics: ServerMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  const value = metric.values.find((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, string>)[k] === l));
  return value?.value ?? 0;
}

describe('recent history', () => {
  it('reads the followed signals and created_at out of a real record', () => {
    const json = decodeRecord(
      'V',
      encodeVehicleData({
        vin: VIN_A,
        createdAt: new Date(START),
        data: [
          { key: 'Soc', value: { doubleValue: 81.5 } },
          { key: 'VehicleSpeed', value: { doubleValue: 42 } },
          { key: 'Gear', value: { shiftStateValue: 'ShiftStateD' } },
          { key: 'DetailedChargeState', value: { detailedChargeStateValue: 'DetailedChargeStateCharging' } },
          { key: 'Location', value: { locationValue: { latitude: 37.41, longitude: -122.14 } } },
          { key: 'Odometer', value: { doubleValue: 1234.5 } },
          { key: 'FastChargerPresent', value: { booleanValue: true } },
          { key: 'InsideTemp', value: { invalid: true } },
        ],
      }),
      VIN_A,
    ).json!;
    const sample = readSample(json, START + 5000, new SignalSample());
    expect(sample.at).to.equal(START);
    expect([sample.soc, sample.speed, sample.gear, sample.charging, sample.odometer, sample.fastCharger]).to.deep.equal([81.5, 42, 3, 3, 1234.5, 1]);
    expect([sample.latitude, sample.longitude]).to.deep.equal([37.41, -122.14]);
    expect(Number.isNaN(sample.insideTemp)).to.equal(true);
    expect(Number.isNaN(sample.range)).to.equal(true);
    // A created_at far ahead of the server's clock is not believed.
    expect(readSample(json, START - 3_600_000, new SignalSample()).at).to.equal(START - 3_600_000);
  });

  it('reads the same sample from the datums the decode stage located as from the record JSON', () => {
    const story = new VehicleStory({ seed: 3 });
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) {
      const data = [...(story.next() as never[]), { key: 'InsideTemp', value: { invalid: true } }, { key: 'Location', value: { stringValue: '(37.5 N, 122.25 W)' } }];
      const payload = encodeVehicleData({ vin: VIN_A, createdAt: i % 7 === 0 ? undefined : new Date(START + i * 1000), data: data as never });
      frames.push(writeStreamEnvelope({ txid: `t${i}`, topic: 'V', payload }));
    }
    for (const watched of [0, 1]) {
      const task = { ...packFrames(frames, VIN_A, START + 500_000), watched: new Uint8Array(frames.length).fill(watched) };
      for (const outcome of receiveOutcomes(decodeBatch(task), task.frames)) {
        const expected = readSample(outcome.recordJson!, START + 500_000, new SignalSample());
        const text = outcome.dashboardMessage ?? outcome.recordJson!;
        const actual = readSampleFromDatums(outcome.state!, text, outcome.createdAt, START + 500_000, new SignalSample());
        expect({ ...actual }).to.deep.equal({ ...expected });
      }
    }
  });

  it('derives a trip and a charging session from a simulated drive and charge, and counts them', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const history = newHistory(metrics);
    const bus = new InProcessBus();
    history.start(bus);
    const ended: string[] = [];
    history.onActivity({ tripEnded: (vin, trip) => ended.push(`${vin} ${trip.id}`), chargeEnded: (vin, c) => ended.push(`${vin} ${c.id}`) });
    // Parked (<= 20 s), a 90 s drive, a 60 s charge, parked again.
    for (const record of storyRecords(VIN_A, 200, START)) bus.publish(record, () => {});
    const answer = await history.query(VIN_A, START, START + 200_000, 1000);
    history.stop();

    expect(answer.trips).to.have.length(1);
    const trip = answer.trips[0]!;
    expect(trip.durationSeconds).to.be.within(85, 95);
    expect(trip.distanceKm).to.be.within(0.5, 3);
    expect(trip.maxSpeedKmh).to.be.within(40, 110);
    expect(trip.energyUsedKwh).to.be.greaterThan(0);
    expect(trip.efficiencyWhPerKm).to.be.greaterThan(0);
    expect(trip.startSoc! - trip.endSoc!).to.be.greaterThan(0);
    expect(trip.track.length / 3).to.be.within(20, 1000);
    expect(trip.startPlace).to.not.equal(null);

    expect(answer.charges).to.have.length(1);
    const charge = answer.charges[0]!;
    expect(charge.current).to.equal('AC');
    expect(charge.durationSeconds).to.be.within(55, 65);
    // About 11 kW for a minute.
    expect(charge.energyAddedKwh).to.be.within(0.15, 0.22);
    expect(charge.peakPowerKw).to.be.within(11, 11.4);
    expect(charge.endSoc!).to.be.greaterThan(charge.startSoc!);
    expect(ended).to.deep.equal([`${VIN_A} ${trip.id}`, `${VIN_A} ${charge.id}`]);

    expect(await counter(metrics, 'fleet_telemetry_trips_total')).to.equal(1);
    expect(await counter(metrics, 'fleet_telemetry_charging_sessions_total', { current: 'AC' })).to.equal(1);
    expect(await counter(metrics, 'fleet_telemetry_charging_energy_kwh_total', { current: 'AC' })).to.be.closeTo(charge.energyAddedKwh, 1e-9);
    expect(await counter(metrics, 'fleet_telemetry_trip_distance_metres_total')).to.be.closeTo(trip.distanceKm * 1000, 1e-6);

    // One row per 5 s at most; the columns line up with the times.
    const { t, columns } = answer.series;
    expect(t.length).to.be.within(30, 41);
    for (const column of Object.values(columns)) expect(column).to.have.length(t.length);
    expect(t).to.deep.equal([...t].sort((a, b) => a - b));
    expect(Math.max(...(columns.speed as number[]))).to.be.greaterThan(20);
    expect(Math.max(...(columns.chargerPower as number[]))).to.be.greaterThan(10);
    expect(columns.gear).to.include(3);
    expect(columns.latitude.every((v) => v === null || Math.abs(v - 37.39) < 0.1)).to.equal(true);
  });

  it('answers the same from the signals the decode stage read, from located datums and from the record JSON, across bounded drains', async () => {
    // Two cars' story records, published once as JSON-only records and once as the actor publishes
    // them (the decode batch's samples and created_at ms), in turns of 1,500 (drains of 1,000 a turn).
    const json = [...storyRecords(VIN_A, 300, START), ...storyRecords(VIN_B, 300, START, 11)].sort((a, b) => a.receivedAt - b.receivedAt);
    const decoded = json.map((record) => {
      const task = packFrames([writeStreamEnvelope({ txid: record.txid, topic: 'V', payload: record.payload! })], record.vin, record.receivedAt);
      const batch = new DecodedBatch(decodeBatch(task), task.frames);
      const sampleAt = batch.sampleAt(0);
      expect(sampleAt).to.be.at.least(0);
      return { ...record, recordJson: batch.recordJson(0), createdAt: batch.createdAt(0), createdAtMs: batch.createdAtMs(0), samples: batch.samples, sampleAt };
    });
    // As a batch decoded on the main thread publishes them: no samples, the datums located.
    const located = json.map((record) => {
      const task = { ...packFrames([writeStreamEnvelope({ txid: record.txid, topic: 'V', payload: record.payload! })], record.vin, record.receivedAt), samples: false };
      const batch = new DecodedBatch(decodeBatch(task), task.frames);
      expect(batch.sampleAt(0)).to.equal(-1);
      return { ...record, recordJson: batch.recordJson(0), createdAt: batch.createdAt(0), createdAtMs: batch.createdAtMs(0), datums: batch.state(0)!, datumText: batch.text(0) };
    });
    const answers = [];
    for (const records of [json, decoded, located]) {
      const history = newHistory();
      const bus = new InProcessBus();
      history.start(bus);
      for (let i = 0; i < records.length; i += 1500) {
        const burst = records.slice(i, i + 1500);
        for (const record of burst) bus.publishNow(record);
        // A record with the decode stage's samples is not held (BusRecord.hold): its batch's buffer may
        // be written again by then, as a recycled one is. The history has copied what it reads.
        for (const record of burst) if (record.samples !== undefined) record.samples.fill(Number.NaN);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const answer = await Promise.all([VIN_A, VIN_B].map((vin) => history.query(vin, START, START + 300_000, 1000)));
      history.stop();
      answers.push(answer);
    }
    expect(answers[0]![0]!.trips).to.have.length.greaterThan(0);
    expect(answers[1]).to.deep.equal(answers[0]);
    expect(answers[2]).to.deep.equal(answers[0]);
  });

  it('answers the same whatever the sizes of the bursts between drains (the queue written over from its start)', async () => {
    const records = [...storyRecords(VIN_A, 300, START), ...storyRecords(VIN_B, 300, START, 11)].sort((a, b) => a.receivedAt - b.receivedAt);
    const answerFor = async (bursts: number[]) => {
      const history = newHistory();
      const bus = new InProcessBus();
      history.start(bus);
      let at = 0;
      for (let b = 0; at < records.length; b++) {
        const size = bursts[b % bursts.length]!;
        for (const record of records.slice(at, at + size)) bus.publishNow(record);
        at += size;
        // Drains of every kind: all at once (a request), the next turn's, none (the next burst adds to it).
        if (b % 3 === 0) history.drain();
        else if (b % 3 === 1) await new Promise((resolve) => setImmediate(resolve));
      }
      const answer = await Promise.all([VIN_A, VIN_B].map((vin) => history.query(vin, START, START + 300_000, 1000)));
      history.stop();
      return answer;
    };
    const once = await answerFor([records.length]);
    expect(once[0]!.trips).to.have.length.greaterThan(0);
    expect(await answerFor([7, 1, 300, 2, 41])).to.deep.equal(once);
    expect(await answerFor([250, 3])).to.deep.equal(once);
  });

  it('folds records carrying their actor (the cached car entry) as without it: two histories on one bus, a sweep between them', async () => {
    const plain = [...storyRecords(VIN_A, 300, START), ...storyRecords(VIN_B, 300, START, 11)].sort((a, b) => a.receivedAt - b.receivedAt);
    const answerOf = async (history: RecentHistory) => Promise.all([VIN_A, VIN_B].map((vin) => history.query(vin, START, START + 300_000, 1000)));
    const reference = newHistory();
    const referenceBus = new InProcessBus();
    reference.start(referenceBus);
    for (const record of plain) referenceBus.publishNow(record);
    const expected = await answerOf(reference);
    reference.stop();
    expect(expected[0]!.trips).to.have.length.greaterThan(0);

    // One actor per VIN, as the actors publish: both histories cache their entry on it, each its own.
    const actors = new Map([VIN_A, VIN_B].map((vin) => [vin, { state: new Map(), lastSeenAt: 0, connected: true, stale: false, historyCar: null }] as const));
    const withOrigin = storyRecordsWithOrigin(plain, actors);
    const first = newHistory();
    const second = newHistory();
    const bus = new InProcessBus();
    first.start(bus);
    second.start(bus);
    // And a history alone on its bus, whose cached entries are its own until the sweep forgets them.
    const alone = newHistory();
    const aloneBus = new InProcessBus();
    alone.start(aloneBus);
    const aloneRecords = storyRecordsWithOrigin(plain, new Map([VIN_A, VIN_B].map((vin) => [vin, { state: new Map(), lastSeenAt: 0, connected: true, stale: false, historyCar: null }] as const)));
    // Cut where neither car is on a trip or charging, so the sweep forgets both.
    const probe = newHistory();
    const probeBus = new InProcessBus();
    probe.start(probeBus);
    let cut = 0;
    for (let at = 0; at < plain.length && cut === 0; at += 10) {
      for (const record of plain.slice(at, at + 10)) probeBus.publishNow(record);
      const answers = at >= 100 ? await answerOf(probe) : [];
      if (answers.length > 0 && answers.every((answer) => !answer.driving && !answer.charging)) cut = at + 10;
    }
    probe.stop();
    expect(cut).to.be.greaterThan(0);
    for (const record of withOrigin.slice(0, cut)) bus.publishNow(record);
    for (const record of aloneRecords.slice(0, cut)) aloneBus.publishNow(record);
    // A sweep after the window forgets every car of `second` and `alone`: their entries cached on the actors are stale.
    for (const history of [second, alone]) {
      history.drain();
      history.sweep(START + 3 * 24 * 3_600_000);
      expect(history.carCount).to.equal(0);
    }
    // A silent car's actor does not keep the entry the sweep forgot.
    for (const record of aloneRecords.slice(0, 2)) expect(record.origin!.historyCar).to.equal(null);
    for (const record of withOrigin.slice(cut)) bus.publishNow(record);
    for (const record of aloneRecords.slice(cut)) aloneBus.publishNow(record);
    expect(await answerOf(first)).to.deep.equal(expected);
    const afterSweep = await answerOf(second);
    expect(await answerOf(alone)).to.deep.equal(afterSweep);
    // What `second` kept is exactly what came after the sweep, in cars it looked up again.
    const fresh = newHistory();
    const freshBus = new InProcessBus();
    fresh.start(freshBus);
    for (const record of plain.slice(cut)) freshBus.publishNow(record);
    expect(afterSweep).to.deep.equal(await answerOf(fresh));
    expect(second.carCount).to.equal(2);
    first.stop();
    second.stop();
    alone.stop();
    fresh.stop();
  });

  it('keeps a bounded number of rows per car, thinning the old ones and keeping the newest', () => {
    const car = new CarHistory({ windowMs: 365 * 86_400_000, resolutionMs: 1000, maxRows: 256, heartbeatMs: 600_000 });
    const sample = new SignalSample();
    for (let i = 0; i < 20_000; i++) {
      sample.reset(START + i * 1000);
      sample.speed = i % 100;
      car.add(sample, NaN, NaN);
    }
    expect(car.rows).to.be.at.most(256);
    // Typed arrays of at most 256 rows: 8 (time) + 10 x 4 + 2 x 8 bytes, plus the open row.
    expect(car.bytes).to.be.at.most(256 * 64 + 12 * 8);
    const { t } = car.query(0, Number.MAX_SAFE_INTEGER, 10_000);
    expect(t[t.length - 1]).to.equal((START + 19_999_000) / 1000);
    const gaps = t.slice(1).map((v, i) => v - t[i]!);
    // Recent rows at full resolution, old ones coarser.
    expect(gaps[gaps.length - 1]).to.equal(1);
    expect(gaps[0]).to.be.greaterThan(8);
    // Thinning a query keeps the first and the last row.
    const thin = car.query(0, Number.MAX_SAFE_INTEGER, 10);
    expect(thin.t).to.have.length(10);
    expect(thin.t[0]).to.equal(t[0]);
    expect(thin.t[9]).to.equal(t[t.length - 1]);
  });

  it('allocates no rows before the first signal, and an idle car gives its spare rows back without losing one', () => {
    const car = new CarHistory({ windowMs: 86_400_000, resolutionMs: 1000, maxRows: 1024, heartbeatMs: 600_000 });
    expect(car.bytes).to.equal(0);
    expect(car.query(0, Number.MAX_SAFE_INTEGER, 100).t).to.deep.equal([]);
    const sample = new SignalSample();
    const feed = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        sample.reset(START + i * 1000);
        sample.speed = i;
        sample.latitude = 37 + i / 1000;
        sample.longitude = -122 - i / 1000;
        car.add(sample, NaN, NaN);
      }
    };
    feed(0, 5);
    const grown = car.bytes;
    expect(grown).to.be.greaterThan(0);
    const before = car.query(0, Number.MAX_SAFE_INTEGER, 100);
    car.trim();
    // Exactly the 5 rows: the open row (12 float64), then 64 bytes a row.
    expect(car.bytes).to.equal(12 * 8 + 5 * 64);
    expect(car.bytes).to.be.lessThan(grown);
    expect(car.query(0, Number.MAX_SAFE_INTEGER, 100)).to.deep.equal(before);
    // It grows again when the car sends; rows and the carried-forward values survive.
    sample.reset(START + 5000);
    sample.soc = 50;
    car.add(sample, NaN, NaN);
    feed(6, 40);
    const { t, columns } = car.query(0, Number.MAX_SAFE_INTEGER, 100);
    expect(t).to.have.length(40);
    // The soc-only row at 5 s carries the speed forward.
    expect(columns.speed).to.deep.equal([0, 1, 2, 3, 4, 4, ...Array.from({ length: 34 }, (_, i) => i + 6)]);
    expect(columns.soc.slice(0, 5)).to.deep.equal([null, null, null, null, null]);
    expect(columns.soc.slice(5).every((v) => v === 50)).to.equal(true);
    expect(columns.latitude[39]).to.equal(37.039);
    expect(columns.longitude[0]).to.equal(-122);
  });

  it('folds a lone record in on its own within the window, a burst of 1,000 on the next turn, and requests see both at once', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const history = newHistory(metrics);
    const bus = new InProcessBus();
    history.start(bus);
    try {
      const records = storyRecords(VIN_A, 1001, START);
      // A lone record: no drain() call, no request; the window's timer folds it in.
      bus.publish(records[0]!, () => {});
      for (let waited = 0; (await counter(metrics, 'fleet_telemetry_history_records_total')) < 1; waited++) {
        if (waited > 200) throw new Error('the lone record was never folded in');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // A burst: folded in on the next turn, without waiting for the window.
      for (const record of records.slice(1)) bus.publish(record, () => {});
      await new Promise((resolve) => setImmediate(resolve));
      expect(await counter(metrics, 'fleet_telemetry_history_records_total')).to.equal(1001);
      // A request folds in what is queued before it answers.
      for (const record of storyRecords(VIN_B, 10, START)) bus.publish(record, () => {});
      expect((await history.query(VIN_B, START, START + 3_600_000, 100)).series.t).to.not.be.empty;
    } finally {
      history.stop();
    }
  });

  it('skips unchanged records except for a heartbeat, and late (resent) ones', () => {
    const car = new CarHistory({ windowMs: 86_400_000, resolutionMs: 1000, maxRows: 1024, heartbeatMs: 60_000 });
    const sample = new SignalSample();
    for (let i = 0; i < 300; i++) {
      sample.reset(START + i * 1000);
      sample.soc = 80;
      car.add(sample, NaN, NaN);
    }
    expect(car.rows).to.equal(5);
    sample.reset(START - 10_000);
    sample.soc = 10;
    car.add(sample, NaN, NaN);
    expect(car.late).to.equal(1);
    expect(car.query(0, Number.MAX_SAFE_INTEGER, 100).columns.soc.every((v) => v === 80)).to.equal(true);
  });
});

describe('history and trip requests on the dashboard socket', () => {
  function setup() {
    const bus = new InProcessBus();
    const metrics = new ServerMetrics({ collectDefaults: false });
    const history = newHistory(metrics);
    history.start(bus);
    const hub = new DashboardHub({
      bus,
      snapshots: { snapshot: async (vin) => ({ vin, connected: false, state: new Map(), lastSeenAt: null, stale: false }) },
      publisher: { publish: () => {} },
      directory: { summary: (vin) => ({ vin, connected: false, stale: false, lastSeenAt: null }), list: () => [] },
      metrics: metrics.dashboard,
      logger: silentLogger(),
      history,
    });
    hub.start();
    const client = new MemoryClient();
    const session = new DashboardSession(client, new DashboardGrant(false, [VIN_A], Date.now() + 60_000, null, 'hs256'));
    hub.opened(session);
    client.received.length = 0;
    for (const record of storyRecords(VIN_A, 200, START)) bus.publish(record, () => {});
    for (const record of storyRecords(VIN_B, 200, START, 9)) bus.publish(record, () => {});
    return { hub, session, client, history };
  }

  it('answers with columnar series, trips and charges; a trip with its track', async () => {
    const { hub, session, client, history } = setup();
    await hub.received(session, JSON.stringify({ type: 'history', vin: VIN_A, from: '2026-11-28T08:00:00Z', to: '2026-11-28T09:00:00Z', maxPoints: 20 }));
    const answer = client.received.shift()!;
    expect(answer.type).to.equal('recent_history');
    expect(answer.vin).to.equal(VIN_A);
    expect(answer.t).to.have.length(20);
    expect(Object.keys(answer.series)).to.include.members(['soc', 'range', 'speed', 'power', 'chargerPower', 'latitude', 'longitude', 'gear', 'charging']);
    expect(answer.series.soc).to.have.length(20);
    expect(answer.trips).to.have.length(1);
    expect(answer.trips[0].track).to.equal(undefined);
    expect(answer.charges).to.have.length(1);

    await hub.received(session, JSON.stringify({ type: 'trip', vin: VIN_A, id: answer.trips[0].id }));
    const trip = client.received.shift()!;
    expect(trip.type).to.equal('trip');
    expect(trip.trip.track.length % 3).to.equal(0);
    expect(trip.trip.track.length).to.be.greaterThan(30);
    history.stop();
  });

  it('refuses what the token does not allow, bad ranges, unknown trips; nothing of another car leaks', async () => {
    const { hub, session, client, history } = setup();
    await hub.received(session, JSON.stringify({ type: 'history', vin: VIN_B }));
    await hub.received(session, JSON.stringify({ type: 'trip', vin: VIN_B, id: 'trip-1' }));
    await hub.received(session, JSON.stringify({ type: 'history', vin: VIN_A, from: '2026-11-28T10:00:00Z', to: '2026-11-28T09:00:00Z' }));
    await hub.received(session, JSON.stringify({ type: 'history', vin: VIN_A, from: 'yesterday' }));
    await hub.received(session, JSON.stringify({ type: 'history', vin: VIN_A, maxPoints: 1_000_000 }));
    await hub.received(session, JSON.stringify({ type: 'trip', vin: VIN_A, id: 'trip-0' }));
    await hub.received(session, JSON.stringify({ type: 'history' }));
    expect(client.received.map((m) => `${m.type}:${m.code}`)).to.deep.equal([
      'error:forbidden_vin',
      'error:forbidden_vin',
      'error:invalid_range',
      'error:invalid_range',
      'error:invalid_range',
      'error:unknown_trip',
      'error:malformed_message',
    ]);
    // Only the refusals name the other car (echoing the request); no data of it is sent.
    expect(client.received.every((m) => m.type === 'error')).to.equal(true);
    history.stop();
  });
});

describe('map tiles in the page policy', () => {
  it('allows images from the tile server only (a {s} template as a subdomain wildcard), none without a map', () => {
    expect(tileOrigins('https://tile.openstreetmap.org/{z}/{x}/{y}.png')).to.deep.equal(['https://tile.openstreetmap.org']);
    expect(tileOrigins('https://{s}.tile.example.com/{z}/{x}/{y}.png?key=abc')).to.deep.equal(['https://*.tile.example.com']);
    expect(tileOrigins('http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png')).to.deep.equal(['http://127.0.0.1:8080']);
    expect(tileOrigins('')).to.deep.equal([]);
  });
});

/** The records as their actors publish them (BusRecord.origin set: the history caches its car entry there). */
function storyRecordsWithOrigin(records: BusRecord[], actors: ReadonlyMap<string, LocalVehicleState>): BusRecord[] {
  return records.map((record) => ({ ...record, origin: actors.get(record.vin)! }));
}
