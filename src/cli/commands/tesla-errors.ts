import { EXIT_OK, SETTINGS_FOR_API, cliSettings, clientsFor, out, runSetupCommand, vinsFrom } from '../setup-support.js';
import { describeErrorGroups, groupTelemetryErrors } from '../tesla-reports.js';
import type { CliCommand } from '../main.js';

export const errorsCommand: CliCommand = {
  name: 'errors',
  summary: "Tesla's fleet_telemetry_errors (what cars hit connecting to you), grouped and explained",
  usage: [
    'Usage: fleet-telemetry errors [--vin VIN ...] [--json]',
    '',
    'With TESLA_PARTNER_TOKEN: GET /api/1/partner_accounts/fleet_telemetry_errors (every car of the app).',
    'Otherwise: GET /api/1/vehicles/{vin}/fleet_telemetry_errors for --vin / TESLA_VIN with TESLA_ACCESS_TOKEN.',
    'Identical errors are grouped, most frequent first, each with what to do about it.',
  ].join('\n'),
  options: { vin: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } },
  run: (values) =>
    runSetupCommand('errors', async () => {
      const settings = cliSettings([...SETTINGS_FOR_API, 'TESLA_PARTNER_TOKEN']);
      const vins = vinsFrom(values, settings, settings.tesla.partnerToken === '');
      const entries = await clientsFor(settings).telemetryErrors(vins);
      const groups = groupTelemetryErrors(entries);
      if (values.json) out(JSON.stringify(groups, null, 2));
      else for (const line of describeErrorGroups(groups)) out(line);
      return EXIT_OK;
    }),
};
