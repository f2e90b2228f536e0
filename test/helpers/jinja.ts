import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Renders Home Assistant value templates the way its MQTT integration does: Jinja2 in an immutable
 * sandbox with `value` (the payload text) and `value_json` (the payload parsed as JSON). Home
 * Assistant's own filters are a superset of Jinja's; the templates here use only Jinja built-ins
 * (`float` with a default, `first`, `replace`, `string`, `lower`), whose behaviour matches.
 * Uses Debian's python3-jinja2 (scripts/install-test-deps.sh).
 */
const SCRIPT = `
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
env = ImmutableSandboxedEnvironment()
out = []
for case in json.load(sys.stdin):
    try:
        value_json = json.loads(case["payload"])
    except ValueError:
        value_json = None
    out.append(env.from_string(case["template"]).render(value=case["payload"], value_json=value_json).strip())
json.dump(out, sys.stdout)
`;

/** Debian's interpreter, which python3-jinja2 installs for; a python3 earlier on PATH (pyenv, a venv) may lack it. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export function renderTemplates(cases: Array<{ template: string; payload: string }>): string[] {
  const result = spawnSync(PYTHON, ['-c', SCRIPT], { input: JSON.stringify(cases), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python3 with jinja2 is needed (scripts/install-test-deps.sh): ${result.stderr || result.error?.message}`);
  return JSON.parse(result.stdout) as string[];
}
