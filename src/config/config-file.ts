import { readFileSync } from 'node:fs';
import { schema } from './schema.js';

/**
 * Reads `config/<NODE_ENV>.json`: nested keys following AppConfig. Unknown keys are errors (a typo
 * silently ignored is a setting silently at its default). The result holds only schema keys, so it
 * can be handed to convict without it growing undeclared properties.
 */

export interface ConfigFileResult {
  /** Only the known settings, nested as in the file. */
  values: Record<string, unknown>;
  /** Dotted paths of the leaves the file sets. */
  paths: string[];
  problems: string[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * V8's JSON.parse messages quote the text around the error, which may be a secret: report only the
 * position, as a line and column.
 */
function describeJsonError(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const position = /at position (\d+)/.exec(message);
  if (position === null) {
    return text.trim() === '' ? 'is empty (use {} for no settings)' : 'is not valid JSON';
  }
  const offset = Number(position[1]);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `is not valid JSON (error at line ${line}, column ${column})`;
}

function collect(
  fileNode: Record<string, unknown>,
  schemaNode: Record<string, unknown>,
  prefix: string,
  out: ConfigFileResult,
  target: Record<string, unknown>,
): void {
  for (const [key, value] of Object.entries(fileNode)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (!Object.hasOwn(schemaNode, key)) {
      out.problems.push(`unknown setting "${path}"`);
      continue;
    }
    if (path === 'env') {
      out.problems.push('"env" cannot be set in a config file: NODE_ENV chooses the file');
      continue;
    }
    const item = schemaNode[key] as Record<string, unknown>;
    if ('default' in item) {
      target[key] = value;
      out.paths.push(path);
      continue;
    }
    if (!isPlainObject(value)) {
      out.problems.push(`"${path}" must be an object of settings`);
      continue;
    }
    const child: Record<string, unknown> = {};
    target[key] = child;
    collect(value, item, path, out, child);
  }
}

export function parseConfigFile(text: string): ConfigFileResult {
  const out: ConfigFileResult = { values: {}, paths: [], problems: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    out.problems.push(describeJsonError(text, error));
    return out;
  }
  if (!isPlainObject(parsed)) {
    out.problems.push('must hold a JSON object');
    return out;
  }
  collect(parsed, schema as Record<string, unknown>, '', out, out.values);
  return out;
}

export type ReadResult = { text: string } | { missing: true } | { problem: string };

/** Reads a text file, turning the usual failures into operator-facing words. */
export function readTextFile(path: string, shownPath: string): ReadResult {
  try {
    return { text: readFileSync(path, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { missing: true };
    if (code === 'EACCES' || code === 'EPERM') return { problem: `file not readable (permission denied): ${shownPath}` };
    if (code === 'EISDIR') return { problem: `is a directory, not a file: ${shownPath}` };
    return { problem: `cannot read ${shownPath} (${code ?? 'unknown error'})` };
  }
}
