#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { certsDevCommand } from './commands/certs-dev.js';
import { demoCommand } from './commands/demo.js';
import { tokenCommand } from './commands/token.js';
import { checkCertCommand } from './commands/check-cert.js';
import { keysGenerateCommand } from './commands/keys-generate.js';
import { configBuildCommand, configDeleteCommand, configPushCommand, configStatusCommand } from './commands/tesla-config.js';
import { errorsCommand } from './commands/tesla-errors.js';
import { authLoginCommand, authStatusCommand } from './commands/tesla-auth.js';
import { pairCommand, partnerRegisterCommand } from './commands/tesla-partner.js';

export interface CliCommand {
  /** e.g. `certs dev` */
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<Parameters<typeof parseArgs>[0]>['options'];
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

const COMMANDS: CliCommand[] = [
  demoCommand,
  certsDevCommand,
  keysGenerateCommand,
  configBuildCommand,
  configPushCommand,
  configStatusCommand,
  configDeleteCommand,
  errorsCommand,
  checkCertCommand,
  tokenCommand,
  authLoginCommand,
  authStatusCommand,
  partnerRegisterCommand,
  pairCommand,
];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'fleet-telemetry: Tesla Fleet Telemetry server tools',
    '',
    'Usage: fleet-telemetry <command> [options]      (npm run cli -- <command> [options])',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `fleet-telemetry <command> --help` for a command\'s options.',
    'The server itself runs as `node dist/main.js` and is configured by environment (docs/CONFIGURATION.md).',
  ].join('\n');
}

/** Longest command name that prefixes the arguments wins (`certs dev` before `certs`). */
function findCommand(args: string[]): { command: CliCommand; rest: string[] } | null {
  const sorted = [...COMMANDS].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const command of sorted) {
    const words = command.name.split(' ');
    if (words.every((word, i) => args[i] === word)) return { command, rest: args.slice(words.length) };
  }
  return null;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${help()}\n`);
    return argv.length === 0 ? 1 : 0;
  }
  const found = findCommand(argv);
  if (found === null) {
    process.stderr.write(`fleet-telemetry: unknown command "${argv.join(' ')}"\n\n${help()}\n`);
    return 1;
  }
  const { command, rest } = found;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`fleet-telemetry ${command.name}: ${(error as Error).message}\n\n${command.usage}\n`);
    return 1;
  }
  if (parsed.values.help) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  return command.run(parsed.values as Record<string, unknown>, parsed.positionals);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`fleet-telemetry: ${error.message}\n`);
    process.exitCode = 1;
  },
);
