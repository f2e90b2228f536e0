import { EXIT_FAILED, EXIT_OK, UsageError, cliSettings, err, out, runSetupCommand } from '../setup-support.js';
import { removeCar } from '../../mqtt/remove-car.js';
import type { CliCommand } from '../main.js';

const SETTINGS_FOR_MQTT = [
  'MQTT_URL', 'MQTT_USERNAME', 'MQTT_PASSWORD', 'MQTT_PASSWORD_FILE', 'MQTT_CA_FILE', 'MQTT_CERT_FILE', 'MQTT_KEY_FILE',
  'MQTT_CLIENT_ID', 'MQTT_PROTOCOL_VERSION', 'MQTT_TOPIC_PREFIX', 'MQTT_HA_DISCOVERY_PREFIX',
];

export const mqttRemoveCarCommand: CliCommand = {
  name: 'mqtt remove-car',
  summary: 'Remove a car from Home Assistant: clear its MQTT discovery configs and retained topics',
  usage: [
    'Usage: fleet-telemetry mqtt remove-car --vin VIN',
    '',
    'Connects to MQTT_URL (with the MQTT_* settings the server uses), tells running servers to forget the',
    'car, and clears its retained discovery configs and state topics; Home Assistant then deletes its',
    'entities and device. A car that streams again comes back.',
  ].join('\n'),
  options: { vin: { type: 'string' } },
  run: (values) =>
    runSetupCommand('mqtt remove-car', async () => {
      const settings = cliSettings(SETTINGS_FOR_MQTT);
      if (settings.mqtt.url === '') throw new UsageError('MQTT_URL is not set');
      const vin = typeof values.vin === 'string' ? values.vin.trim().toUpperCase() : '';
      if (vin === '') throw new UsageError('--vin is required');
      try {
        const result = await removeCar(settings.mqtt, vin);
        out(`removed ${vin}: ${result.cleared} retained topic(s) found and cleared, discovery configs cleared`);
        return EXIT_OK;
      } catch (error) {
        err(`fleet-telemetry mqtt remove-car: ${(error as Error).message}`);
        return EXIT_FAILED;
      }
    }),
};
