import { parse } from 'dotenv';

/**
 * Reads `.env` with the `dotenv` package's parser (quotes, `\n` in double quotes, comments,
 * `export `), one line at a time. What we add is the refusal the library does not do: a line that is
 * not `KEY=VALUE`, an unterminated quote, text after a closing quote or a `#` that would cut an
 * unquoted value short is reported by number, never echoed, because
 * `.env` lines usually hold secrets; such a line sets nothing. Parsing line by line keeps a broken
 * line from swallowing the lines after it, so multi-line values are not supported.
 */

export interface DotenvResult {
  values: Map<string, string>;
  /** "line N: reason" for each line that could not be read. */
  problems: string[];
}

const ASSIGNMENT = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
/** A double-quoted value (backslash escapes included) and what follows it. */
const DOUBLE_QUOTED = /^"(?:\\.|[^"\\])*"(.*)$/;
const SINGLE_QUOTED = /^'[^']*'(.*)$/;

/** Why the value part of an assignment cannot be read, or undefined when the library may parse it. */
function valueProblem(value: string): string | undefined {
  const quote = value[0];
  if (quote !== '"' && quote !== "'") {
    // dotenv ends an unquoted value at any `#`: `abc#123` would silently become `abc`.
    return /(^|[^\s])#/.test(value) ? 'a "#" inside an unquoted value starts a comment; quote the value' : undefined;
  }
  const closed = (quote === '"' ? DOUBLE_QUOTED : SINGLE_QUOTED).exec(value);
  if (closed === null) {
    return `unterminated ${quote === '"' ? 'double' : 'single'} quote (multi-line values are not supported)`;
  }
  // The group `(.*)` always takes part in a match.
  const rest = closed[1]!.trim();
  return rest === '' || rest.startsWith('#') ? undefined : 'unexpected text after the closing quote';
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
    // Both groups always take part in a match of ASSIGNMENT.
    const [, key = '', rest = ''] = match;
    const problem = valueProblem(rest);
    if (problem !== undefined) {
      problems.push(`line ${index + 1}: ${key}: ${problem}`);
      return;
    }
    const parsed = parse(line);
    const value = Object.hasOwn(parsed, key) ? parsed[key] : undefined;
    if (value === undefined) {
      problems.push(`line ${index + 1}: expected KEY=VALUE`);
      return;
    }
    values.set(key, value);
  });
  return { values, problems };
}
