import { ConfigError, loadConfig } from '../../config/index.js';
import { mintDashboardToken, parseTtl } from '../../dashboard/dashboard-token.js';
import type { CliCommand } from '../main.js';

const TOKEN_SETTINGS = ['env', 'dashboard.jwtSecret', 'dashboard.jwtIssuer', 'dashboard.jwtAudience', 'dashboard.maxTokenLifetimeSeconds'];

export const tokenCommand: CliCommand = {
  name: 'token',
  summary: 'Mint a dashboard access token (HS256, signed with JWT_SECRET)',
  usage: [
    'Usage: fleet-telemetry token --vin VIN [--vin VIN ...] [--ttl 1h] [--sub NAME]',
    '       fleet-telemetry token --vin "*" --ttl 8h',
    '',
    'Prints only the token, for the dashboard page (https://<host>:<DASHBOARD_PORT>/?token=...) or an',
    'Authorization: Bearer header. --vin may repeat or be comma-separated; "*" means every car.',
    '--ttl is 90s, 15m, 1h, 7d (default 1h), at most DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS. JWT_SECRET,',
    'JWT_ISSUER and JWT_AUDIENCE are read as the server reads them (environment over .env over',
    'config/<NODE_ENV>.json), so the token is one the server accepts.',
  ].join('\n'),
  options: {
    vin: { type: 'string', multiple: true },
    ttl: { type: 'string', default: '1h' },
    sub: { type: 'string' },
  },
  async run(values) {
    const vins = (values.vin as string[] | undefined) ?? [];
    const ttlSeconds = parseTtl(values.ttl as string);
    let secret: string;
    let issuer: string;
    let audience: string;
    let maxLifetime: number;
    try {
      // The server's own loader, checking only what a token needs: the same sources, merged the same way.
      const config = loadConfig({ onWarning: () => {}, only: TOKEN_SETTINGS });
      secret = config.dashboard.jwtSecret;
      issuer = config.dashboard.jwtIssuer;
      audience = config.dashboard.jwtAudience;
      maxLifetime = config.dashboard.maxTokenLifetimeSeconds;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write('fleet-telemetry token: the settings for a token do not load:\n');
      for (const problem of error.problems) process.stderr.write(`${problem}\n`);
      return 2;
    }
    if (ttlSeconds > maxLifetime) {
      process.stderr.write(`fleet-telemetry token: --ttl ${ttlSeconds}s is longer than the server accepts (DASHBOARD_MAX_TOKEN_LIFETIME_SECONDS ${maxLifetime})\n`);
      return 2;
    }
    if (secret === '') {
      process.stderr.write('fleet-telemetry token: JWT_SECRET is not set (tokens from an identity provider are minted there)\n');
      return 2;
    }
    const token = await mintDashboardToken({ secret, vins, ttlSeconds, subject: values.sub as string | undefined, issuer, audience });
    process.stdout.write(`${token}\n`);
    return 0;
  },
};
