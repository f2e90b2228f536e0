import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki, issueCertificate, loadCertificateAuthority, type DevPkiFiles } from '../../src/pki/dev-certs.js';

/** A simulated car's identity: its VIN and the client certificate (CN = VIN) it presents. */
export interface CarIdentity {
  vin: string;
  certPem: string;
  keyPem: string;
}

export interface BenchPki {
  files: DevPkiFiles;
  /** What cars trust for the server (the `ca` of their telemetry config). */
  caChainPem: string;
  cars: CarIdentity[];
}

interface CertCache {
  vehicleCaFingerprint: string;
  cars: CarIdentity[];
}

/** Where certificates are kept between runs: issuing 10,000 takes about a minute. */
export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fleet-telemetry-bench');
}

/** VINs of the bench fleet: 17 characters, letters and digits, numbered so runs are comparable. */
export function benchVin(index: number): string {
  return `5YJBENCH${String(index).padStart(9, '0')}`;
}

const CERT_VALID_DAYS = 365;
/** Certificates this close to expiry are issued anew. */
const RENEW_MS = 7 * 86_400_000;

/**
 * The dev PKI (server chain and vehicle CA, from src/pki/dev-certs.ts) plus `count` car certificates
 * issued by its vehicle CA, each car with its own key pair. The certificates are cached in one file
 * next to the PKI and reused while the vehicle CA is the same; only missing ones are issued.
 */
export async function ensureBenchPki(o: { cacheDir: string; count: number; log?: (line: string) => void }): Promise<BenchPki> {
  const dir = join(o.cacheDir, 'pki');
  const files = await ensureDevPki({ dir, domain: 'localhost', vins: [] });
  const caCertPem = await readFile(files.vehicleCaCert, 'utf8');
  const fingerprint = new X509Certificate(caCertPem).fingerprint256;
  const cacheFile = join(o.cacheDir, 'fleet-certs.json');

  let cars: CarIdentity[] = [];
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as CertCache;
    if (cached.vehicleCaFingerprint === fingerprint && usable(cached.cars[0])) cars = cached.cars;
  } catch {
    // no cache yet, or unreadable: issue afresh
  }
  if (cars.length < o.count) {
    const ca = await loadCertificateAuthority(caCertPem, await readFile(files.vehicleCaKey, 'utf8'));
    const started = Date.now();
    for (let i = cars.length; i < o.count; i++) {
      const vin = benchVin(i);
      const issued = await issueCertificate({ issuer: ca, commonName: vin, clientAuth: true, validDays: CERT_VALID_DAYS });
      cars.push({ vin, certPem: issued.certPem, keyPem: issued.keyPem });
      if ((i + 1) % 1000 === 0) o.log?.(`issued ${i + 1}/${o.count} car certificates (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    await mkdir(o.cacheDir, { recursive: true, mode: 0o700 });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ vehicleCaFingerprint: fingerprint, cars } satisfies CertCache), { mode: 0o600 });
    await rename(tmp, cacheFile);
  }
  return { files, caChainPem: await readFile(files.caChain, 'utf8'), cars: cars.slice(0, o.count) };
}

/** Certificates are issued in VIN order, so the first one is the oldest and expires first. */
function usable(car: CarIdentity | undefined): boolean {
  if (car === undefined) return false;
  try {
    return Date.parse(new X509Certificate(car.certPem).validTo) - RENEW_MS > Date.now();
  } catch {
    return false;
  }
}
