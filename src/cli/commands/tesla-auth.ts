import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { AppConfig } from '../../config/types.js';
import { EXIT_FAILED, EXIT_OK, UsageError, cliSettings, err, out, runSetupCommand } from '../setup-support.js';
import { FleetApiClient } from '../../tesla/fleet-api.js';
import { REQUIRED_SCOPE } from '../../tesla/tesla-oauth.js';
import { readTokenFile, storedFrom, writeTokenFile, TeslaTokenFile } from '../../tesla/token-file.js';
import { oauthFromConfig } from '../../tesla/token-provider.js';
import { apiBaseUrlChosen, trustedBaseUrl } from '../../tesla/region.js';
import type { CliCommand } from '../main.js';

const DEFAULT_REDIRECT = 'http://localhost:8976/callback';
const DEFAULT_TOKEN_FILE = 'tesla-token.json';
const AUTH_SETTINGS = ['TESLA_CLIENT_ID', 'TESLA_CLIENT_SECRET', 'TESLA_AUTHORIZE_URL', 'TESLA_TOKEN_URL', 'TESLA_API_BASE_URL', 'TESLA_TOKEN_FILE', 'TESLA_API_TIMEOUT_MS'];

interface CallbackParams {
  code: string | null;
  state: string | null;
  error: string | null;
}

function paramsOf(url: URL): CallbackParams {
  return { code: url.searchParams.get('code'), state: url.searchParams.get('state'), error: url.searchParams.get('error') };
}

function tokenFilePath(values: Record<string, unknown>, settings: AppConfig): string {
  const given = values['token-file'] as string | undefined;
  return given !== undefined ? resolve(given) : settings.signIn.tokenFile !== '' ? settings.signIn.tokenFile : resolve(DEFAULT_TOKEN_FILE);
}

/** Waits for Tesla's redirect on the loopback address the redirect URI names. */
function loopbackCallback(redirect: URL, timeoutMs: number): { done: Promise<CallbackParams>; listening: Promise<void>; close(): void } {
  let server: Server | null = null;
  let timer: NodeJS.Timeout | undefined;
  let settle: (params: CallbackParams) => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const done = new Promise<CallbackParams>((resolveDone, rejectDone) => {
    settle = resolveDone;
    fail = rejectDone;
  });
  const listening = new Promise<void>((resolveListening, rejectListening) => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', redirect);
      if (url.pathname !== redirect.pathname) {
        res.writeHead(404).end();
        return;
      }
      const params = paramsOf(url);
      const ok = params.error === null && params.code !== null;
      res.writeHead(ok ? 200 : 400, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(ok ? 'Signed in to Tesla. You can close this tab and return to the terminal.\n' : `Sign-in did not complete (${params.error ?? 'no code'}). See the terminal.\n`);
      settle(params);
    });
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? `port ${redirect.port} is in use` : error.message;
      rejectListening(new UsageError(`cannot listen for the callback on ${redirect.host} (${why}); use --paste, or another --redirect-uri registered with your app`));
    });
    const host = redirect.hostname === 'localhost' ? '127.0.0.1' : redirect.hostname.replace(/^\[|\]$/g, '');
    server.listen(Number(redirect.port || 80), host, () => resolveListening());
  });
  timer = setTimeout(() => fail(new UsageError(`no sign-in arrived within ${Math.round(timeoutMs / 1000)} s; run the command again`)), timeoutMs);
  timer.unref();
  return {
    done,
    listening,
    close: () => {
      clearTimeout(timer);
      (server as Server | null)?.closeAllConnections();
      (server as Server | null)?.close();
    },
  };
}

/** On a machine without a browser: the person pastes the address Tesla sent their browser to. */
async function pastedCallback(): Promise<CallbackParams> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === '') continue;
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new UsageError('that is not an address: paste the whole URL from the browser\'s address bar');
      }
      return paramsOf(url);
    }
  } finally {
    rl.close();
  }
  throw new UsageError('no address was pasted');
}

export const authLoginCommand: CliCommand = {
  name: 'auth login',
  summary: 'Sign in to Tesla as the operator; keeps a refreshing token in TESLA_TOKEN_FILE for the server and the CLI',
  usage: [
    'Usage: fleet-telemetry auth login [--redirect-uri URL] [--paste] [--token-file FILE] [--timeout-seconds N]',
    '',
    "Runs Tesla's authorization-code flow (PKCE, state, nonce) with TESLA_CLIENT_ID / TESLA_CLIENT_SECRET.",
    `Open the printed URL, sign in and allow access; Tesla sends the browser to --redirect-uri (default ${DEFAULT_REDIRECT},`,
    'which must be registered as an allowed redirect URI of your app on developer.tesla.com), where this command listens.',
    "--paste: on a machine without a browser, open the URL elsewhere and paste the address Tesla's redirect",
    'lands on (the page may fail to load; the address bar is what counts).',
    `The refresh token is written to TESLA_TOKEN_FILE (or --token-file; default ./${DEFAULT_TOKEN_FILE}), mode 0600, with the`,
    "account's region (GET /api/1/users/region). Tokens are never printed.",
  ].join('\n'),
  options: {
    'redirect-uri': { type: 'string', default: DEFAULT_REDIRECT },
    paste: { type: 'boolean', default: false },
    'token-file': { type: 'string' },
    'timeout-seconds': { type: 'string', default: '300' },
  },
  run: (values) =>
    runSetupCommand('auth login', async () => {
      const settings = cliSettings(AUTH_SETTINGS);
      if (settings.signIn.clientId === '' || settings.signIn.clientSecret === '') {
        throw new UsageError('TESLA_CLIENT_ID and TESLA_CLIENT_SECRET are required (your app on developer.tesla.com)');
      }
      let redirect: URL;
      try {
        redirect = new URL(values['redirect-uri'] as string);
      } catch {
        throw new UsageError('--redirect-uri must be a URL');
      }
      const paste = values.paste === true;
      if (!paste && (redirect.protocol !== 'http:' || !['localhost', '127.0.0.1', '[::1]'].includes(redirect.hostname))) {
        throw new UsageError('without --paste the redirect URI must be http://localhost:PORT/... (this command listens there); use --paste for any other');
      }
      const timeoutMs = Number(values['timeout-seconds']) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout-seconds must be a positive number');
      const file = tokenFilePath(values, settings);
      const oauth = oauthFromConfig(settings);
      const request = oauth.authorization(redirect.toString());

      let params: CallbackParams;
      if (paste) {
        out('Open this address in a browser, sign in to Tesla and allow access:');
        out(request.url);
        out('');
        out(`Tesla then sends the browser to ${redirect.origin}${redirect.pathname}?code=... Paste that whole address here and press Enter:`);
        params = await pastedCallback();
      } else {
        const callback = loopbackCallback(redirect, timeoutMs);
        try {
          await callback.listening;
          out('Open this address in a browser, sign in to Tesla and allow access:');
          out(request.url);
          out('');
          out(`Waiting for Tesla to send the browser back to ${redirect.origin}${redirect.pathname} ...`);
          params = await callback.done;
        } finally {
          callback.close();
        }
      }
      if (params.state !== request.state) {
        err('fleet-telemetry auth login: the state in that address is not this sign-in\'s (an old or another sign-in); run the command again');
        return EXIT_FAILED;
      }
      if (params.error !== null) {
        err(
          params.error === 'access_denied'
            ? 'fleet-telemetry auth login: access was declined on Tesla\'s page; run again and allow it'
            : `fleet-telemetry auth login: Tesla reported "${params.error}"`,
        );
        return EXIT_FAILED;
      }
      if (params.code === null || params.code === '') throw new UsageError('the address carries no code');
      const tokens = await oauth.exchangeCode(params.code, redirect.toString(), request.codeVerifier, request.nonce);
      if (!tokens.scopes.includes(REQUIRED_SCOPE)) {
        err(`fleet-telemetry auth login: Tesla did not grant ${REQUIRED_SCOPE} (granted: ${tokens.scopes.join(' ') || 'none'}); run again and leave "vehicle information" ticked`);
        return EXIT_FAILED;
      }
      if (tokens.refreshToken === '') {
        err('fleet-telemetry auth login: Tesla returned no refresh token (offline_access not granted); run again and allow it');
        return EXIT_FAILED;
      }
      const stored = storedFrom(tokens, null);
      try {
        const region = await new FleetApiClient({ baseUrl: settings.tesla.apiBaseUrl, accessToken: tokens.accessToken, timeoutMs: settings.tesla.requestTimeoutMs, maxAttempts: 2 }).userRegion();
        stored.apiBaseUrl = trustedBaseUrl(region.fleetApiBaseUrl);
        out(`Region: ${region.region || 'unknown'} (${region.fleetApiBaseUrl}); the server and the CLI use it unless TESLA_API_BASE_URL says otherwise`);
        if (apiBaseUrlChosen(settings.tesla) && region.fleetApiBaseUrl.replace(/\/$/, '') !== settings.tesla.apiBaseUrl.replace(/\/$/, '')) {
          err(`fleet-telemetry auth login: TESLA_API_BASE_URL is set to ${settings.tesla.apiBaseUrl}, another region than this account's; unset it or set it to ${region.fleetApiBaseUrl}`);
        }
      } catch (error) {
        err(`fleet-telemetry auth login: could not read the account's region (${(error as Error).message}); TESLA_API_BASE_URL is used`);
      }
      await writeTokenFile(file, stored);
      out(`Signed in${tokens.subject ? ` as Tesla user ${tokens.subject}` : ''}; scopes: ${tokens.scopes.join(' ')}`);
      out(`Refresh token saved to ${file} (mode 0600). The server and the CLI use it with TESLA_TOKEN_FILE=${file}`);
      return EXIT_OK;
    }),
};

export const authStatusCommand: CliCommand = {
  name: 'auth status',
  summary: 'What TESLA_TOKEN_FILE holds (account, scopes, expiry, region); --refresh proves the refresh token works',
  usage: [
    'Usage: fleet-telemetry auth status [--token-file FILE] [--refresh]',
    '',
    '--refresh refreshes the access token now (Tesla rotates the refresh token; the new one is saved).',
  ].join('\n'),
  options: { 'token-file': { type: 'string' }, refresh: { type: 'boolean', default: false } },
  run: (values) =>
    runSetupCommand('auth status', async () => {
      const settings = cliSettings(AUTH_SETTINGS);
      const file = tokenFilePath(values, settings);
      if (values.refresh === true) {
        if (settings.signIn.clientId === '') throw new UsageError('TESLA_CLIENT_ID is required to refresh');
        await new TeslaTokenFile(file, oauthFromConfig(settings)).forceRefresh();
        out('Refreshed: a new access token and the rotated refresh token are saved.');
      }
      const tokens = await readTokenFile(file);
      const left = Math.round((tokens.expiresAt - Date.now()) / 60_000);
      out(`Token file: ${file}`);
      out(`Tesla user: ${tokens.subject ?? 'unknown'}`);
      out(`Scopes: ${tokens.scopes.join(' ') || 'unknown'}`);
      out(`Access token: ${tokens.accessToken === '' ? 'none yet' : left > 0 ? `valid for ${left} more minutes` : 'expired (refreshed on next use)'}`);
      out(`Fleet API: ${tokens.apiBaseUrl || `${settings.tesla.apiBaseUrl} (TESLA_API_BASE_URL)`}`);
      if (!tokens.scopes.includes(REQUIRED_SCOPE)) {
        err(`fleet-telemetry auth status: the token lacks ${REQUIRED_SCOPE}; run \`fleet-telemetry auth login\` again`);
        return EXIT_FAILED;
      }
      return EXIT_OK;
    }),
};
