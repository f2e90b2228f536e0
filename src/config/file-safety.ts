import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { certificateBlocks } from '../pki/pem.js';
import type { Reporter } from './tls-files.js';

/** A secret file the server reads, with the setting that names it. */
export interface SecretFile {
  env: string;
  path: string;
  shown: string;
}

/** Names the dev PKI (src/pki/dev-certs.ts) gives its CAs: never a production trust anchor. */
const DEV_CA_NAME = /(^|\n)CN=Fleet Telemetry Dev /;

/**
 * Production only: a private key, credentials file or `.env` that every user of the machine can read
 * is a leaked key. Group access is left alone (a `ssl-cert` group is a common, deliberate setup).
 */
export function checkSecretFileModes(files: readonly SecretFile[], report: Reporter): void {
  for (const file of files) {
    let mode: number;
    try {
      mode = statSync(file.path).mode;
    } catch {
      continue; // missing files are reported by the checks that read them
    }
    if ((mode & 0o007) !== 0) {
      report.error(file.env, `${file.shown} is readable by every user of this machine (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); run chmod o-rwx on it (NODE_ENV is production)`);
    }
  }
}

/**
 * Production only: the vehicle trust bundle must not be the dev CA (anyone with the repository's
 * tooling can mint its certificates), nor sit beside its own private key (whoever reads the server's
 * files could mint cars).
 */
export function checkVehicleCaFile(file: SecretFile, report: Reporter): void {
  let text: string;
  try {
    text = readFileSync(file.path, 'utf8');
  } catch {
    return;
  }
  for (const block of certificateBlocks(text)) {
    let subject: string;
    try {
      subject = new X509Certificate(block).subject;
    } catch {
      continue;
    }
    if (DEV_CA_NAME.test(subject)) {
      report.error(file.env, `${file.shown} holds the development CA (${subject.split('\n').find((l) => l.startsWith('CN=')) ?? subject}); production trusts Tesla's CAs and your own fleet CA (NODE_ENV is production)`);
      break;
    }
  }
  const stem = basename(file.path, extname(file.path));
  for (const candidate of [`${stem}.key`, `${stem}-key.pem`, `${stem}.key.pem`]) {
    const beside = join(dirname(file.path), candidate);
    if (existsSync(beside)) {
      report.error(file.env, `the private key of ${file.shown} sits beside it (${candidate}); keep CA keys off the server (NODE_ENV is production)`);
    }
  }
}
