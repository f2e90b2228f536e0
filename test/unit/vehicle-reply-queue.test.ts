import { expect } from 'chai';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { UwsVehicleConnection, replyFlush } from '../../src/vehicle/vehicle-listener.js';
import type { WebSocket } from '../../src/uws/uws.js';

/** What a socket was sent, and what uWS's send answers (1 sent, 2 dropped for backpressure). */
class FakeSocket {
  readonly sent: number[] = [];
  corks = 0;
  ended: number | null = null;
  constructor(private readonly status: (reply: Uint8Array) => number = () => 1) {}
  cork(callback: () => void): void {
    this.corks++;
    callback();
  }
  send(reply: Uint8Array): number {
    this.sent.push(reply[0]!);
    return this.status(reply);
  }
  end(code: number): void {
    this.ended = code;
  }
}

function connectionOn(socket: FakeSocket, metrics: ServerMetrics, id: string): UwsVehicleConnection {
  const connection = new UwsVehicleConnection(id, `5YJ3E7EB0LF00000${id}`, 'vehicle_device', 'wifi', '', metrics.vehicle);
  connection.attach(socket as unknown as WebSocket<never>);
  return connection;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('vehicle reply queue: one set of arrays shared by every socket of a turn', () => {
  it('writes each socket its own replies, in order, in one cork, however they interleave', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const a = new FakeSocket();
    const b = new FakeSocket();
    const ca = connectionOn(a, metrics, '1');
    const cb = connectionOn(b, metrics, '2');
    // 700 replies in one turn: the shared arrays grow past their first 256 entries on the way.
    for (let i = 0; i < 700; i++) {
      const connection = i % 3 === 0 ? cb : ca;
      connection.awaitingReply++;
      connection.sendReply(Uint8Array.of(i % 256), 'ack', performance.now());
    }
    expect(a.sent).to.deep.equal([]);
    await turn();
    const expectedA: number[] = [];
    const expectedB: number[] = [];
    for (let i = 0; i < 700; i++) (i % 3 === 0 ? expectedB : expectedA).push(i % 256);
    expect(a.sent).to.deep.equal(expectedA);
    expect(b.sent).to.deep.equal(expectedB);
    expect([a.corks, b.corks]).to.deep.equal([1, 1]);
    expect(metrics.vehicle.replyCells.ack.pending).to.equal(700);
    // The next turn starts from an empty queue.
    ca.awaitingReply++;
    ca.sendReply(Uint8Array.of(9), 'error', null);
    await turn();
    expect(a.sent.at(-1)).to.equal(9);
    expect(a.sent.length).to.equal(expectedA.length + 1);
    expect(b.sent.length).to.equal(expectedB.length);
    expect(metrics.vehicle.replyCells.error.pending).to.equal(1);
  });

  it('counts a reply uWS dropped, and drops a closed socket\'s replies without writing them', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const full = new FakeSocket((reply) => (reply[0] === 2 ? 2 : 1));
    const closed = new FakeSocket();
    const cf = connectionOn(full, metrics, '3');
    const cc = connectionOn(closed, metrics, '4');
    cc.isOpen = false;
    for (const n of [1, 2, 3]) {
      cf.awaitingReply++;
      cf.sendReply(Uint8Array.of(n), 'ack', null);
      cc.awaitingReply++;
      cc.sendReply(Uint8Array.of(n), 'ack', null);
    }
    await turn();
    expect(full.sent).to.deep.equal([1, 2, 3]);
    expect(closed.sent).to.deep.equal([]);
    expect(metrics.vehicle.replyCells.ack.pending).to.equal(2);
    const dropped = await metrics.vehicle.repliesDropped.get();
    const byReason = Object.fromEntries(dropped.values.map((v) => [v.labels.reason, v.value]));
    expect(byReason).to.deep.equal({ backpressure: 1, connection_closed: 3 });
  });

  it('a socket whose write throws loses only its own replies and is closed; the others are written', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const broken = new FakeSocket(() => {
      throw new Error('write failed');
    });
    const fine = new FakeSocket();
    const cx = connectionOn(broken, metrics, '5');
    const cy = connectionOn(fine, metrics, '6');
    for (const n of [1, 2]) {
      cx.awaitingReply++;
      cx.sendReply(Uint8Array.of(n), 'ack', null);
      cy.awaitingReply++;
      cy.sendReply(Uint8Array.of(n), 'ack', null);
    }
    await turn();
    expect(fine.sent).to.deep.equal([1, 2]);
    expect(broken.ended).to.equal(1011);
    expect(cx.failure).to.be.instanceOf(Error);
    // Its queue is empty afterwards: a later reply is written alone.
    broken.ended = null;
    const again = new FakeSocket();
    const cz = connectionOn(again, metrics, '7');
    cz.awaitingReply++;
    cz.sendReply(Uint8Array.of(7), 'ack', null);
    await turn();
    expect(again.sent).to.deep.equal([7]);
  });
  it('writes the replies queued inside a delivery bracket when the outermost bracket ends, once, without waiting for a microtask', async () => {
    const metrics = new ServerMetrics({ collectDefaults: false });
    const a = new FakeSocket();
    const b = new FakeSocket();
    const ca = connectionOn(a, metrics, '5');
    const cb = connectionOn(b, metrics, '6');
    // One reply queued outside a bracket first: its microtask is queued, and must not write anything twice.
    ca.awaitingReply++;
    ca.sendReply(Uint8Array.of(1), 'ack', performance.now());
    replyFlush.begin();
    ca.awaitingReply++;
    ca.sendReply(Uint8Array.of(2), 'ack', performance.now());
    replyFlush.begin();
    cb.awaitingReply++;
    cb.sendReply(Uint8Array.of(3), 'error', null);
    replyFlush.end();
    expect([a.sent, b.sent], 'an inner bracket writes nothing').to.deep.equal([[], []]);
    replyFlush.end();
    expect([a.sent, b.sent], 'written as the outer bracket ends').to.deep.equal([[1, 2], [3]]);
    expect([a.corks, b.corks]).to.deep.equal([1, 1]);
    await turn();
    expect([a.sent, b.sent], 'the microtask queued before writes nothing more').to.deep.equal([[1, 2], [3]]);
    expect([a.corks, b.corks]).to.deep.equal([1, 1]);
    // A bracket with nothing queued writes nothing; after it, replies go by the microtask again.
    replyFlush.begin();
    replyFlush.end();
    cb.awaitingReply++;
    cb.sendReply(Uint8Array.of(4), 'ack', performance.now());
    expect(b.sent).to.deep.equal([3]);
    await turn();
    expect(b.sent).to.deep.equal([3, 4]);
    expect(metrics.vehicle.replyCells.ack.pending).to.equal(3);
    expect(metrics.vehicle.replyCells.error.pending).to.equal(1);
    expect(metrics.vehicle.ackLatency.child({}).count).to.equal(3);
  });
});
