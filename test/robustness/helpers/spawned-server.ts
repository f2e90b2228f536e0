import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import type { CarClientOptions } from '../../../src/sim/car-client.js';
import { TEST_VINS, testEnv, testPki } from '../../helpers/test-server.js';
import { CountingCar } from './counting-car.js';
import { freePort } from '../../../tools/local-process.js';

const MAIN = new URL('../../../main.js', import.meta.url);

export { freePort };

export interface SpawnedServer {
  child: ChildProcess;
  vehiclePort: number;
  stderr(): string;
  carOptions(vin: string): CarClientOptions;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGKILL, for cleanup after a failed test only. */
  kill(): void;
}

/** `node dist/main.js` as operators run it, on loopback with the test PKI; resolves once a car is acked. */
export async function spawnServer(options: { env?: Record<string, string>; stdoutToDevFull?: boolean }): Promise<SpawnedServer> {
  const pki = await testPki();
  const vehiclePort = await freePort();
  const env = await testEnv({ PORT: String(vehiclePort), LOG_LEVEL: 'info', ...options.env });
  const stdout = options.stdoutToDevFull ? openSync('/dev/full', 'w') : 'ignore';
  const child = spawn(process.execPath, [MAIN.pathname], { env: { ...env, PATH: process.env.PATH ?? '' }, stdio: ['ignore', stdout, 'pipe'] });
  if (typeof stdout === 'number') closeSync(stdout);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const caPem = readFileSync(pki.caChain);
  const carOptions = (vin: string): CarClientOptions => ({
    url: `wss://127.0.0.1:${vehiclePort}/`,
    servername: 'localhost',
    vin,
    certPem: readFileSync(pki.vehicleCert(vin)),
    keyPem: readFileSync(pki.vehicleKey(vin)),
    caPem,
  });
  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited at start (${child.exitCode}): ${stderr}`);
    try {
      const probe = await CountingCar.connect(carOptions(TEST_VINS[0]), 2_000);
      await probe.close();
      break;
    } catch {
      if (Date.now() > until) {
        child.kill('SIGKILL');
        throw new Error(`server did not accept a car within 20 s: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }
  return { child, vehiclePort, stderr: () => stderr, carOptions, exited, kill: () => child.kill('SIGKILL') };
}
