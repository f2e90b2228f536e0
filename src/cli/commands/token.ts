import { ConfigError, loadConfig } from '../../config/index.js';
import { mintDashboardToken, parseTtl } from '../../dashboard/dashboard-token.js';
import type { CliCommand } from '../main.js';

export const tokenCommand: CliCommand = {
  name: 'token',
  summary: 'Mint a dashboard access token (HS256, signed with JWT_SECRET)',
  usage: [
    'Usage: fleet-telemetry token --vin VIN [--vin VIN ...] [--ttl 1h] [--sub NAME]',
    '       fleet-telemetry token --vin "*" --ttl 8h',
    '',
    'Prints only the token, for the dashboard page (https://<host>:<DASHBOARD_PORT>/?token=...) or an',
    'Authorization: Bearer header. --vin may repeat or be comma-separated; "*" means every car.',
    '--ttl is 90s, 15m, 1h, 7d (default 1h). The secret is JWT_SECRET from the environment, else from the',
    "server's configuration (.env, config/<NODE_ENV>.json); JWT_ISSUER / JWT_AUDIENCE are added when set.",
  ].join('\n'),
  options: {
    vin: { type: 'string', multiple: true },
    ttl: { type: 'string', default: '1h' },
    sub: { type: 'string' },
  },
  async run(values) {
    const vins = (values.vin as string[] | undefined) ?? [];
    const ttlSeconds = parseTtl(values.ttl as string);
    let secret = process.env.JWT_SECRET ?? '';
    let issuer = process.env.JWT_ISSUER ?? '';
    let audience = process.env.JWT_AUDIENCE ?? '';
    if (secret === '') {
      try {
        const config = loadConfig({ onWarning: () => {} });
        secret = config.dashboard.jwtSecret;
        issuer = config.dashboard.jwtIssuer;
        audience = config.dashboard.jwtAudience;
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write('fleet-telemetry token: JWT_SECRET is not set and the configuration does not load:\n');
        for (const problem of error.problems) process.stderr.write(`${problem}\n`);
        return 2;
      }
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
