import { expect } from 'chai';
import { sampleThreads } from '../../tools/proc-stats.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { testEnv } from '../helpers/test-server.js';

describe('node dist/main.js names its threads', function () {
  this.timeout(40_000);
  let server: ServerProcess | null = null;

  afterEach(async () => {
    if (server !== null) {
      server.kill('SIGKILL');
      await server.exited;
      server = null;
    }
  });

  it('the platform threads v8-platform, each decode worker decode-worker, the main thread stays node', async function () {
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
