import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DEV_VINS } from '../../src/pki/dev-certs.js';
import { Mosquitto, Watcher, eventually } from '../helpers/mosquitto.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

describe('npm run demo -- --mqtt URL (real mosquitto)', function () {
  this.timeout(60_000);

  it('starts with MQTT: the simulated cars appear as Home Assistant devices with live values', async () => {
    const broker = await Mosquitto.start();
    const watcher = await Watcher.connect(broker.url);
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-telemetry-demo-mqtt-'));
    const child = spawn(process.execPath, [CLI, 'demo', '--duration', '5', '--cars', '2', '--rate', '2', '--mqtt', broker.url], {
      cwd,
      env: { PATH: process.env.PATH ?? '', PORT: '0', DASHBOARD_PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    try {
      const [first, second] = DEFAULT_DEV_VINS;
      await eventually(() => [first, second].every((vin) => watcher.retained.has(`homeassistant/sensor/${vin}/battery_level/config`)), 20_000, 'both cars discovered');
      await eventually(() => [first, second].every((vin) => watcher.retained.get(`tesla/${vin}/availability`) === 'online'), 10_000, 'both online');
      expect(JSON.parse(watcher.retained.get(`homeassistant/sensor/${second}/battery_level/config`) as string).device.model).to.equal('Model Y');
      await eventually(() => watcher.on(`tesla/${first}/v/Odometer`).length >= 1 && watcher.retained.has(`tesla/${first}/location`), 10_000, 'values flow');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code, stderr).to.equal(0);
      expect(stderr).to.include(`mqtt:      ${broker.url} under tesla/, Home Assistant discovery on homeassistant/`);
      // A clean stop: cars disconnected, and the server said it is gone.
      await eventually(() => watcher.retained.get(`tesla/${first}/availability`) === 'offline', 5000, 'car offline at stop');
      expect(watcher.retained.get('tesla/status')).to.equal('offline');
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      await watcher.close();
      await broker.dispose();
    }
  });
});
