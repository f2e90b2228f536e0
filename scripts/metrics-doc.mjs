#!/usr/bin/env node
// Prints docs/METRICS.md from the compiled metrics registry, so the reference cannot drift from the
// code:   npm run build && node scripts/metrics-doc.mjs > docs/METRICS.md
// With --check it compares instead and exits 1 when docs/METRICS.md is stale.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/src/metrics/metrics-reference.js', import.meta.url);
const documentPath = fileURLToPath(new URL('../docs/METRICS.md', import.meta.url));

if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write(`metrics-doc: ${fileURLToPath(compiled)} not found; run "npm run build" first\n`);
  process.exit(2);
}
const { exportedMetrics, renderMetricsReference } = await import(compiled.href);
const output = renderMetricsReference(exportedMetrics());

if (process.argv.includes('--check')) {
  const current = existsSync(documentPath) ? readFileSync(documentPath, 'utf8') : '';
  if (current !== output) {
    process.stderr.write('metrics-doc: docs/METRICS.md is stale; run: node scripts/metrics-doc.mjs > docs/METRICS.md\n');
    process.exit(1);
  }
} else {
  process.stdout.write(output);
}
// The default Node metrics keep an event-loop monitor running; nothing else is pending.
process.exit(0);
