import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDotenv } from '../config/dotenv.js';
import { FORMATS, type ValueFormat } from '../config/formats.js';
import { SETTINGS, SETTING_BY_ENV } from '../config/schema.js';
import type { AppConfig } from '../config/types.js';

/**
 * Settings for the setup commands. The server's loader insists on everything the server needs (a
 * JWT secret, readable certificate files); `config build` on a laptop needs only DOMAIN, PORT, the ca
 * chain and the TESLA_* settings. So: the same schema, defaults, formats and .env file, but only the
 * settings a command names are checked.
 */
export class CliSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'CliSettingsError';
  }
}

const FILE_FORMATS = new Set(['file', 'optionalFile']);

export function cliSettings(needed: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AppConfig {
  const problems: string[] = [];
  let dotenv = new Map<string, string>();
  try {
    const parsed = parseDotenv(readFileSync(join(cwd, '.env'), 'utf8'));
    dotenv = parsed.values;
  } catch {
    // no .env: the environment alone
  }
  const root: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const format = FORMATS[setting.format] as ValueFormat;
    const raw = env[setting.env] ?? dotenv.get(setting.env);
    let value: unknown = raw === undefined ? structuredClone(setting.default) : format.coerce(raw);
    if (needed.includes(setting.env)) {
      const problem = format.check(value, { min: setting.min, max: setting.max });
      if (problem !== undefined) {
        const shownProblem = setting.sensitive ? problem.replace(String(raw), '[redacted]') : problem;
        problems.push(`${setting.env}: ${shownProblem}`);
      }
    } else if (format.check(value, { min: setting.min, max: setting.max }) !== undefined) {
      value = structuredClone(setting.default);
    }
    if (FILE_FORMATS.has(setting.format) && typeof value === 'string' && value !== '') value = resolve(cwd, value);
    if (setting.env === 'TESLA_VIN' && Array.isArray(value)) value = [...new Set(value.map((vin: string) => vin.toUpperCase()))];
    write(root, setting.path, value);
  }
  for (const name of needed) {
    if (!SETTING_BY_ENV.has(name)) throw new Error(`cliSettings: unknown setting ${name}`);
  }
  if (problems.length > 0) throw new CliSettingsError(problems);
  return root as unknown as AppConfig;
}

function write(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let node = root;
  for (const key of keys) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[last] = value;
}
