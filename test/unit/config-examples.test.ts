import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/index.js';
import { parseConfigFile } from '../../src/config/config-file.js';
import { SETTING_BY_PATH } from '../../src/config/schema.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function readPath(root: unknown, path: string): unknown {
  let node = root;
  for (const key of path.split('.')) node = (node as Record<string, unknown>)[key];
  return node;
}

/** The folders git tracks directly under `at` (a scratch folder in a working copy is not the tree). */
function folders(at: string): string[] {
  let tracked: string[];
  try {
    tracked = execFileSync('git', ['ls-files', '--', at], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n');
  } catch {
    // Not a git checkout (an unpacked tarball): what is on disk, less the build and install output.
    const ignored = new Set(['node_modules', 'dist', 'artifacts', 'data']);
    return readdirSync(join(REPO_ROOT, at)).filter((name) => !name.startsWith('.') && !ignored.has(name) && statSync(join(REPO_ROOT, at, name)).isDirectory());
  }
  const prefix = at === '.' ? '' : `${at}/`;
  const names = tracked
    .filter((file) => file.startsWith(prefix))
    .map((file) => file.slice(prefix.length).split('/'))
    .filter((parts) => parts.length > 1 && !parts[0]!.startsWith('.'))
    .map((parts) => parts[0]!);
  return [...new Set(names)];
}

describe('config/ examples (the design card folder)', () => {
  for (const env of ['production', 'development'] as const) {
    it(`config/${env}.example.json is valid against the schema and loads as config/${env}.json`, () => {
      const example = join(REPO_ROOT, 'config', `${env}.example.json`);
      const parsed = parseConfigFile(readFileSync(example, 'utf8'));
      expect(parsed.problems).to.deep.equal([]);
      expect(parsed.paths.length).to.be.greaterThan(5);
      for (const path of parsed.paths) expect(SETTING_BY_PATH.get(path)?.sensitive, `${path} is a secret`).to.equal(false);

      const dir = mkdtempSync(join(tmpdir(), 'config-example-'));
      try {
        mkdirSync(join(dir, 'config'));
        copyFileSync(example, join(dir, 'config', `${env}.json`));
        // Every setting the file sets is checked by its format; files and secrets come from elsewhere.
        const config = loadConfig({ cwd: dir, env: { NODE_ENV: env }, only: parsed.paths, onWarning: () => {} });
        for (const path of parsed.paths) {
          const written = readPath(parsed.values, path);
          const setting = SETTING_BY_PATH.get(path);
          const expected = setting?.format === 'file' && typeof written === 'string' ? resolve(dir, written) : written;
          expect(readPath(config, path), path).to.deep.equal(expected);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("the README's layout table names every top-level folder and every src/ folder", () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));
    const named = new Set([...table.matchAll(/`([a-z-]+(?:\/[a-z-]+)?)\/`/g)].map((m) => m[1]));
    const missing = [...folders('.').filter((name) => name !== 'src' && !named.has(name)), ...folders('src').filter((name) => !named.has(`src/${name}`))];
    expect(missing, 'folders the layout table does not name').to.deep.equal([]);
  });
});
