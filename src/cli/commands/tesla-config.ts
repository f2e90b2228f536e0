import {
  CONFIG_OPTIONS,
  CONFIG_OPTIONS_USAGE,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_PARTIAL,
  SETTINGS_FOR_API,
  SETTINGS_FOR_CONFIG,
  UsageError,
  cliSettings,
  clientsFor,
  configFromFlags,
  err,
  out,
  runSetupCommand,
  vinsFrom,
} from '../setup-support.js';
import { skippedVins } from '../../tesla/explain.js';
import { describeEstimate, describePushResult, describeStatus } from '../tesla-reports.js';
import { PRESET_DESCRIPTIONS, configDifferences } from '../../tesla/telemetry-config.js';
import type { CliCommand } from '../main.js';

const presetLines = Object.entries(PRESET_DESCRIPTIONS).map(([name, text]) => `    ${name.padEnd(9)} ${text}`);

export const configBuildCommand: CliCommand = {
  name: 'config build',
  summary: 'Print the fleet_telemetry_config for your cars (and its signal cost)',
  usage: [
    'Usage: fleet-telemetry config build [options]',
    '',
    'Prints the car-side fleet_telemetry_config JSON on stdout: hostname = DOMAIN, integer port, ca =',
    'TLS_CA_CHAIN_FILE, fields, alert_types, prefer_typed: true, delivery_policy: "latest", optional exp.',
    'The expected signal count and cost go to stderr. Field names are checked against the schema.',
    '',
    ...CONFIG_OPTIONS_USAGE,
    '  --cars N             price N cars',
    '',
    'Presets:',
    ...presetLines,
  ].join('\n'),
  options: { ...CONFIG_OPTIONS, cars: { type: 'string', default: '1' } },
  run: (values) =>
    runSetupCommand('config build', async () => {
      const config = configFromFlags(cliSettings(SETTINGS_FOR_CONFIG), values);
      const cars = Number(values.cars);
      if (!Number.isInteger(cars) || cars < 1) throw new UsageError(`--cars must be a positive integer, got "${String(values.cars)}"`);
      out(JSON.stringify(config, null, 2));
      err(describeEstimate(config.fields, cars));
      return EXIT_OK;
    }),
};

export const configPushCommand: CliCommand = {
  name: 'config push',
  summary: 'Send the config to cars: through the vehicle-command proxy, or signed here (Tesla.SS256)',
  usage: [
    'Usage: fleet-telemetry config push --vin VIN [--vin VIN ...] [--proxy URL | --sign] [options]',
    '',
    'With TESLA_PROXY_URL (or --proxy) the config goes through Tesla\'s vehicle-command proxy, which signs it',
    '(POST /api/1/vehicles/fleet_telemetry_config). Otherwise (or with --sign) it is signed here with',
    'TESLA_PRIVATE_KEY_FILE (or --key) and sent to /api/1/vehicles/fleet_telemetry_config_jws.',
    'Needs TESLA_ACCESS_TOKEN and TESLA_API_BASE_URL. Exit status: 0 all cars updated, 3 some skipped',
    '(each explained), 1 the call failed, 2 bad settings or flags.',
    '',
    '  --vin VIN            car to configure (repeatable, or comma-separated; default TESLA_VIN)',
    '  --proxy URL          vehicle-command proxy base URL (TESLA_PROXY_URL)',
    '  --sign               sign here even when TESLA_PROXY_URL is set',
    '  --key FILE           app private key for --sign (TESLA_PRIVATE_KEY_FILE)',
    ...CONFIG_OPTIONS_USAGE,
  ].join('\n'),
  options: {
    ...CONFIG_OPTIONS,
    vin: { type: 'string', multiple: true },
    proxy: { type: 'string' },
    sign: { type: 'boolean', default: false },
    key: { type: 'string' },
  },
  run: (values) =>
    runSetupCommand('config push', async () => {
      const settings = cliSettings([...SETTINGS_FOR_CONFIG, ...SETTINGS_FOR_API, 'TESLA_PROXY_URL', 'TESLA_PROXY_CA_FILE', 'TESLA_PRIVATE_KEY_FILE']);
      if (values.sign && values.proxy !== undefined) throw new UsageError('give --proxy or --sign, not both');
      const tesla = {
        ...settings.tesla,
        proxyUrl: values.sign ? '' : ((values.proxy as string | undefined) ?? settings.tesla.proxyUrl),
        privateKeyFile: (values.key as string | undefined) ?? settings.tesla.privateKeyFile,
      };
      if (tesla.proxyUrl === '' && tesla.privateKeyFile === '') {
        throw new UsageError('set TESLA_PROXY_URL (or --proxy) to push through the vehicle-command proxy, or TESLA_PRIVATE_KEY_FILE (or --key) to sign here');
      }
      const vins = vinsFrom(values, settings, true);
      const config = configFromFlags(settings, values);
      const clients = clientsFor({ ...settings, tesla });
      err(describeEstimate(config.fields, vins.length));
      const result = await clients.pusher.push(vins, config);
      out(`pushed ${clients.pusher.mode === 'proxy' ? 'through the vehicle-command proxy' : 'signed here (Tesla.SS256)'} to ${vins.join(', ')}`);
      for (const line of describePushResult(result, config.hostname)) out(line);
      if (skippedVins(result).length > 0) return EXIT_PARTIAL;
      out('The car applies the config when it is awake and online; check with `fleet-telemetry config status --vin VIN`.');
      return EXIT_OK;
    }),
};

export const configStatusCommand: CliCommand = {
  name: 'config status',
  summary: "Show a car's fleet telemetry config as Tesla reports it: synced, key paired, limits",
  usage: [
    'Usage: fleet-telemetry config status --vin VIN [--vin VIN ...]',
    '',
    'GET /api/1/vehicles/{vin}/fleet_telemetry_config for each car, explained; also says whether the car',
    "has this server's config (DOMAIN, PORT, TLS_CA_CHAIN_FILE, preset). Exit status 1 when a car has",
    'no synced config from this app or its key is not paired.',
    '',
    '  --vin VIN            car to look at (repeatable; default TESLA_VIN)',
    ...CONFIG_OPTIONS_USAGE,
  ].join('\n'),
  options: { ...CONFIG_OPTIONS, vin: { type: 'string', multiple: true } },
  run: (values) =>
    runSetupCommand('config status', async () => {
      const settings = cliSettings(SETTINGS_FOR_API);
      const vins = vinsFrom(values, settings, true);
      const clients = clientsFor(settings);
      let desired = null;
      try {
        desired = configFromFlags(settings, values);
      } catch {
        // Without a buildable config of our own (no ca file here, say) the comparison is left out.
      }
      let healthy = true;
      for (const vin of vins) {
        const status = await clients.api.configStatus(vin);
        for (const line of describeStatus(vin, status, settings.domain)) out(line);
        if (desired !== null && status.config !== null) {
          const differences = configDifferences(desired, status.config);
          out(differences.length === 0 ? "  matches this server's config" : `  differs from this server's config: ${differences.join('; ')}`);
        }
        if (!status.synced || !status.key_paired || status.config === null) healthy = false;
      }
      return healthy ? EXIT_OK : EXIT_FAILED;
    }),
};

export const configDeleteCommand: CliCommand = {
  name: 'config delete',
  summary: "Remove this app's fleet telemetry config from cars (they stop streaming to you)",
  usage: ['Usage: fleet-telemetry config delete --vin VIN [--vin VIN ...]', '', 'DELETE /api/1/vehicles/{vin}/fleet_telemetry_config for each car.'].join('\n'),
  options: { vin: { type: 'string', multiple: true } },
  run: (values) =>
    runSetupCommand('config delete', async () => {
      const settings = cliSettings(SETTINGS_FOR_API);
      const vins = vinsFrom(values, settings, true);
      const clients = clientsFor(settings);
      let failed = false;
      for (const vin of vins) {
        const result = await clients.api.deleteConfig(vin);
        if (result.updated_vehicles > 0) out(`${vin}: config removed; the car stops streaming to this server once it syncs`);
        else {
          failed = true;
          out(`${vin}: nothing removed (Tesla updated no vehicle: the car may have no config from this app)`);
        }
      }
      return failed ? EXIT_FAILED : EXIT_OK;
    }),
};
