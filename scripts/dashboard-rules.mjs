#!/usr/bin/env node
// Prints a Prometheus rules file with every PromQL query of grafana/dashboards as a recording rule,
// for checking with Prometheus's own parser:
//   npm run build && node scripts/dashboard-rules.mjs > /tmp/dashboard-rules.yml && promtool check rules /tmp/dashboard-rules.yml
// (test/unit/metrics-dashboards.test.ts does exactly this.)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/src/metrics/dashboard-queries.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write(`dashboard-rules: ${fileURLToPath(compiled)} not found; run "npm run build" first\n`);
  process.exit(2);
}
const { dashboardQueries, dashboardRulesYaml } = await import(compiled.href);
process.stdout.write(dashboardRulesYaml(dashboardQueries(fileURLToPath(new URL('../grafana/dashboards/', import.meta.url)))));
