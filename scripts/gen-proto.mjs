#!/usr/bin/env node
// Writes proto/<package leaf>.proto (proto3), one file per package, from the schema facts in
// messages.tsv and enums.tsv. Usage: node scripts/gen-proto.mjs [schema-dir] [out-dir]
// schema-dir defaults to ../shared/tesla-schema (next to the project), out-dir to proto/.
// After a change to proto/, `node scripts/schema-facts.mjs` refreshes the committed copy of the facts
// (test/fixtures/tesla-schema) that the tests check proto/ against.
// The TSVs are the single source of truth: the script refuses input that would give a .proto
// protoc or protobufjs would read differently (duplicate numbers, proto3 enums not starting at 0, ...).
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const schemaDir = resolve(process.argv[2] ?? join(projectRoot, '..', 'shared', 'tesla-schema'));
const outDir = resolve(process.argv[3] ?? join(projectRoot, 'proto'));

const SCALARS = new Set([
  'double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
  'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string', 'bytes',
]);
// Well-known types the schema may use, and the import that provides each (protobufjs bundles these).
const WELL_KNOWN = new Map([
  ['google.protobuf.Timestamp', 'google/protobuf/timestamp.proto'],
  ['google.protobuf.Duration', 'google/protobuf/duration.proto'],
  ['google.protobuf.Struct', 'google/protobuf/struct.proto'],
  ['google.protobuf.Any', 'google/protobuf/any.proto'],
  ['google.protobuf.Empty', 'google/protobuf/empty.proto'],
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DOTTED = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

function fail(msg) {
  process.stderr.write(`gen-proto: ${msg}\n`);
  process.exit(1);
}

function readTsv(file, columns) {
  const path = join(schemaDir, file);
  if (!existsSync(path)) fail(`cannot find ${path} (pass the schema folder as the first argument)`);
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  const header = lines.shift().split('\t');
  for (const c of columns) if (!header.includes(c)) fail(`${file}: missing column ${c}`);
  const rows = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const cells = line.split('\t');
    const row = { line: i + 2 };
    header.forEach((h, j) => { row[h] = (cells[j] ?? '').trim(); });
    rows.push(row);
  });
  return rows;
}

function parseNumber(row, file) {
  const n = Number(row.number);
  if (!Number.isInteger(n) || String(n) !== row.number) fail(`${file}:${row.line}: bad number ${row.number}`);
  return n;
}

/** @type {Map<string, {messages: Map<string, any[]>, enums: Map<string, any[]>}>} */
const packages = new Map();
function pkg(name, line, file) {
  if (!DOTTED.test(name)) fail(`${file}:${line}: bad package ${name}`);
  let p = packages.get(name);
  if (!p) packages.set(name, (p = { messages: new Map(), enums: new Map() }));
  return p;
}

for (const row of readTsv('enums.tsv', ['package', 'enum', 'number', 'name'])) {
  if (!IDENT.test(row.enum) || !IDENT.test(row.name)) fail(`enums.tsv:${row.line}: bad identifier`);
  const values = pkg(row.package, row.line, 'enums.tsv').enums;
  if (!values.has(row.enum)) values.set(row.enum, []);
  values.get(row.enum).push({ number: parseNumber(row, 'enums.tsv'), name: row.name, line: row.line });
}
for (const row of readTsv('messages.tsv', ['package', 'message', 'number', 'name', 'type', 'label', 'oneof'])) {
  if (!IDENT.test(row.message) || !IDENT.test(row.name)) fail(`messages.tsv:${row.line}: bad identifier`);
  if (row.oneof && !IDENT.test(row.oneof)) fail(`messages.tsv:${row.line}: bad oneof name`);
  if (!['', 'repeated', 'optional'].includes(row.label)) fail(`messages.tsv:${row.line}: unsupported label ${row.label}`);
  const fields = pkg(row.package, row.line, 'messages.tsv').messages;
  if (!fields.has(row.message)) fields.set(row.message, []);
  fields.get(row.message).push({ ...row, number: parseNumber(row, 'messages.tsv') });
}

// Every type a field names must exist somewhere in the schema (or be a scalar / well-known type).
const knownTypes = new Set();
for (const [p, { messages, enums }] of packages) {
  for (const m of messages.keys()) knownTypes.add(`${p}.${m}`);
  for (const e of enums.keys()) knownTypes.add(`${p}.${e}`);
}

function checkEnum(p, name, values) {
  // proto3: the first value is the default and must be 0; names live in the package scope (C++ rules),
  // so two enums of one package may not share a value name.
  if (values[0].number !== 0) fail(`enum ${p}.${name}: first value must be 0 in proto3`);
  const numbers = new Set();
  for (const v of values) {
    if (numbers.has(v.number)) fail(`enum ${p}.${name}: duplicate number ${v.number} (would need allow_alias)`);
    numbers.add(v.number);
  }
}

function fieldType(p, f, imports) {
  const map = /^map<\s*(\w+)\s*,\s*([\w.]+)\s*>$/.exec(f.type);
  if (map) {
    if (!SCALARS.has(map[1]) || map[1] === 'float' || map[1] === 'double' || map[1] === 'bytes') {
      fail(`messages.tsv:${f.line}: bad map key type ${map[1]}`);
    }
    if (f.label || f.oneof) fail(`messages.tsv:${f.line}: a map field cannot be repeated, optional or in a oneof`);
    return `map<${map[1]}, ${typeRef(p, map[2], f, imports)}>`;
  }
  return typeRef(p, f.type, f, imports);
}

function typeRef(p, type, f, imports) {
  if (SCALARS.has(type)) return type;
  if (WELL_KNOWN.has(type)) {
    imports.add(WELL_KNOWN.get(type));
    return type;
  }
  if (!knownTypes.has(type)) fail(`messages.tsv:${f.line}: unknown type ${type}`);
  if (type.startsWith(`${p}.`) && !type.slice(p.length + 1).includes('.')) return type.slice(p.length + 1);
  // Another package of ours: import its file and use the fully qualified name.
  const otherPkg = type.slice(0, type.lastIndexOf('.'));
  imports.add(fileFor(otherPkg));
  return `.${type}`;
}

function fileFor(p) {
  return `${p.slice(p.lastIndexOf('.') + 1)}.proto`;
}

function renderPackage(p, { messages, enums }) {
  const imports = new Set();
  const body = [];
  for (const [name, fields] of messages) {
    const numbers = new Set();
    const names = new Set();
    for (const f of fields) {
      if (f.number < 1 || f.number > 536870911 || (f.number >= 19000 && f.number <= 19999)) {
        fail(`messages.tsv:${f.line}: field number ${f.number} out of range`);
      }
      if (numbers.has(f.number)) fail(`message ${p}.${name}: duplicate field number ${f.number}`);
      if (names.has(f.name)) fail(`message ${p}.${name}: duplicate field name ${f.name}`);
      numbers.add(f.number);
      names.add(f.name);
    }
    body.push(`message ${name} {`);
    const emittedOneofs = new Set();
    for (const f of fields) {
      if (f.oneof) {
        if (emittedOneofs.has(f.oneof)) continue;
        emittedOneofs.add(f.oneof);
        body.push(`  oneof ${f.oneof} {`);
        for (const m of fields.filter((x) => x.oneof === f.oneof)) {
          if (m.label) fail(`messages.tsv:${m.line}: a oneof member cannot be ${m.label}`);
          body.push(`    ${fieldType(p, m, imports)} ${m.name} = ${m.number};`);
        }
        body.push('  }');
        continue;
      }
      const label = f.label ? `${f.label} ` : '';
      body.push(`  ${label}${fieldType(p, f, imports)} ${f.name} = ${f.number};`);
    }
    body.push('}', '');
  }
  for (const [name, values] of enums) {
    checkEnum(p, name, values);
    body.push(`enum ${name} {`);
    for (const v of values) body.push(`  ${v.name} = ${v.number};`);
    body.push('}', '');
  }
  // Enum value names share the package scope in protoc: reject clashes across enums.
  const valueNames = new Map();
  for (const [name, values] of enums) {
    for (const v of values) {
      if (valueNames.has(v.name)) fail(`package ${p}: enum value ${v.name} in both ${valueNames.get(v.name)} and ${name}`);
      valueNames.set(v.name, name);
    }
  }
  const head = [
    '// Generated from the schema facts (tesla-schema/messages.tsv, enums.tsv) by scripts/gen-proto.mjs.',
    '// Do not edit by hand: change the facts and run `node scripts/gen-proto.mjs`.',
    '',
    'syntax = "proto3";',
    '',
    `package ${p};`,
    '',
  ];
  if (imports.size) head.push(...[...imports].sort().map((i) => `import "${i}";`), '');
  return `${head.join('\n')}\n${body.join('\n').replace(/\n+$/, '')}\n`;
}

mkdirSync(outDir, { recursive: true });
const written = [];
for (const p of [...packages.keys()].sort()) {
  const file = join(outDir, fileFor(p));
  if (written.some((w) => w.file === file)) fail(`two packages map to ${file}`);
  writeFileSync(file, renderPackage(p, packages.get(p)));
  const { messages, enums } = packages.get(p);
  written.push({ file, messages: messages.size, enums: enums.size });
}
for (const w of written) process.stdout.write(`wrote ${w.file} (${w.messages} messages, ${w.enums} enums)\n`);
