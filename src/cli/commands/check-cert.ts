import { readFileSync } from 'node:fs';
import { checkServerChain } from '../../pki/chain-check.js';
import { EXIT_FAILED, EXIT_OK, UsageError, cliSettings, err, integerFlag, out, runSetupCommand } from '../setup-support.js';
import type { CliCommand } from '../main.js';

export const checkCertCommand: CliCommand = {
  name: 'check-cert',
  summary: 'Connect to the server as a car does and check its certificate against the config `ca` chain',
  usage: [
    'Usage: fleet-telemetry check-cert [--host HOST] [--port N] [--hostname DOMAIN] [--ca FILE] [--timeout MS]',
    '',
    'Connects to HOST:PORT (default DOMAIN:PORT) with SNI = DOMAIN, trusting only the ca chain',
    '(TLS_CA_CHAIN_FILE, what `config build` puts in `ca`), and reports what a car would refuse:',
    'hostname mismatch, expiry (days left), a chain missing its intermediate, a ca without the root.',
    'Exit status 0 when a car would accept the server, 1 when not, 2 on bad flags or settings.',
  ].join('\n'),
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    hostname: { type: 'string' },
    ca: { type: 'string' },
    timeout: { type: 'string', default: '10000' },
  },
  run: (values) =>
    runSetupCommand('check-cert', async () => {
      const config = cliSettings(['DOMAIN', 'PORT']);
      const hostname = (values.hostname as string | undefined) ?? config.domain;
      const port = integerFlag(values.port, '--port', 1, 65535) ?? config.vehicle.port;
      if (port === 0) throw new UsageError('PORT is 0: give the port to check with --port');
      const caFile = (values.ca as string | undefined) ?? config.tls.caChainFile;
      let caPem: string;
      try {
        caPem = readFileSync(caFile, 'utf8');
      } catch (error) {
        throw new UsageError(`cannot read the ca chain ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const host = (values.host as string | undefined) ?? hostname;
      const report = await checkServerChain({ host, port, hostname, caPem, timeoutMs: integerFlag(values.timeout, '--timeout', 100, 600000) });
      out(`checking ${host}:${port} as a car configured with hostname "${hostname}" and ca ${caFile}`);
      for (const line of report.details) out(`  ${line}`);
      for (const warning of report.warnings) out(`WARNING: ${warning}`);
      if (report.ok) {
        out('OK: a car with this config would accept the server certificate');
        return EXIT_OK;
      }
      for (const problem of report.problems) err(`FAIL: ${problem}`);
      return EXIT_FAILED;
    }),
};
