import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import type { AppConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { ensureDevPki, type DevPkiFiles } from '../../src/pki/dev-certs.js';
import { startServer, type RunningServer, type ServerOverrides } from '../../src/server.js';
import type { CarClientOptions } from '../../src/sim/car-client.js';
import { mintDashboardToken } from '../../src/dashboard/dashboard-token.js';

export const TEST_VINS: [string, string, string, string] = ['5YJ3E7EB0LF000001', '5YJ3E7EB0LF000002', '5YJ3E7EB0LF000003', '5YJYGDEE1MF000004'];
export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

let sharedPki: Promise<DevPkiFiles> | null = null;

/** One dev PKI for the whole test run (certificate generation is the slow part of a server start). */
export function testPki(): Promise<DevPkiFiles> {
  sharedPki ??= ensureDevPki({ dir: mkdtempSync(join(tmpdir(), 'fleet-telemetry-test-pki-')), domain: 'localhost', vins: TEST_VINS });
  return sharedPki as Promise<DevPkiFiles>;
}

/** The environment a test server runs with: loopback, ephemeral ports, the test PKI. */
export async function testEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const pki = await testPki();
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DOMAIN: 'localhost',
    TLS_CERT_FILE: pki.serverCert,
    TLS_KEY_FILE: pki.serverKey,
    TLS_CA_CHAIN_FILE: pki.caChain,
    VEHICLE_CA_FILE: pki.vehicleCaCert,
    DASHBOARD_HOST: '127.0.0.1',
    DASHBOARD_PORT: '0',
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
    SELF_CHECK: 'false',
    DECODE_WORKERS: '1',
    // A stop closes its cars at once; the spread over a window is tested where it is the subject.
    SHUTDOWN_SPREAD_MS: '0',
    // No internet in tests: the page's map stays the grid unless a test names a tile server.
    MAP_TILE_URL: '',
    ...extra,
  };
}

export interface TestServer {
  server: RunningServer;
  config: AppConfig;
  pki: DevPkiFiles;
  carOptions(vin: string, extra?: Partial<CarClientOptions>): CarClientOptions;
  /** wss://127.0.0.1:<port>/dashboard, and the https:// base of the web page. */
  dashboardUrl: string;
  dashboardBaseUrl: string;
  /** An HS256 dashboard token signed with TEST_JWT_SECRET. */
  mintToken(vins: string[], ttlSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestServer(
  options: { env?: Record<string, string>; overrides?: ServerOverrides } = {},
): Promise<TestServer> {
  const pki = await testPki();
  const env = await testEnv(options.env);
  const config = loadConfig({ env, cwd: mkdtempSync(join(tmpdir(), 'fleet-telemetry-test-cwd-')) });
  const server = await startServer(config, { logger: silentLogger(), ...options.overrides });
  const caPem = readFileSync(pki.caChain);
  return {
    server,
    config,
    pki,
    carOptions: (vin, extra = {}) => ({
      url: `wss://127.0.0.1:${server.vehiclePort}/`,
      servername: 'localhost',
      vin,
      certPem: readFileSync(pki.vehicleCert(vin)),
      keyPem: readFileSync(pki.vehicleKey(vin)),
      caPem,
      ...extra,
    }),
    dashboardUrl: `wss://127.0.0.1:${server.dashboardPort}/dashboard`,
    dashboardBaseUrl: `https://127.0.0.1:${server.dashboardPort}`,
    mintToken: (vins, ttlSeconds = 600) =>
      mintDashboardToken({ secret: config.dashboard.jwtSecret, vins, ttlSeconds, issuer: config.dashboard.jwtIssuer, audience: config.dashboard.jwtAudience }),
    stop: () => server.stop(),
  };
}
