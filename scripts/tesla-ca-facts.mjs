#!/usr/bin/env node
// Writes the facts the identity tests need about Tesla's published CA bundles (prod_ca.pem,
// eng_ca.pem): each certificate's subject and issuer, in bundle order. The bundles themselves are
// Tesla's reference data and stay out of the repository; the facts are committed as
// test/fixtures/tesla-ca-bundles.json, and test/unit/identity.test.ts builds CAs with these names.
// Usage: node scripts/tesla-ca-facts.mjs <tesla-ca-dir> [out-file]
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (!process.argv[2]) {
  process.stderr.write('usage: node scripts/tesla-ca-facts.mjs <tesla-ca-dir> [out-file]\n');
  process.exit(2);
}
const caDir = resolve(process.argv[2]);
const outFile = resolve(process.argv[3] ?? join(projectRoot, 'test', 'fixtures', 'tesla-ca-bundles.json'));

const facts = {};
for (const file of ['prod_ca.pem', 'eng_ca.pem']) {
  const pem = readFileSync(join(caDir, file), 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  facts[file] = blocks.map((block) => {
    const cert = new X509Certificate(block);
    return { subject: cert.subject, issuer: cert.issuer };
  });
}
writeFileSync(outFile, `${JSON.stringify(facts, null, 2)}\n`);
process.stdout.write(`wrote ${outFile} (${Object.entries(facts).map(([f, c]) => `${f}: ${c.length}`).join(', ')})\n`);
