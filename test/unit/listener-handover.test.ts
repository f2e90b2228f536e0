import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { checkListenerHandover, MIGRATE_SETTING } from '../../src/lifecycle/listener-handover.js';
import { createLogger } from '../../src/log/logger.js';

const SYSCTL_FILE = fileURLToPath(new URL('../../../deploy/60-fleet-telemetry.conf', import.meta.url));

function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

describe('listener hand-over: queued connections of a closing SO_REUSEPORT socket', () => {
  it('warns, naming the setting and the file that fixes it, while the kernel resets them', () => {
    const { logger, lines } = capture();
    const read = (path: string): string => {
      expect(path).to.equal(MIGRATE_SETTING);
      return '0\n';
    };
    expect(checkListenerHandover(logger, read)).to.equal('resets');
    expect(lines.map((l) => l.event)).to.deep.equal(['listener_handover_resets_queued_connections']);
    expect(lines[0]!.setting).to.equal('net.ipv4.tcp_migrate_req');
  });

  it('is silent when the kernel migrates them, and when the setting does not exist', () => {
    const { logger, lines } = capture();
    expect(checkListenerHandover(logger, () => '1\n')).to.equal('migrates');
    expect(checkListenerHandover(logger, () => {
      throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    })).to.equal('unknown');
    expect(lines).to.deep.equal([]);
  });

  it('deploy/60-fleet-telemetry.conf sets exactly the setting the server checks', () => {
    const settings = readFileSync(SYSCTL_FILE, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    expect(settings).to.deep.equal(['net.ipv4.tcp_migrate_req = 1']);
    expect(MIGRATE_SETTING).to.equal('/proc/sys/net/ipv4/tcp_migrate_req');
  });
});
