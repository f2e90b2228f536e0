import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metricNamesIn } from '../../src/metrics/dashboard-queries.js';
import { exportedMetrics, sampleNames } from '../../src/metrics/metrics-reference.js';
import { runPromtool } from '../helpers/metrics-tools.js';

const ALERTS = fileURLToPath(new URL('../../../grafana/alerts/', import.meta.url));
const RULES = join(ALERTS, 'fleet-telemetry.rules.yml');
const RULE_TESTS = join(ALERTS, 'fleet-telemetry.rules.test.yml');

/** The alert names and expressions of the rules file (one `expr:` line per rule, as written there). */
function rules(): Array<{ alert: string; expr: string }> {
  const text = readFileSync(RULES, 'utf8');
  const found: Array<{ alert: string; expr: string }> = [];
  let alert = '';
  for (const line of text.split('\n')) {
    const name = /^\s*- alert: (\S+)/.exec(line);
    if (name) alert = name[1]!;
    const expr = /^\s*expr: (.+)$/.exec(line);
    if (expr) found.push({ alert, expr: expr[1]! });
  }
  return found;
}

describe('Prometheus alert rules (grafana/alerts)', () => {
  it('pass promtool check rules', () => {
    const result = runPromtool(['check', 'rules', RULES]);
    expect(result.status, result.output).to.equal(0);
  });

  it('pass their promtool unit tests, each alert shown firing and silent', () => {
    const result = runPromtool(['test', 'rules', RULE_TESTS]);
    expect(result.status, result.output).to.equal(0);
    const tests = readFileSync(RULE_TESTS, 'utf8');
    for (const { alert } of rules()) {
      const cases = tests.split(`alertname: ${alert}\n`).slice(1).map((rest) => rest.split('alertname:')[0]!);
      expect(cases.some((c) => c.includes('exp_labels')), `${alert} is tested firing`).to.equal(true);
      expect(cases.some((c) => c.includes('exp_alerts: []')), `${alert} is tested silent`).to.equal(true);
    }
  });

  it('cover what the operator must hear about', () => {
    const names = rules().map((r) => r.alert);
    for (const wanted of [
      'FleetTelemetryCertificateExpiring',
      'FleetTelemetryNoCarsConnected',
      'FleetTelemetryAckLatencyHigh',
      'FleetTelemetryDecodeErrorsRising',
      'FleetTelemetryNatsUnavailable',
      'FleetTelemetryPublishesFailing',
      'FleetTelemetryDashboardsDroppedForBackpressure',
      'FleetTelemetryTeslaApiFailing',
      'FleetTelemetryConfigPushesSkipped',
    ]) {
      expect(names).to.include(wanted);
    }
  });

  it('use only series the server exports (and the scrape job\'s up)', () => {
    const exported = new Set(exportedMetrics().flatMap(sampleNames));
    exported.add('up');
    for (const { alert, expr } of rules()) {
      for (const name of metricNamesIn(expr)) expect(exported.has(name), `${alert}: ${name}`).to.equal(true);
    }
  });
});
