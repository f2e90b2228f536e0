import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

describe('npm run demo (the embedded default), run as a person would', function () {
  this.timeout(60_000);

  it('creates dev certificates, streams simulated cars, acks everything and stops cleanly', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-telemetry-demo-'));
    const child = spawn(process.execPath, [CLI, 'demo', '--duration', '11', '--cars', '3', '--rate', '2'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', PORT: '0', DASHBOARD_PORT: '0', METRICS_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, stderr).to.equal(0);
    expect(stderr).to.include('3 simulated car(s) streaming');
    expect(stderr).to.match(/https:\/\/localhost:\d+\/\?token=[\w-]+\.[\w-]+\.[\w-]+/);
    expect(stderr).to.not.match(/^config: warning/m);
    expect(statSync(join(cwd, 'certs', 'server.key')).mode & 0o777).to.equal(0o600);
    const events = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    const progress = events.filter((e) => e.event === 'demo_progress').at(-1);
    expect(progress, 'a progress line after 10 s').to.not.equal(undefined);
    expect(progress!.carsConnected).to.equal(3);
    expect(progress!.acked as number).to.be.greaterThan(30);
    expect(progress!.errors).to.equal(0);
    expect(events.filter((e) => e.event === 'vehicle_connected')).to.have.length(3);
    expect(events.some((e) => e.event === 'server_stopped')).to.equal(true);
  });
});
