import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeAtomically } from '../../pki/dev-certs.js';
import { PUBLIC_KEY_PATH } from '../../vehicle/vehicle-listener.js';
import { EXIT_OK, UsageError, cliSettings, out, runSetupCommand } from '../setup-support.js';
import type { CliCommand } from '../main.js';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export const keysGenerateCommand: CliCommand = {
  name: 'keys generate',
  summary: "Create the app's P-256 key pair for the Fleet API (public key served to Tesla, private key signs configs)",
  usage: [
    'Usage: fleet-telemetry keys generate [--dir keys] [--domain DOMAIN] [--force]',
    '',
    'Writes <dir>/private-key.pem (mode 0600; never printed: it signs your cars\' configs) and',
    '<dir>/public-key.pem (served to Tesla). Refuses to replace existing keys without --force: cars paired',
    'with the old key would stop accepting configs until paired again.',
  ].join('\n'),
  options: {
    dir: { type: 'string', default: 'keys' },
    domain: { type: 'string' },
    force: { type: 'boolean', default: false },
  },
  run: (values) =>
    runSetupCommand('keys generate', async () => {
      // DOMAIN from the same sources the server reads; read first, so a bad value stops before any key is written.
      const configured = values.domain === undefined ? cliSettings(['DOMAIN']).domain : '';
      const dir = resolve(values.dir as string);
      const privatePath = join(dir, 'private-key.pem');
      const publicPath = join(dir, 'public-key.pem');
      if (!values.force && ((await exists(privatePath)) || (await exists(publicPath)))) {
        throw new UsageError(`${privatePath} or ${publicPath} already exists; --force replaces them (cars must then pair the new key)`);
      }
      const created = await mkdir(dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await chmod(dir, 0o700);
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      if (values.force) await rm(privatePath, { force: true });
      if (values.force) await rm(publicPath, { force: true });
      await writeAtomically(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
      await writeAtomically(publicPath, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
      // Tesla never fetches a key from localhost (the default): show a placeholder rather than a wrong address.
      const domain = (values.domain as string | undefined) ?? (configured !== 'localhost' ? configured : '<your domain>');
      out(`public key:  ${publicPath}`);
      out(`private key: ${privatePath} (mode 0600; keep it secret and backed up)`);
      out('');
      out(`Tesla fetches the public key from https://${domain}${PUBLIC_KEY_PATH}`);
      out('The server serves it there (no client certificate needed) with:');
      out(`  TESLA_PUBLIC_KEY_FILE=${publicPath}`);
      out('To sign configs without the vehicle-command proxy:');
      out(`  TESLA_PRIVATE_KEY_FILE=${privatePath}`);
      out(`Then pair the key on each car: open https://tesla.com/_ak/${domain} on the owner's phone.`);
      return EXIT_OK;
    }),
};
