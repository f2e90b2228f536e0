import type { ConfigStatus, PushResult, TelemetryErrorEntry } from './fleet-api.js';

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

/** One line per skipped VIN, plus the count updated. */
export function describePushResult(result: PushResult, domain: string): string[] {
  const lines = [`${result.updated_vehicles} vehicle${result.updated_vehicles === 1 ? '' : 's'} updated`];
  for (const [reason, vins] of Object.entries(result.skipped_vehicles)) {
    for (const vin of vins) lines.push(`${vin} skipped (${reason}): ${explainSkipReason(reason, domain)}`);
  }
  return lines;
}

export function skippedVins(result: PushResult): string[] {
  return Object.values(result.skipped_vehicles).flat();
}

export function describeStatus(vin: string, status: ConfigStatus, domain: string): string[] {
  const lines = [`vehicle ${vin}:`];
  lines.push(
    status.key_paired
      ? '  virtual key: paired (the car accepts configs signed by this app)'
      : `  virtual key: NOT paired: the car ignores this app's configs until the owner opens https://tesla.com/_ak/${domain} and approves the key`,
  );
  if (status.config === null) {
    lines.push('  config: the car has no fleet telemetry config from this app (push one with `config push`)');
  } else {
    lines.push(
      status.synced
        ? '  sync: the car has applied the config below and streams to it'
        : '  sync: NOT yet applied by the car: it picks configs up when it is awake and online; this can take minutes to a day',
    );
    const c = status.config;
    const fields = typeof c.fields === 'object' && c.fields !== null ? Object.entries(c.fields as Record<string, { interval_seconds?: number }>) : [];
    lines.push(`  streams to: ${String(c.hostname)}:${String(c.port)}${typeof c.port === 'string' ? ' (port is a string: cars need an integer; push again)' : ''}`);
    lines.push(
      `  fields (${fields.length}): ${fields
        .map(([name, spec]) => `${name} every ${spec?.interval_seconds ?? '?'} s`)
        .join(', ') || 'none'}`,
    );
    if (Array.isArray(c.alert_types) && c.alert_types.length > 0) lines.push(`  alerts: ${c.alert_types.join(', ')}`);
    lines.push(`  typed values: ${c.prefer_typed === true ? 'yes' : 'no (most values arrive as strings)'}; delivery policy: ${String(c.delivery_policy ?? 'default')}`);
    if (typeof c.exp === 'number') {
      const days = (c.exp * 1000 - Date.now()) / 86_400_000;
      lines.push(days > 0 ? `  expires: ${new Date(c.exp * 1000).toISOString()} (in ${days.toFixed(1)} days)` : `  expired: ${new Date(c.exp * 1000).toISOString()}`);
    }
  }
  if (status.limit_reached) {
    lines.push('  limit: the car holds the most telemetry configs it accepts; a new app config will be refused until one is removed');
  }
  return lines;
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

export interface ErrorGroup {
  kind: TelemetryErrorKind;
  error: string;
  advice: string;
  vins: string[];
  count: number;
  lastAt?: string;
}

/** Groups identical texts, most frequent first: 500 copies of one TLS error are one problem. */
export function groupTelemetryErrors(entries: TelemetryErrorEntry[]): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>();
  for (const entry of entries) {
    const text = entry.error_name ? `${entry.error_name}: ${entry.error}` : entry.error;
    let group = groups.get(text);
    if (group === undefined) {
      const { kind, advice } = classifyTelemetryError(text);
      group = { kind, error: text, advice, vins: [], count: 0 };
      groups.set(text, group);
    }
    group.count++;
    if (entry.vin && !group.vins.includes(entry.vin)) group.vins.push(entry.vin);
    if (entry.created_at && (group.lastAt === undefined || entry.created_at > group.lastAt)) group.lastAt = entry.created_at;
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

export function describeErrorGroups(groups: ErrorGroup[]): string[] {
  if (groups.length === 0) return ['no fleet telemetry errors reported by Tesla'];
  const lines: string[] = [];
  for (const group of groups) {
    lines.push(`[${group.kind}] ${group.count}x "${group.error}"${group.lastAt ? ` (last ${group.lastAt})` : ''}`);
    lines.push(`  vehicles: ${group.vins.join(', ') || 'unknown'}`);
    lines.push(`  what to do: ${group.advice}`);
  }
  return lines;
}
