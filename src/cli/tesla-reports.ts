import type { ConfigStatus, PushResult, TelemetryErrorEntry } from '../tesla/fleet-api.js';
import { classifyTelemetryError, explainSkipReason, type TelemetryErrorKind } from '../tesla/explain.js';
import { estimateSignals, type FieldMap } from '../tesla/telemetry-config.js';
import { SIGNALS_PER_US_DOLLAR } from '../protocol/signal-price.js';
import { isObject } from '../safety/json-reader.js';

/** What the setup commands print: a config's signal cost, push results, a car's config status, reported errors. */

export function describeEstimate(fields: FieldMap, cars = 1): string {
  const e = estimateSignals(fields);
  const perCar = cars === 1 ? '' : ` per car (x${cars} cars: US$${(e.dollarsPer30Days * cars).toFixed(2)} per 30 days)`;
  return (
    `${Object.keys(fields).length} fields: at most ${Math.round(e.signalsPerHour).toLocaleString('en-US')} signals per hour while the car is awake and every value changes, ` +
    `US$${e.dollarsPerHour.toFixed(4)} per hour, US$${e.dollarsPer30Days.toFixed(2)} per 30 days if awake all the time${perCar} ` +
    `(at ${SIGNALS_PER_US_DOLLAR.toLocaleString('en-US')} signals per US$1)`
  );
}

/** One line per skipped VIN, plus the count updated. */
export function describePushResult(result: PushResult, domain: string): string[] {
  const lines = [`${result.updated_vehicles} vehicle${result.updated_vehicles === 1 ? '' : 's'} updated`];
  for (const [reason, vins] of Object.entries(result.skipped_vehicles)) {
    for (const vin of vins) lines.push(`${vin} skipped (${reason}): ${explainSkipReason(reason, domain)}`);
  }
  return lines;
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
    const fields = isObject(c.fields) ? Object.entries(c.fields) : [];
    lines.push(`  streams to: ${String(c.hostname)}:${String(c.port)}${typeof c.port === 'string' ? ' (port is a string: cars need an integer; push again)' : ''}`);
    lines.push(
      `  fields (${fields.length}): ${fields
        .map(([name, spec]) => `${name} every ${isObject(spec) && typeof spec.interval_seconds === 'number' ? spec.interval_seconds : '?'} s`)
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
