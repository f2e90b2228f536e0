import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AppConfig } from '../../src/config/types.js';
import type { DashboardListener } from '../../src/dashboard/dashboard-listener.js';
import { createLogger } from '../../src/log/logger.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { createCertificateAuthority, issueCertificate } from '../../src/pki/dev-certs.js';
import { CertificateReloader } from '../../src/tls/certificate-reloader.js';
import type { VehicleListener } from '../../src/vehicle/vehicle-listener.js';

const DAY_MS = 86_400_000;

describe('certificate expiry: days-left gauge and the warning from 14 days out', () => {
  it('reports days left per listener and warns only under 14 days', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-expiry-'));
    const ca = await createCertificateAuthority({ commonName: 'Expiry Test CA' });
    const write = async (name: string, days: number): Promise<string> => {
      const leaf = await issueCertificate({ issuer: ca, commonName: 'localhost', dnsNames: ['localhost'], serverAuth: true, notBefore: new Date(Date.now() - DAY_MS), notAfter: new Date(Date.now() + days * DAY_MS) });
      writeFileSync(join(dir, `${name}.pem`), leaf.chainPem);
      writeFileSync(join(dir, `${name}.key`), leaf.keyPem);
      return join(dir, name);
    };
    const vehicle = await write('vehicle', 10);
    const dashboard = await write('dashboard', 60);
    const config = {
      tls: { certFile: `${vehicle}.pem`, keyFile: `${vehicle}.key`, keyPassphrase: '', caChainFile: '', watchFiles: false },
      vehicleCa: { file: '', extraFile: '' },
      dashboard: { certFile: `${dashboard}.pem`, keyFile: `${dashboard}.key` },
    } as unknown as AppConfig;
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const metrics = new ServerMetrics({ collectDefaults: false });
    const reloader = new CertificateReloader({
      config,
      vehicles: {} as VehicleListener,
      dashboard: {} as DashboardListener,
      metrics: metrics.tls,
      logger: createLogger('info', sink),
      trust: { file: '', operatorCas: [], cleanup() {} },
    });

    const days = new Map(reloader.daysLeft());
    expect(days.get('vehicle')).to.be.closeTo(10, 0.01);
    expect(days.get('dashboard')).to.be.closeTo(60, 0.01);
    const exposition = await metrics.registry.metrics();
    const seconds = Number(/fleet_telemetry_tls_certificate_expiry_seconds\{listener="vehicle"\} (\d+)/.exec(exposition)?.[1]);
    expect(seconds / 86_400).to.be.closeTo(10, 0.01);

    reloader.checkExpiry();
    await new Promise((resolve) => setImmediate(resolve));
    const warnings = lines.filter((l) => l.event === 'certificate_expiring');
    expect(warnings.map((w) => w.listener)).to.deep.equal(['vehicle']);
    expect(warnings[0]!.daysLeft).to.equal(9);

    // Fifty days on, the dashboard one is inside the window too.
    lines.length = 0;
    reloader.checkExpiry(Date.now() + 50 * DAY_MS);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => l.event === 'certificate_expiring').map((w) => w.listener)).to.deep.equal(['vehicle', 'dashboard']);
  });
});
