/**
 * A deliberately small `.env` reader: `KEY=VALUE` lines, optional `export ` prefix, `#` comments,
 * single quotes (literal) and double quotes (with \n \r \t \\ \" escapes). No variable expansion and
 * no multi-line values: a line that does not fit is reported by number, never echoed, because
 * `.env` lines usually hold secrets.
 */

export interface DotenvResult {
  values: Map<string, string>;
  /** "line N: reason" for each line that could not be read. */
  problems: string[];
}

const ASSIGNMENT = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"' };

type ValueResult = { value: string } | { problem: string };

function readDoubleQuoted(text: string): ValueResult {
  let value = '';
  for (let i = 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      const next = text[i + 1];
      value += ESCAPES[next] ?? `\\${next}`;
      i++;
    } else if (ch === '"') {
      return afterClosingQuote(value, text.slice(i + 1));
    } else {
      value += ch;
    }
  }
  return { problem: 'unterminated double quote (multi-line values are not supported)' };
}

function readSingleQuoted(text: string): ValueResult {
  const end = text.indexOf("'", 1);
  if (end < 0) return { problem: 'unterminated single quote (multi-line values are not supported)' };
  return afterClosingQuote(text.slice(1, end), text.slice(end + 1));
}

function afterClosingQuote(value: string, rest: string): ValueResult {
  const trimmed = rest.trim();
  return trimmed === '' || trimmed.startsWith('#')
    ? { value }
    : { problem: 'unexpected text after the closing quote' };
}

function readUnquoted(text: string): string {
  // A `#` starts a comment only after whitespace, so values such as `abc#123` survive.
  const comment = text.search(/\s#/);
  return (comment >= 0 ? text.slice(0, comment) : text).trim();
}

export function parseDotenv(text: string): DotenvResult {
  const values = new Map<string, string>();
  const problems: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = ASSIGNMENT.exec(line);
    if (match === null) {
      problems.push(`line ${index + 1}: expected KEY=VALUE`);
      return;
    }
    const [, key, rest] = match;
    const result: ValueResult = rest.startsWith('"')
      ? readDoubleQuoted(rest)
      : rest.startsWith("'")
        ? readSingleQuoted(rest)
        : { value: readUnquoted(rest) };
    if ('problem' in result) {
      problems.push(`line ${index + 1}: ${key}: ${result.problem}`);
      return;
    }
    values.set(key, result.value);
  });
  return { values, problems };
}
