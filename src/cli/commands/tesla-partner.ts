import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import QRCode from 'qrcode';
import { pairingUrl } from '../../dashboard/tesla-login.js';
import { EXIT_FAILED, EXIT_OK, UsageError, cliSettings, err, out, runSetupCommand } from '../setup-support.js';
import { FleetApiClient } from '../../tesla/fleet-api.js';
import { oauthFromConfig } from '../../tesla/token-provider.js';
import { PUBLIC_KEY_PATH } from '../../vehicle/vehicle-listener.js';
import type { CliCommand } from '../main.js';

/** A P-256 public key (PEM) as Tesla shows it: hex of the uncompressed point, 04 || X || Y. */
export function publicKeyHex(pem: string): string {
  const jwk = createPublicKey(pem).export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new Error('not a P-256 public key');
  return `04${Buffer.from(jwk.x, 'base64url').toString('hex')}${Buffer.from(jwk.y, 'base64url').toString('hex')}`;
}

/** GET over https as Tesla would: certificate verified (system CAs, plus --key-url-ca for a staging host). */
function fetchServedKey(url: string, ca: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolveFetch, rejectFetch) => {
    const target = new URL(url);
    if (target.protocol !== 'https:') {
      rejectFetch(new Error('Tesla fetches the key over https only'));
      return;
    }
    const req = httpsRequest(target, { ...(ca !== undefined ? { ca } : {}), timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) rejectFetch(new Error(`HTTP ${res.statusCode}`));
        else resolveFetch(Buffer.concat(chunks).toString('utf8'));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => rejectFetch(error));
    req.end();
  });
}

export const partnerRegisterCommand: CliCommand = {
  name: 'partner register',
  summary: "Register DOMAIN with Tesla's partner account (client credentials) and check Tesla holds our public key",
  usage: [
    'Usage: fleet-telemetry partner register [--domain NAME] [--public-key FILE] [--key-url URL] [--key-url-ca FILE]',
    '',
    '1. gets a partner token (client-credentials grant with TESLA_CLIENT_ID / TESLA_CLIENT_SECRET)',
    `2. fetches https://DOMAIN${PUBLIC_KEY_PATH} as Tesla will and compares it with TESLA_PUBLIC_KEY_FILE`,
    '3. POST /api/1/partner_accounts {"domain": DOMAIN} (Tesla downloads the key during this call)',
    '4. GET /api/1/partner_accounts/public_key?domain=DOMAIN and compares Tesla\'s copy with ours',
    'Safe to re-run. Run it once per region (TESLA_API_BASE_URL). --key-url/--key-url-ca check another',
    'address (a staging host) instead of the public one.',
  ].join('\n'),
  options: {
    domain: { type: 'string' },
    'public-key': { type: 'string' },
    'key-url': { type: 'string' },
    'key-url-ca': { type: 'string' },
  },
  run: (values) =>
    runSetupCommand('partner register', async () => {
      const settings = cliSettings(['DOMAIN', 'TESLA_CLIENT_ID', 'TESLA_CLIENT_SECRET', 'TESLA_TOKEN_URL', 'TESLA_API_BASE_URL', 'TESLA_PUBLIC_KEY_FILE', 'TESLA_API_TIMEOUT_MS']);
      if (settings.signIn.clientId === '' || settings.signIn.clientSecret === '') throw new UsageError('TESLA_CLIENT_ID and TESLA_CLIENT_SECRET are required');
      const domain = ((values.domain as string | undefined) ?? settings.domain).trim().toLowerCase();
      if (domain === '' || domain === 'localhost') throw new UsageError('DOMAIN (or --domain) must be the public domain of your app, not localhost');
      const keyFile = (values['public-key'] as string | undefined) ?? settings.tesla.publicKeyFile;
      if (keyFile === '') throw new UsageError('TESLA_PUBLIC_KEY_FILE (or --public-key) is required: `fleet-telemetry keys generate` makes it');
      let ours: string;
      try {
        ours = publicKeyHex(readFileSync(keyFile, 'utf8'));
      } catch (error) {
        throw new UsageError(`${keyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const timeoutMs = settings.tesla.requestTimeoutMs;

      const keyUrl = (values['key-url'] as string | undefined) ?? `https://${domain}${PUBLIC_KEY_PATH}`;
      const caFile = values['key-url-ca'] as string | undefined;
      let served: string;
      try {
        served = await fetchServedKey(keyUrl, caFile !== undefined ? readFileSync(caFile, 'utf8') : undefined, timeoutMs);
      } catch (error) {
        err(`fleet-telemetry partner register: ${keyUrl} could not be fetched (${(error as Error).message}).`);
        err('  Tesla downloads the key from there: run the server with TESLA_PUBLIC_KEY_FILE on port 443 of DOMAIN, with a publicly trusted certificate.');
        return EXIT_FAILED;
      }
      let servedHex: string;
      try {
        servedHex = publicKeyHex(served);
      } catch {
        err(`fleet-telemetry partner register: ${keyUrl} does not serve a P-256 public key PEM`);
        return EXIT_FAILED;
      }
      if (servedHex !== ours) {
        err(`fleet-telemetry partner register: ${keyUrl} serves another key than ${keyFile}; point TESLA_PUBLIC_KEY_FILE at the right key and restart the server`);
        return EXIT_FAILED;
      }
      out(`ok  ${keyUrl} serves our public key`);

      const partner = await oauthFromConfig(settings).partnerToken();
      out('ok  partner token (client credentials)');
      const api = new FleetApiClient({ baseUrl: settings.tesla.apiBaseUrl, accessToken: partner.accessToken, timeoutMs });
      await api.registerPartner(domain);
      out(`ok  POST /api/1/partner_accounts {"domain": "${domain}"} at ${settings.tesla.apiBaseUrl}`);
      const held = (await api.partnerPublicKey(domain)).toLowerCase();
      if (held !== ours) {
        err(`fleet-telemetry partner register: Tesla holds another public key for ${domain} (${held.slice(0, 16)}...) than ours (${ours.slice(0, 16)}...).`);
        err('  Re-run after the server serves the right key; cars paired with the old key must pair again.');
        return EXIT_FAILED;
      }
      out(`ok  Tesla holds our public key for ${domain}`);
      out(`Next: each car's owner pairs the key: fleet-telemetry pair (opens ${pairingUrl(domain)})`);
      return EXIT_OK;
    }),
};

export const pairCommand: CliCommand = {
  name: 'pair',
  summary: "The link (and a terminal QR code) a car's owner opens in the Tesla app to pair our key",
  usage: ['Usage: fleet-telemetry pair [--domain NAME] [--no-qr]', '', 'Prints https://tesla.com/_ak/DOMAIN and a QR code of it for the phone with the Tesla app.'].join('\n'),
  options: { domain: { type: 'string' }, 'no-qr': { type: 'boolean', default: false } },
  run: (values) =>
    runSetupCommand('pair', async () => {
      const settings = cliSettings(['DOMAIN']);
      const domain = ((values.domain as string | undefined) ?? settings.domain).trim().toLowerCase();
      if (domain === '' || domain === 'localhost') throw new UsageError('DOMAIN (or --domain) must be the public domain registered with Tesla');
      const url = pairingUrl(domain);
      out(`Open this on the phone with the Tesla app, signed in as the car's owner, and approve the key:`);
      out(url);
      if (values['no-qr'] !== true) {
        out('');
        out(await QRCode.toString(url, { type: 'terminal', small: true }));
      }
      return EXIT_OK;
    }),
};
