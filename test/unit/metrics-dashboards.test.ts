import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dashboardQueries, dashboardRulesYaml, expandGrafanaVariables, metricNamesIn } from '../../src/metrics/dashboard-queries.js';
import { exportedMetrics, sampleNames } from '../../src/metrics/metrics-reference.js';
import { runPromtool } from '../helpers/metrics-tools.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DASHBOARDS = join(REPO_ROOT, 'grafana/dashboards');

describe('PromQL metric name extraction', () => {
  it('finds metric names and skips functions, keywords, labels, strings, ranges and numbers', () => {
    expect(metricNamesIn('histogram_quantile(0.99, sum by (le, bus) (rate(fleet_telemetry_bus_publish_latency_seconds_bucket[5m])))'))
      .to.deep.equal(['fleet_telemetry_bus_publish_latency_seconds_bucket']);
    expect(metricNamesIn('sum(rate(a_total{topic=~"alerts|errors", kind!="x y"}[1m] offset 5m)) / clamp_min(sum(b), 1) * 1e3'))
      .to.deep.equal(['a_total', 'b']);
    expect(metricNamesIn('sum(x) by (topic) + on(instance) group_left(version) y_info and z unless w')).to.deep.equal(['w', 'x', 'y_info', 'z']);
    expect(metricNamesIn('up')).to.deep.equal(['up']);
  });

  it('expands only Grafana interval variables', () => {
    expect(expandGrafanaVariables('rate(x[$__rate_interval]) + increase(y[${__range}])')).to.equal('rate(x[1m]) + increase(y[1h])');
    expect(() => expandGrafanaVariables('x{instance=~"$instance"}')).to.throw(/unknown Grafana variable \$instance/);
  });
});

describe('Grafana dashboards', () => {
  const queries = dashboardQueries(DASHBOARDS);

  it('are what scripts/grafana-dashboards.mjs generates', () => {
    const result = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/grafana-dashboards.mjs'), '--check'], { encoding: 'utf8' });
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
  });

  it('have the Prometheus dashboards with queries (and the PostgreSQL one, checked in postgres-sink.test)', () => {
    expect(readdirSync(DASHBOARDS).sort()).to.deep.equal(['car-history.json', 'fleet-activity.json', 'server-health.json']);
    expect(new Set(queries.map((q) => q.dashboard))).to.deep.equal(new Set(['fleet-telemetry-server-health', 'fleet-telemetry-fleet-activity']));
    expect(queries.length).to.be.greaterThan(30);
  });

  it('every query parses: the generated rules file passes promtool check rules', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-rules-'));
    try {
      const file = join(dir, 'dashboard-rules.yml');
      writeFileSync(file, dashboardRulesYaml(queries));
      const good = runPromtool(['check', 'rules', file]);
      expect(good.output).to.match(/SUCCESS: \d+ rules found/);
      expect(good.status, good.output).to.equal(0);

      // The same route rejects a broken expression, so the check above means something.
      const broken = join(dir, 'broken.yml');
      writeFileSync(broken, dashboardRulesYaml([{ dashboard: 'd', panel: 'p', refId: 'A', expr: 'sum(rate(x[1m])' }]));
      const bad = runPromtool(['check', 'rules', broken]);
      expect(bad.status).to.not.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every metric a query names is one the server exports', () => {
    const exported = new Set(exportedMetrics().flatMap(sampleNames));
    const unknown: string[] = [];
    for (const query of queries) {
      const names = metricNamesIn(query.expr);
      expect(names.length, `${query.panel} ${query.refId} selects a metric`).to.be.greaterThan(0);
      for (const name of names) if (!exported.has(name)) unknown.push(`${query.dashboard} / ${query.panel}: ${name}`);
    }
    expect(unknown).to.deep.equal([]);
  });

  it('every panel uses the provisioned datasource, whose URL comes from PROMETHEUS_URL', () => {
    const datasource = readFileSync(join(REPO_ROOT, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8');
    expect(datasource).to.match(/^\s+url: \$\{PROMETHEUS_URL\}$/m);
    const uid = /^\s+uid: (\S+)$/m.exec(datasource)?.[1];
    expect(uid).to.equal('fleet-telemetry-prometheus');
    for (const file of readdirSync(DASHBOARDS).filter((name) => name !== 'car-history.json')) {
      const dashboard = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as { panels: Array<{ type: string; title: string; datasource?: { uid: string }; targets?: Array<{ datasource: { uid: string } }> }> };
      for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
        expect(panel.datasource?.uid, panel.title).to.equal(uid);
        for (const target of panel.targets ?? []) expect(target.datasource.uid, panel.title).to.equal(uid);
      }
    }
    const provider = readFileSync(join(REPO_ROOT, 'grafana/provisioning/dashboards/fleet-telemetry.yaml'), 'utf8');
    expect(provider).to.match(/^\s+folder: Fleet Telemetry$/m);
    expect(provider).to.match(/^\s+path: \/var\/lib\/grafana\/dashboards\/fleet-telemetry$/m);
  });

  it('docs/GRAFANA.md explains every panel', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/GRAFANA.md'), 'utf8');
    const headings = new Set([...doc.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim()));
    const missing = [...new Set(queries.map((q) => q.panel))].filter((title) => !headings.has(title));
    expect(missing).to.deep.equal([]);
  });
});

describe('docs/METRICS.md', () => {
  it('is what scripts/metrics-doc.mjs prints, and lists every exported series', () => {
    const result = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/metrics-doc.mjs')], { encoding: 'utf8' });
    expect(result.status, result.stderr).to.equal(0);
    const doc = readFileSync(join(REPO_ROOT, 'docs/METRICS.md'), 'utf8');
    expect(doc, 'docs/METRICS.md is stale: node scripts/metrics-doc.mjs > docs/METRICS.md').to.equal(result.stdout);
    for (const metric of exportedMetrics()) expect(doc).to.include(`| \`${metric.name}\` |`);
  });
});
