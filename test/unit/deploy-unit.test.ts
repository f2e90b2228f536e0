import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../../deploy/fleet-telemetry.service', import.meta.url));

/** `Key=value` lines of the [Service] section, in order (a key may repeat). */
function serviceSettings(text: string): Array<[string, string]> {
  const section = text.split(/^\[Service\]$/m)[1]?.split(/^\[/m)[0] ?? '';
  return section
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)] as [string, string];
    });
}

describe('deploy/fleet-telemetry.service', () => {
  const text = readFileSync(UNIT, 'utf8');
  const settings = serviceSettings(text);
  const value = (key: string): string | undefined => settings.find(([k]) => k === key)?.[1];

  it('runs node dist/main.js as an unprivileged user that may bind 443 and nothing more', () => {
    expect(value('ExecStart')).to.match(/\bnode dist\/main\.js$/);
    expect(value('User')).to.be.a('string').and.not.equal('root');
    expect(value('AmbientCapabilities')).to.equal('CAP_NET_BIND_SERVICE');
    expect(value('CapabilityBoundingSet')).to.equal('CAP_NET_BIND_SERVICE');
    expect(value('NoNewPrivileges')).to.equal('true');
  });

  it('restarts on failure but not on a bad configuration, reloads with SIGHUP, stops with SIGTERM in time', () => {
    expect(value('Restart')).to.equal('on-failure');
    expect(value('RestartPreventExitStatus')).to.equal('2');
    expect(value('ExecReload')).to.match(/kill -HUP \$MAINPID$/);
    expect(value('KillSignal')).to.equal('SIGTERM');
    expect(Number(value('TimeoutStopSec'))).to.be.greaterThan(15);
  });

  it('has the usual hardening', () => {
    for (const [key, expected] of [
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'true'],
      ['PrivateTmp', 'true'],
      ['PrivateDevices', 'true'],
      ['ProtectKernelTunables', 'true'],
      ['RestrictSUIDSGID', 'true'],
    ] as const) {
      expect(value(key), key).to.equal(expected);
    }
  });

  it('passes systemd-analyze verify', function () {
    const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((path) => existsSync(path));
    if (analyze === undefined) {
      // Not every build machine has systemd (containers often do not): said, not hidden.
      this.test!.title += ' (pending: systemd-analyze not installed; apt-get install systemd)';
      this.skip();
    }
    // verify checks that ExecStart's program exists: point it at this machine's node.
    const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-unit-'));
    const unit = join(dir, 'fleet-telemetry.service');
    writeFileSync(unit, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
    const result = spawnSync(analyze!, ['verify', '--man=no', unit], { encoding: 'utf8', timeout: 30_000 });
    // Lines about units other than ours (the host's own configuration) are not ours to judge.
    const ours = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes('fleet-telemetry'));
    expect(ours, ours.join('\n')).to.deep.equal([]);
    expect(result.status, `${result.stdout}${result.stderr}`).to.equal(0);
  });
});
