import { expect } from 'chai';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { isStreamNotFound, isTimeout, isWrongLastSequence } from '../../src/bus/nats/nats-errors.js';
import { NatsServer } from '../helpers/nats-server.js';

/** What a promise rejected with (the test fails if it resolved). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

// The failures the NATS bus tells apart, produced by a real nats-server, so a client upgrade that
// changes the error types fails here instead of silently turning conflicts into errors.
describe('NATS failures classified by the clients\' typed errors (real nats-server)', function () {
  this.timeout(20_000);
  let server: NatsServer;
  let nc: NatsConnection;

  before(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
  });
  after(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it('a missing stream is "stream not found", and nothing else is', async () => {
    const jsm = await jetstreamManager(nc);
    const missing = await rejection(jsm.streams.info('NO_SUCH_STREAM'));
    expect(isStreamNotFound(missing)).to.equal(true);
    expect(isWrongLastSequence(missing)).to.equal(false);
    expect(isTimeout(missing)).to.equal(false);
  });

  it('a lost optimistic KV write (create over an entry, update at a stale revision) is a wrong last sequence', async () => {
    const kv = await new Kvm(nc).create('errors_test');
    const first = await kv.create('car', new TextEncoder().encode('a'));
    const created = await rejection(kv.create('car', new TextEncoder().encode('b')));
    expect(isWrongLastSequence(created)).to.equal(true);
    await kv.update('car', new TextEncoder().encode('c'), first);
    const stale = await rejection(kv.update('car', new TextEncoder().encode('d'), first));
    expect(isWrongLastSequence(stale)).to.equal(true);
    expect(isStreamNotFound(stale)).to.equal(false);
  });

  it('a publish nobody acknowledges in time is a timeout', async () => {
    // A plain subscriber takes the request and never answers: the JetStream ack never comes.
    const silent = nc.subscribe('silent.subject');
    const js = jetstream(nc);
    const late = await rejection(js.publish('silent.subject', new Uint8Array(1), { timeout: 200 }));
    silent.unsubscribe();
    expect(isTimeout(late)).to.equal(true);
    expect(isWrongLastSequence(late)).to.equal(false);
  });
});
