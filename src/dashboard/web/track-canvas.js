// The plain canvas under a track, shared by the live card (app.js) and a finished trip (map.js):
// the canvas sized to its box, cleared, with a faint grid, and the track's equirectangular fit.

/**
 * Sizes the canvas to its box (height 0.53 of its width, device pixels), clears it and draws the
 * 40 px grid. @param {HTMLCanvasElement} canvas
 * @returns {{ g: CanvasRenderingContext2D, width: number, height: number }}
 */
export function gridCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 640;
  const height = Math.round(width * 0.53);
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.strokeStyle = 'rgba(139,151,176,0.12)';
  g.lineWidth = 1;
  for (let x = 0; x < width; x += 40) { g.beginPath(); g.moveTo(x + 0.5, 0); g.lineTo(x + 0.5, height); g.stroke(); }
  for (let y = 0; y < height; y += 40) { g.beginPath(); g.moveTo(0, y + 0.5); g.lineTo(width, y + 0.5); g.stroke(); }
  return { g, width, height };
}

/**
 * Equirectangular around the track's centre, fitted into width x height with a 28 px margin; at
 * least ~200 m across, so a parked car is a dot in the middle rather than a zoomed-in smear.
 * @param {Array<[number, number]>} points  [lat, lon] pairs, at least one
 * @returns {{ px: (i: number) => number, py: (i: number) => number, scale: number }}
 */
export function fitTrack(points, width, height) {
  const lats = points.map((p) => p[0]);
  const lons = points.map((p) => p[1]);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const k = Math.cos((midLat * Math.PI) / 180);
  const xs = lons.map((lon) => lon * k);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...lats), maxY = Math.max(...lats);
  const span = Math.max(maxX - minX, maxY - minY, 0.002);
  const margin = 28;
  const scale = Math.min((width - 2 * margin) / span, (height - 2 * margin) / span);
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  const px = (i) => width / 2 + (xs[i] - cx) * scale;
  const py = (i) => height / 2 - (lats[i] - cy) * scale;
  return { px, py, scale };
}
