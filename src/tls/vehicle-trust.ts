import type { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCaBundle, operatorCasOf } from '../protocol/identity.js';

export interface VehicleTrust {
  /** The one CA file uWS is given (it takes one). */
  file: string;
  /** CAs whose certificates identify cars by CN. */
  operatorCas: X509Certificate[];
  cleanup(): void;
}

/**
 * uWS takes one CA file; with an extra operator CA the two are joined in a private temp file. Operator
 * CAs (anything not named like a Tesla CA, plus the whole extra file) identify cars by CN. Read anew
 * at each certificate reload, so a renewed bundle is picked up like a renewed certificate.
 */
export function vehicleTrust(caFile: string, extraFile: string): VehicleTrust {
  const mainPem = readFileSync(caFile, 'utf8');
  const main = loadCaBundle(mainPem);
  const operatorCas = operatorCasOf(main);
  if (!extraFile) return { file: caFile, operatorCas, cleanup() {} };
  const extraPem = readFileSync(extraFile, 'utf8');
  operatorCas.push(...loadCaBundle(extraPem));
  const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-ca-'));
  const file = join(dir, 'vehicle-trust.pem');
  writeFileSync(file, `${mainPem.trim()}\n${extraPem.trim()}\n`, { mode: 0o600 });
  return { file, operatorCas, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
