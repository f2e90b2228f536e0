import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AppConfig } from '../config/types.js';
import type { StaticAsset } from '../dashboard/static-assets.js';

/**
 * The page's map settings as a static JSON file (/map-config.json): the page stays plain files with
 * no inline script, and the tile source is the operator's choice (MAP_TILE_URL).
 */
export function mapConfigAsset(assets: Map<string, StaticAsset>, history: Pick<AppConfig['history'], 'enabled' | 'mapTileUrl' | 'mapAttribution'>): Map<string, StaticAsset> {
  const body = JSON.stringify({ tileUrl: history.mapTileUrl, attribution: history.mapAttribution, historyEnabled: history.enabled });
  assets.set('/map-config.json', { body: Buffer.from(body), contentType: 'application/json' });
  return assets;
}

/** The origin of the tile template (for the page's img-src), or none when the map is off. */
export function tileOrigins(tileUrl: string): string[] {
  if (tileUrl === '') return [];
  // {s} subdomain templates (a.tile..., b.tile...) need a wildcard host.
  const url = new URL(tileUrl.replace(/\{s\}/g, 'a').replace(/\{[a-z]+\}/gi, '0'));
  return [tileUrl.includes('{s}') ? `${url.protocol}//*.${url.host.split('.').slice(1).join('.')}` : url.origin];
}

const require = createRequire(import.meta.url);

/** Charts and map libraries, served by us from their npm packages under /vendor/ (no CDN). */
const VENDOR_FILES: Array<[string, string, string, string]> = [
  ['uplot', 'dist/uPlot.esm.js', '/vendor/uplot/uPlot.esm.js', 'text/javascript; charset=utf-8'],
  ['uplot', 'dist/uPlot.min.css', '/vendor/uplot/uPlot.min.css', 'text/css; charset=utf-8'],
  ['leaflet', 'dist/leaflet-src.esm.js', '/vendor/leaflet/leaflet-src.esm.js', 'text/javascript; charset=utf-8'],
  ['leaflet', 'dist/leaflet.css', '/vendor/leaflet/leaflet.css', 'text/css; charset=utf-8'],
];

export function vendorAssets(assets: Map<string, StaticAsset>): Map<string, StaticAsset> {
  for (const [pkg, file, path, contentType] of VENDOR_FILES) {
    const root = dirname(require.resolve(`${pkg}/package.json`));
    assets.set(path, { body: readFileSync(join(root, file)), contentType });
  }
  return assets;
}
