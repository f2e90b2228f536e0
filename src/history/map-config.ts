import type { AppConfig } from '../config/types.js';
import type { StaticAsset } from '../dashboard/static-assets.js';

/**
 * The page's map settings as a static JSON file (/map-config.json): the page stays plain files with
 * no inline script, and the tile source is the operator's choice (MAP_TILE_URL).
 */
export function mapConfigAsset(assets: Map<string, StaticAsset>, history: AppConfig['history']): Map<string, StaticAsset> {
  const body = JSON.stringify({ tileUrl: history.mapTileUrl, attribution: history.mapAttribution, historyEnabled: history.enabled });
  assets.set('/map-config.json', { body: Buffer.from(body), contentType: 'application/json' });
  return assets;
}
