import { DEFAULT_DEV_VINS, ensureDevPki } from '../../pki/dev-certs.js';
import type { CliCommand } from '../main.js';
import { EXIT_OK, cliSettings, runSetupCommand } from '../setup-support.js';

export const certsDevCommand: CliCommand = {
  name: 'certs dev',
  summary: 'Create a development PKI: CA, server certificate for DOMAIN/localhost, vehicle client certificates',
  usage: [
    'Usage: fleet-telemetry certs dev [--dir certs] [--domain localhost] [--vin VIN ...] [--force]',
    '',
    'Creates what is missing under --dir and reuses what exists:',
    '  root-ca.pem, server-ca.pem     dev root and server intermediate CAs',
    '  server.pem, server.key         server certificate (full chain) for DOMAIN, localhost, 127.0.0.1, ::1',
    '  ca-chain.pem                   the chain cars use to verify the server (TLS_CA_CHAIN_FILE, the config `ca`)',
    '  vehicle-ca.pem, vehicle-ca.key the dev vehicle CA (VEHICLE_CA_FILE)',
    '  vehicles/<VIN>.pem, .key       one client certificate per VIN (CN = VIN)',
    'Private keys are written with mode 0600. Never use these in production: real cars carry Tesla-issued',
    'certificates, and the server certificate must come from a CA the car config names.',
  ].join('\n'),
  options: {
    dir: { type: 'string', default: 'certs' },
    domain: { type: 'string' },
    vin: { type: 'string', multiple: true },
    force: { type: 'boolean', default: false },
  },
  run: (values) =>
    runSetupCommand('certs dev', async () => {
      const domain = (values.domain as string | undefined) ?? cliSettings(['DOMAIN']).domain;
      const vins = (values.vin as string[] | undefined) ?? DEFAULT_DEV_VINS;
      const files = await ensureDevPki({ dir: values.dir as string, domain, vins, force: values.force as boolean });
      process.stdout.write(
        [
          `dev PKI in ${files.dir} for ${domain}`,
          `  TLS_CERT_FILE=${files.serverCert}`,
          `  TLS_KEY_FILE=${files.serverKey}`,
          `  TLS_CA_CHAIN_FILE=${files.caChain}`,
          `  VEHICLE_CA_FILE=${files.vehicleCaCert}`,
          `  vehicles: ${files.vins.join(', ')}`,
          '',
        ].join('\n'),
      );
      return EXIT_OK;
    }),
};
