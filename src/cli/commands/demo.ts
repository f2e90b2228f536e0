import { randomBytes } from 'node:crypto';
import { loadConfig, ConfigError } from '../../config/index.js';
import { DEFAULT_DEV_VINS, ensureDevPki } from '../../pki/dev-certs.js';
import { startServer } from '../../server.js';
import { mintDashboardToken } from '../../dashboard/dashboard-token.js';
import { SimulatedFleet } from '../../sim/simulated-fleet.js';
import type { CliCommand } from '../main.js';

/**
 * The embedded default: dev certificates, the in-process bus, and a few simulated cars streaming over
 * real mTLS, so a fresh checkout shows data flowing with one command. Real environment variables still
 * win over the demo's defaults.
 */
export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'Run the server on embedded defaults with dev certificates and simulated cars',
  usage: [
    'Usage: fleet-telemetry demo [--cars 3] [--rate 1] [--certs certs] [--duration SECONDS]',
    '',
    'Creates the dev PKI when absent, starts the server (vehicle port 4443, dashboard 8443, metrics',
    '9464 on 127.0.0.1 unless PORT/DASHBOARD_PORT/METRICS_PORT say otherwise) with the in-process bus,',
    'and streams from --cars simulated cars at --rate frames per second each. Ctrl-C stops everything.',
  ].join('\n'),
  options: {
    cars: { type: 'string', default: '3' },
    rate: { type: 'string', default: '1' },
    certs: { type: 'string', default: 'certs' },
    duration: { type: 'string' },
  },
  async run(values) {
    const cars = positiveInteger(values.cars as string, '--cars');
    const rate = Number(values.rate);
    if (!(rate > 0 && rate <= 100)) throw new Error('--rate must be a number of frames per second between 0 and 100');
    const domain = process.env.DOMAIN ?? 'localhost';
    const vins = devVins(cars);
    const pki = await ensureDevPki({ dir: values.certs as string, domain, vins });

    const env: NodeJS.ProcessEnv = {
      NODE_ENV: 'development',
      PORT: '4443',
      HOST: '127.0.0.1',
      DASHBOARD_PORT: '8443',
      DASHBOARD_HOST: '127.0.0.1',
      METRICS_PORT: '9464',
      DOMAIN: domain,
      TLS_CERT_FILE: pki.serverCert,
      TLS_KEY_FILE: pki.serverKey,
      TLS_CA_CHAIN_FILE: pki.caChain,
      VEHICLE_CA_FILE: pki.vehicleCaCert,
      // A fresh secret per run: dashboards get tokens minted by this process, nothing else knows it.
      JWT_SECRET: randomBytes(32).toString('base64url'),
      SELF_CHECK: 'false',
      ...process.env,
    };
    let config;
    try {
      config = loadConfig({ env });
    } catch (error) {
      if (error instanceof ConfigError) {
        for (const problem of error.problems) process.stderr.write(`${problem}\n`);
        return 2;
      }
      throw error;
    }
    const server = await startServer(config);
    const fleet = new SimulatedFleet({
      url: `wss://127.0.0.1:${server.vehiclePort}/`,
      servername: 'localhost',
      vins,
      certFile: pki.vehicleCert,
      keyFile: pki.vehicleKey,
      caChainFile: pki.caChain,
      rate,
    });
    fleet.start();
    // With JWT_SECRET replaced by an identity provider (JWT_JWKS_URL only) there is nothing to mint with.
    const dashboardToken = config.dashboard.jwtSecret
      ? await mintDashboardToken({
          secret: config.dashboard.jwtSecret, vins: ['*'], ttlSeconds: 12 * 3600, subject: 'demo',
          issuer: config.dashboard.jwtIssuer, audience: config.dashboard.jwtAudience,
        })
      : '<a token from your identity provider>';
    process.stderr.write(
      [
        '',
        `  fleet-telemetry demo: ${cars} simulated car(s) streaming to wss://localhost:${server.vehiclePort}/`,
        `  metrics:   http://${config.metrics.host}:${server.metricsPort}/metrics`,
        `  dashboard: https://localhost:${server.dashboardPort}/?token=${dashboardToken}`,
        '             (dev certificate: trust certs/root-ca.pem or accept the browser warning)',
        '  Ctrl-C to stop.',
        '',
      ].join('\n'),
    );

    const progress = setInterval(() => {
      const s = fleet.stats;
      server.logger.info({ carsConnected: s.connected, sent: s.sent, acked: s.acked, errors: s.errors, resent: s.resent }, 'demo_progress');
    }, 10_000);

    await new Promise<void>((resolve) => {
      const done = () => resolve();
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
      if (values.duration !== undefined) setTimeout(done, positiveInteger(values.duration as string, '--duration') * 1000);
    });
    clearInterval(progress);
    await fleet.stop();
    await server.stop();
    return fleet.stats.errors === 0 ? 0 : 1;
  },
};

function positiveInteger(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number, got "${text}"`);
  return value;
}

/** The default dev VINs first, then more in the same style. */
function devVins(count: number): string[] {
  const vins = DEFAULT_DEV_VINS.slice(0, count);
  // VIN-shaped (no I, O or Q): the server refuses operator-CA certificates whose CN is not a VIN.
  for (let i = vins.length; i < count; i++) vins.push(`5YJ3DEV0SYM${String(i).padStart(6, '0')}`);
  return vins;
}
