#!/usr/bin/env node
// Writes the schema facts (messages.tsv, enums.tsv) that proto/ declares, in the layout of Tesla's
// schema facts that scripts/gen-proto.mjs reads. The output is committed as test/fixtures/tesla-schema,
// so the drift checks of test/unit/payload.test.ts run on any clone, with or without Tesla's facts
// beside it. Usage: node scripts/schema-facts.mjs [out-dir] (default test/fixtures/tesla-schema).
// Run it after `node scripts/gen-proto.mjs` has changed proto/.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(projectRoot, 'proto');
const outDir = resolve(process.argv[2] ?? join(projectRoot, 'test', 'fixtures', 'tesla-schema'));

const files = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).sort();
const root = new protobuf.Root().loadSync(files.map((f) => join(protoDir, f)), { keepCase: true });
root.resolveAll();

/** Every type and enum declared by our files (not the bundled google/protobuf ones), by package. */
function declared(ns, out = []) {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type || child instanceof protobuf.Enum) {
      if (!child.filename || !child.filename.startsWith(protoDir)) continue;
      out.push(child);
    } else if (child instanceof protobuf.Namespace) {
      declared(child, out);
    }
  }
  return out;
}

const packageOf = (t) => t.parent.fullName.replace(/^\./, '');
const typeName = (f) => {
  if (f.resolvedType) return f.resolvedType.fullName.replace(/^\./, '');
  return f.type;
};

const all = declared(root);
const packages = [...new Set(all.map(packageOf))].sort();
const messages = ['package\tmessage\tnumber\tname\ttype\tlabel\toneof'];
const enums = ['package\tenum\tnumber\tname'];
for (const p of packages) {
  for (const t of all.filter((x) => packageOf(x) === p)) {
    if (t instanceof protobuf.Type) {
      if (t.nestedArray.length) throw new Error(`${t.fullName}: nested declarations are not in the facts' layout`);
      for (const f of t.fieldsArray) {
        const type = f.map ? `map<${f.keyType},${typeName(f)}>` : typeName(f);
        const label = f.repeated && !f.map ? 'repeated' : f.options?.proto3_optional ? 'optional' : '';
        const oneof = f.partOf && !f.options?.proto3_optional ? f.partOf.name : '';
        messages.push([p, t.name, f.id, f.name, type, label, oneof].join('\t'));
      }
    } else {
      for (const [name, number] of Object.entries(t.values)) enums.push([p, t.name, number, name].join('\t'));
    }
  }
}

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'messages.tsv'), `${messages.join('\n')}\n`);
writeFileSync(join(outDir, 'enums.tsv'), `${enums.join('\n')}\n`);
process.stdout.write(`wrote ${outDir} (${messages.length - 1} fields, ${enums.length - 1} enum values) from ${files.length} files in proto/\n`);
