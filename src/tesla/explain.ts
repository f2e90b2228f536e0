import type { PushResult } from './fleet-api.js';

/**
 * Tesla's answers turned into sentences an operator can act on. Setup is where users give up
 * (shared/users.md): a bare `missing_key` or an x509 error text does not say what to do next.
 */

const SKIP_REASONS: Record<string, (domain: string) => string> = {
  missing_key: (domain) =>
    `the app's virtual key is not paired with the car: open https://tesla.com/_ak/${domain} on a phone with the Tesla app signed in as the car's owner and approve the key, then push again`,
  unsupported_hardware: () => 'the car is too old for fleet telemetry (its hardware is not supported); nothing can be configured on it',
  unsupported_firmware: () => "the car's software is too old for fleet telemetry: install the latest software update on the car, then push again",
  max_configs: () =>
    'the car already holds the most fleet telemetry configs it accepts (other apps use the slots): remove another app\'s access or delete an old config, then push again',
};

export function explainSkipReason(reason: string, domain: string): string {
  return SKIP_REASONS[reason]?.(domain) ?? `Tesla skipped it with reason "${reason}"`;
}

export function skippedVins(result: PushResult): string[] {
  return Object.values(result.skipped_vehicles).flat();
}

/** Bounded categories for grouping and for the metric label. */
export type TelemetryErrorKind = 'certificate' | 'hostname' | 'dns' | 'connection' | 'timeout' | 'handshake' | 'config' | 'other';

const ERROR_PATTERNS: Array<{ kind: TelemetryErrorKind; test: RegExp; advice: string }> = [
  {
    kind: 'hostname',
    test: /certificate is valid for|not valid for|doesn't contain any IP SANs|hostname mismatch/i,
    advice: 'the server certificate does not name the config hostname: issue it for DOMAIN (run `check-cert`)',
  },
  {
    kind: 'certificate',
    test: /x509|certificate|unknown authority|tls: bad certificate|expired/i,
    advice: 'the car does not trust the server certificate: the config `ca` must be the chain that issued TLS_CERT_FILE, and TLS_CERT_FILE must carry its intermediates (run `check-cert`, then push the config again)',
  },
  { kind: 'dns', test: /no such host|lookup|name resolution|NXDOMAIN/i, advice: 'the hostname does not resolve in public DNS: add an A/AAAA record for DOMAIN' },
  {
    kind: 'timeout',
    test: /timeout|timed out|deadline exceeded/i,
    advice: 'the car could not reach the server in time: check the firewall / port forwarding to PORT and that the server is running',
  },
  {
    kind: 'connection',
    test: /connection refused|connection reset|broken pipe|EOF|network is unreachable/i,
    advice: 'nothing accepted the connection on hostname:port: check the server is running and the port is open to the internet',
  },
  {
    kind: 'handshake',
    test: /handshake|websocket|upgrade|401|403/i,
    advice: 'the server refused the WebSocket: check VEHICLE_CA_FILE holds Tesla\'s vehicle CAs and the logs for vehicle_refused',
  },
  { kind: 'config', test: /config|field|invalid|unsupported/i, advice: 'the car rejected part of the config: check the field names and intervals (`config build`)' },
];

export function classifyTelemetryError(text: string): { kind: TelemetryErrorKind; advice: string } {
  const match = ERROR_PATTERNS.find((pattern) => pattern.test.test(text));
  return match === undefined ? { kind: 'other', advice: 'see Tesla\'s text above' } : { kind: match.kind, advice: match.advice };
}
