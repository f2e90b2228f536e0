import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportedMetrics } from '../../src/metrics/metrics-reference.js';
import { PREFIX } from '../../src/metrics/series.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(REPO_ROOT, 'src');
const COMPOSER = 'src/metrics/server-metrics.ts';

/** Imports of a stage's metrics class from outside its folder that are wiring, not a stage reaching into another. */
const ALLOWED_ACROSS: ReadonlyArray<readonly [from: string, to: string]> = [
  // The history stage starts the PostgreSQL sink beside the recent history and hands it its series.
  ['src/history/start-history.ts', 'src/postgres/postgres-metrics.ts'],
];

function sourceFiles(): string[] {
  return (readdirSync(SRC, { recursive: true }) as string[]).filter((name) => name.endsWith('.ts')).map((name) => `src/${name.split('\\').join('/')}`);
}

/** The repository paths of the *-metrics modules a source file imports. */
function metricsImports(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/from '(\.[^']*-metrics\.js)'/g)) {
    const target = relative(REPO_ROOT, resolve(dirname(join(REPO_ROOT, file)), match[1] as string)).split('\\').join('/');
    found.push(target.replace(/\.js$/, '.ts'));
  }
  return found;
}

describe('metrics ownership', () => {
  it('every exported series has one owning module, and that module registers it', () => {
    const metrics = exportedMetrics();
    expect(metrics.length).to.be.greaterThan(60);
    for (const metric of metrics) {
      expect(metric.owner, `${metric.name} has an owner`).to.match(/^src\/.+\.ts$/);
      // The composer's own (build info, Node's process series) come from prom-client's defaults.
      if (metric.owner === COMPOSER) continue;
      const source = readFileSync(join(REPO_ROOT, metric.owner), 'utf8');
      expect(source, `${metric.owner} registers ${metric.name}`).to.include(`\${PREFIX}${metric.name.slice(PREFIX.length)}`);
    }
  });

  it('a stage module imports only its own folder\'s metrics class; only the top level and src/metrics see them all', () => {
    let checked = 0;
    for (const file of sourceFiles()) {
      const folder = dirname(file);
      for (const target of metricsImports(file)) {
        if (folder === 'src' || folder === 'src/metrics') continue;
        checked++;
        expect(target, `${file} imports the composer`).to.not.equal(COMPOSER);
        const allowed = dirname(target) === folder || ALLOWED_ACROSS.some(([from, to]) => from === file && to === target);
        expect(allowed, `${file} imports ${target}, another stage's metrics`).to.equal(true);
      }
    }
    // Not vacuous: the stages' modules do import their classes.
    expect(checked).to.be.greaterThan(15);
  });
});
