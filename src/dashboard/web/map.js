// A real map under a track (Leaflet, served by this server under /vendor/), with tiles from the
// operator's MAP_TILE_URL (OpenStreetMap's by default). Until a tile has loaded, and for good when
// tiles cannot load (no internet, a blocked tile server), the plain grid canvas underneath stays.
import * as L from '/vendor/leaflet/leaflet-src.esm.js';
import { fitTrack, gridCanvas } from './track-canvas.js';

let configPromise = null;

/** /map-config.json: { tileUrl, attribution, historyEnabled }. */
export function mapConfig() {
  configPromise ??= fetch('/map-config.json', { cache: 'no-store' })
    .then((response) => (response.ok ? response.json() : { tileUrl: '' }))
    .catch(() => ({ tileUrl: '' }));
  return configPromise;
}

export class TrackMap {
  /** @param {HTMLElement} container  @param {HTMLCanvasElement} fallback */
  constructor(container, fallback) {
    this.container = container;
    this.fallback = fallback;
    this.map = null;
    this.line = null;
    this.marker = null;
    this.points = [];
    this.fitted = false;
    this.config = null;
    mapConfig().then((config) => {
      this.config = config;
      this.container.dataset.tiles = config.tileUrl ? 'waiting' : 'none';
      this.render();
    });
  }

  /** Leaflet needs a laid-out container: start it the first time there is something to show. */
  start(config) {
    this.container.dataset.tiles = 'loading';
    const map = L.map(this.container, { zoomControl: true, attributionControl: true, preferCanvas: true });
    const layer = L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.attribution || '', crossOrigin: false });
    let loaded = false;
    layer.on('tileload', () => {
      if (loaded) return;
      loaded = true;
      // Tiles work: the map takes the canvas's place.
      this.container.dataset.tiles = 'loaded';
      this.fallback.hidden = true;
      map.invalidateSize();
      this.fit(true);
    });
    layer.on('tileerror', () => {
      if (!loaded) this.container.dataset.tiles = 'failed';
    });
    layer.addTo(map);
    this.line = L.polyline([], { color: '#38bdf8', weight: 4, opacity: 0.9 }).addTo(map);
    this.marker = L.circleMarker([0, 0], { radius: 7, color: '#0b1120', weight: 2, fillColor: '#38bdf8', fillOpacity: 1 });
    this.map = map;
    map.setView([0, 0], 2);
    map.on('dragstart zoomstart', (event) => {
      // Once the user moves the map, live points no longer re-centre it.
      if (event.type === 'dragstart') this.fitted = true;
    });
    this.render();
  }

  /** Replace the whole track ([[lat, lon], ...]). */
  setTrack(points) {
    this.points = points.slice();
    this.fitted = false;
    this.render();
  }

  /** One more live point. */
  push(point) {
    this.points.push(point);
    if (this.points.length > 5000) this.points.splice(0, this.points.length - 5000);
    this.render();
  }

  render() {
    if (this.map === null && this.config?.tileUrl && this.points.length > 0 && this.container.offsetWidth > 0) this.start(this.config);
    if (this.map === null) return;
    this.line.setLatLngs(this.points);
    const last = this.points[this.points.length - 1];
    if (last) {
      this.marker.setLatLng(last);
      if (!this.map.hasLayer(this.marker)) this.marker.addTo(this.map);
    }
    this.fit(false);
  }

  fit(force) {
    if (this.map === null || this.points.length === 0 || (this.fitted && !force)) return;
    if (this.container.dataset.tiles !== 'loaded') return;
    const bounds = L.latLngBounds(this.points);
    this.map.fitBounds(bounds.pad(0.15), { maxZoom: 16, animate: false });
    this.fitted = true;
  }
}

/** The grid fallback for a finished track: equirectangular, fitted, start dot and end ring. */
export function drawGridTrack(canvas, points) {
  const { g, width, height } = gridCanvas(canvas);
  if (points.length === 0) return;
  const { px, py } = fitTrack(points, width, height);
  g.strokeStyle = '#38bdf8';
  g.lineWidth = 3;
  g.lineJoin = 'round';
  g.beginPath();
  for (let i = 0; i < points.length; i++) (i === 0 ? g.moveTo(px(i), py(i)) : g.lineTo(px(i), py(i)));
  g.stroke();
  g.fillStyle = '#8b97b0';
  g.beginPath();
  g.arc(px(0), py(0), 4, 0, Math.PI * 2);
  g.fill();
  g.strokeStyle = '#e5e9f2';
  g.lineWidth = 2;
  g.beginPath();
  g.arc(px(points.length - 1), py(points.length - 1), 6, 0, Math.PI * 2);
  g.stroke();
}
