import { expect } from 'chai';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { CarClient, type CarReply } from '../../src/sim/car-client.js';
import { sampleThreads } from '../../tools/proc-stats.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { TEST_VINS, testEnv, testPki } from '../helpers/test-server.js';
import { readFileSync } from 'node:fs';

describe('node dist/main.js as a process', function () {
  this.timeout(40_000);
  let server: ServerProcess | null = null;

  afterEach(async () => {
    if (server !== null) {
      server.kill('SIGKILL');
      await server.exited;
      server = null;
    }
  });

  it('exits 2 before opening any port, with one line per bad setting naming it', async () => {
    const env = await testEnv({ PORT: 'abc', TLS_CERT_FILE: '/nonexistent/server.pem', METRICS_PORT: '70000' });
    delete (env as Record<string, string | undefined>).JWT_SECRET;
    server = spawnServer(env);
    const { code } = await server.exited;
    expect(code).to.equal(2);
    const text = server.stderr.join('\n');
    expect(text).to.match(/^config: PORT: /m);
    expect(text).to.match(/^config: TLS_CERT_FILE: .*not found/m);
    expect(text).to.match(/^config: METRICS_PORT: /m);
    expect(text).to.match(/^config: JWT_SECRET: /m);
    expect(server.logs.filter((l) => l.event === 'server_started')).to.have.length(0);
  });

  it('never prints a secret it refuses', async () => {
    const secret = 'short-secret-value';
    server = spawnServer(await testEnv({ JWT_SECRET: secret }));
    const { code } = await server.exited;
    expect(code).to.equal(2);
    expect(server.stderr.join('\n')).to.match(/JWT_SECRET/).and.not.include(secret);
  });

  it('stops gracefully on SIGTERM under load: exit 0, every frame acked or kept by the car, cars told going-away', async () => {
    const env = await testEnv({ LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '5000' });
    server = spawnServer(env);
    const started = await server.waitForEvent('server_started');
    const pki = await testPki();
    const cars = await Promise.all(
      TEST_VINS.slice(0, 3).map((vin) =>
        CarClient.connect({
          url: `wss://127.0.0.1:${started.vehiclePort as number}/`,
          servername: 'localhost',
          vin,
          certPem: readFileSync(pki.vehicleCert(vin)),
          keyPem: readFileSync(pki.vehicleKey(vin)),
          caPem: readFileSync(pki.caChain),
        }),
      ),
    );
    const replies: Array<Promise<CarReply>> = [];
    let sending = true;
    const pump = cars.map(async (car) => {
      while (sending) {
        for (let i = 0; i < 20; i++) {
          replies.push(car.sendRecord('V', encodeVehicleData({ vin: car.vin, createdAt: new Date(), data: [{ key: 'VehicleSpeed', value: { doubleValue: i } }] })).catch(() => ({ kind: 'closed' }) as CarReply));
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    server.kill('SIGTERM');
    const closes = await Promise.all(cars.map((car) => car.closed));
    sending = false;
    await Promise.all(pump);
    const { code } = await server.exited;
    expect(code).to.equal(0);
    expect(closes.map((c) => c.code)).to.deep.equal([1001, 1001, 1001]);
    const answered = await Promise.all(replies);
    const acked = answered.filter((r) => r.kind === 'ack').length;
    const kept = answered.filter((r) => r.kind === 'closed').length;
    expect(acked).to.be.greaterThan(0);
    expect(acked + kept).to.equal(answered.length, 'every frame is either acked or still held by the car');
    expect(server.logs.some((l) => l.event === 'server_stopped')).to.equal(true);
  });

  it('names its threads: the platform threads v8-platform, each decode worker decode-worker, the main thread stays node', async function () {
    if (process.platform !== 'linux') this.skip();
    server = spawnServer(await testEnv({ LOG_LEVEL: 'info', DECODE_WORKERS: '2' }));
    await server.waitForEvent('server_started');
    const pid = server.child.pid!;
    // The workers name themselves when their channel task starts, which may come just after the log line.
    let names: string[] = [];
    for (let i = 0; i < 100; i++) {
      names = sampleThreads(pid).threads.filter((t) => t.tid !== pid).map((t) => t.name);
      if (names.filter((n) => n === 'decode-worker').length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(sampleThreads(pid).threads.find((t) => t.tid === pid)?.name).to.equal('node');
    expect(names.filter((n) => n === 'decode-worker')).to.have.length(2);
    // Node's default --v8-pool-size (4) plus its signal and delayed-task threads.
    expect(names.filter((n) => n === 'v8-platform')).to.have.length(6);
  });
});
