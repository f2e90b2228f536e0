import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arrayAt, objectAt, optionalString, parseJson, stringField } from '../safety/json-reader.js';

/** One PromQL query of one dashboard panel. */
export interface DashboardQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

/** Every query in the dashboards of a directory (grafana/dashboards), including panels nested in rows. */
export function dashboardQueries(dir: string): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.json')).sort()) {
    const dashboard = objectAt(parseJson(readFileSync(join(dir, file), 'utf8')), file);
    const uid = stringField(dashboard, 'uid', file);
    const visit = (panels: unknown, where: string): void => {
      if (panels === undefined) return;
      arrayAt(panels, where).forEach((item, i) => {
        const panel = objectAt(item, `${where}[${i}]`);
        const title = optionalString(panel, 'title', `${where}[${i}]`);
        const targets = panel.targets === undefined ? [] : arrayAt(panel.targets, `${where}[${i}].targets`);
        targets.forEach((entry, t) => {
          const target = objectAt(entry, `${where}[${i}].targets[${t}]`);
          // SQL panels (the PostgreSQL "Car history" dashboard) are checked against a real database instead.
          if (typeof target.rawSql === 'string') return;
          if (typeof target.expr !== 'string' || target.expr.trim() === '') {
            throw new Error(`${file}: panel "${title ?? '?'}" has a target without a PromQL expression`);
          }
          queries.push({ dashboard: uid, panel: title ?? '', refId: typeof target.refId === 'string' ? target.refId : '', expr: target.expr });
        });
        visit(panel.panels, `${where}[${i}].panels`);
      });
    };
    visit(dashboard.panels, `${file}: panels`);
  }
  return queries;
}

/** Grafana's built-in interval variables, replaced by a plausible value so plain PromQL tools can parse. */
const GRAFANA_INTERVALS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
};

/**
 * The expression as Prometheus would receive it. Only Grafana's interval variables are known; any other
 * `$variable` is an error, because nothing could then check the query.
 */
export function expandGrafanaVariables(expr: string): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (match, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = GRAFANA_INTERVALS[name];
    if (value === undefined) throw new Error(`unknown Grafana variable ${match} in: ${expr}`);
    return value;
  });
}

/**
 * A Prometheus rules file with one recording rule per distinct dashboard expression, for
 * `promtool check rules`, which parses every expression with Prometheus's own parser.
 */
export function dashboardRulesYaml(queries: readonly DashboardQuery[]): string {
  const groups = new Map<string, Map<string, string>>();
  for (const query of queries) {
    const expr = expandGrafanaVariables(query.expr);
    const rules = groups.get(query.dashboard) ?? new Map<string, string>();
    groups.set(query.dashboard, rules);
    if ([...rules.values()].includes(expr)) continue;
    const record = `dashboard:${slug(query.dashboard)}:${slug(query.panel)}_${query.refId.toLowerCase()}`;
    if (rules.has(record)) throw new Error(`two dashboard queries would share the rule name ${record}`);
    rules.set(record, expr);
  }
  const lines = ['# Generated from grafana/dashboards by scripts/dashboard-rules.mjs: every dashboard query as a', '# recording rule, so `promtool check rules` parses them all.', 'groups:'];
  for (const [dashboard, rules] of groups) {
    lines.push(`  - name: ${JSON.stringify(dashboard)}`, '    rules:');
    for (const [record, expr] of rules) {
      // A JSON string is a valid YAML double-quoted scalar.
      lines.push(`      - record: ${record}`, `        expr: ${JSON.stringify(expr)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

const PROMQL_KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset',
  'start', 'end', 'inf', 'nan', 'atan2',
]);

/**
 * The metric names a PromQL expression selects. Not a full parser (promtool checks the syntax); it
 * removes what cannot be a metric name (strings, label matchers, ranges, grouping label lists,
 * numbers and durations), then keeps the identifiers that are neither keywords nor function calls.
 */
export function metricNamesIn(expr: string): string[] {
  let text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ');
  text = text.replace(/\{[^}]*\}/g, ' ');
  text = text.replace(/\[[^\]]*\]/g, ' ');
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const names = new Set<string>();
  const token = /(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[a-zA-Z0-9]*|\.\d+)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g;
  let match: RegExpExecArray | null;
  while ((match = token.exec(text)) !== null) {
    const [, number, identifier, call] = match;
    if (number !== undefined || identifier === undefined || call !== undefined) continue;
    if (PROMQL_KEYWORDS.has(identifier.toLowerCase())) continue;
    names.add(identifier);
  }
  return [...names].sort();
}
