import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StaticAsset {
  body: Buffer;
  contentType: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * The web page's files are plain HTML/CSS/JS kept in src/dashboard/web/; tsc does not copy them, so
 * from dist/src/dashboard/ they are found back in the source tree (the package ships src/ too); a copy
 * next to the compiled module is the fallback, for installs that ship dist/ alone.
 */
export function findWebRoot(): string {
  const candidates = [
    fileURLToPath(new URL('../../../src/dashboard/web/', import.meta.url)),
    fileURLToPath(new URL('./web/', import.meta.url)),
  ];
  for (const dir of candidates) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new Error(`dashboard web assets not found (looked in ${candidates.join(', ')})`);
}

/** Every file under the web root, read once at start: a handful of small files, served from memory. */
export function loadStaticAssets(root = findWebRoot()): Map<string, StaticAsset> {
  const assets = new Map<string, StaticAsset>();
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        walk(path, `${prefix}${name}/`);
        continue;
      }
      const contentType = CONTENT_TYPES[extname(name).toLowerCase()];
      if (contentType === undefined) continue;
      assets.set(`${prefix}${name}`, { body: readFileSync(path), contentType });
    }
  };
  walk(root, '/');
  const index = assets.get('/index.html');
  if (index !== undefined) assets.set('/', index);
  return assets;
}
