// Charts of a car's recent history (uPlot, served under /vendor/), today's trips and charging sessions,
// and a trip's track and charts. Asks the server with `history` and `trip` requests
// (docs/DASHBOARD-PROTOCOL.md); live records keep extending the newest point.
import uPlot from '/vendor/uplot/uPlot.esm.js';
import { TrackMap, drawGridTrack } from './map.js';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, children = []) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};

const COLORS = { a: '#38bdf8', b: '#a78bfa', c: '#34d399', d: '#fbbf24' };
const GEAR_P = 0;
const CHARGING = new Set([2, 3]);
const RESOLUTION_S = 5;

/** Chart definitions: which columns, on which scales. */
const CHARTS = [
  { id: 'chart-battery', series: [['soc', 'Battery %', COLORS.c, '%'], ['range', 'Range mi', COLORS.a, 'mi']] },
  { id: 'chart-speed', series: [['speed', 'Speed mph', COLORS.a, 'mph'], ['power', 'Power kW', COLORS.d, 'kW']] },
  { id: 'chart-charging', series: [['chargerPower', 'Charger kW', COLORS.c, 'kW']] },
  { id: 'chart-temps', series: [['insideTemp', 'Inside °C', COLORS.b, '°C'], ['outsideTemp', 'Outside °C', COLORS.a, '°C']] },
];
const TRIP_CHARTS = [
  { id: 'chart-trip-speed', series: [['speed', 'Speed mph', COLORS.a, 'mph']] },
  { id: 'chart-trip-battery', series: [['soc', 'Battery %', COLORS.c, '%']] },
];

/** Datum keys of live records -> history columns. */
const LIVE_COLUMNS = {
  Soc: 'soc', EstBatteryRange: 'range', VehicleSpeed: 'speed', InsideTemp: 'insideTemp', OutsideTemp: 'outsideTemp',
  ACChargingPower: 'ac', DCChargingPower: 'dc', PackVoltage: 'packVoltage', PackCurrent: 'packCurrent',
};
const GEARS = { ShiftStateP: 0, ShiftStateR: 1, ShiftStateN: 2, ShiftStateD: 3 };
const CHARGE_STATES = { DetailedChargeStateDisconnected: 0, DetailedChargeStateNoPower: 1, DetailedChargeStateStarting: 2, DetailedChargeStateCharging: 3, DetailedChargeStateComplete: 4, DetailedChargeStateStopped: 5 };

export function initHistory({ send, selected }) {
  const view = {
    vin: null,
    rangeSeconds: 86400,
    data: null,
    charts: new Map(),
    tripCharts: new Map(),
    live: {},
    refreshTimer: null,
    map: new TrackMap($('map'), $('track')),
    tripMap: new TrackMap($('trip-map'), $('trip-track')),
    openTrip: null,
  };

  const request = () => {
    if (!view.vin) return;
    const from = new Date(Date.now() - view.rangeSeconds * 1000).toISOString();
    send({ type: 'history', vin: view.vin, from, maxPoints: 1500 });
  };
  const refreshSoon = () => {
    clearTimeout(view.refreshTimer);
    view.refreshTimer = setTimeout(request, 1500);
  };

  for (const button of document.querySelectorAll('#history-range [data-range]')) {
    button.addEventListener('click', () => {
      view.rangeSeconds = Number(button.dataset.range);
      for (const other of document.querySelectorAll('#history-range [data-range]')) other.setAttribute('aria-pressed', String(other === button));
      request();
    });
  }
  $('trip-close').addEventListener('click', () => {
    view.openTrip = null;
    $('trip-detail').hidden = true;
  });
  const resize = new ResizeObserver(() => {
    for (const [id, chart] of [...view.charts, ...view.tripCharts]) chart.setSize(chartSize($(id)));
  });
  resize.observe($('history-panel'));

  function onSelect(vin) {
    if (vin === view.vin) return;
    view.vin = vin;
    view.data = null;
    view.live = {};
    view.openTrip = null;
    $('trip-detail').hidden = true;
    $('history-status').textContent = 'Loading…';
    view.map.setTrack([]);
    request();
  }

  function onMessage(message) {
    const vin = selected();
    if (vin !== view.vin) onSelect(vin);
    if (message.vin !== view.vin) return;
    switch (message.type) {
      case 'snapshot':
        // A (re)subscription: the socket may have been away, so read the history again.
        request();
        break;
      case 'recent_history':
        view.data = message;
        renderCharts();
        renderActivity();
        view.map.setTrack(positions(message));
        $('history-status').textContent = message.t.length === 0 ? 'No history yet for this car.' : `${message.t.length} ${message.t.length === 1 ? 'point' : 'points'} since ${new Date(message.from).toLocaleString()}`;
        break;
      case 'trip':
        renderTrip(message.trip);
        break;
      case 'record':
        if (message.topic === 'V') onLiveRecord(message);
        break;
      case 'error':
        if (['history_unavailable', 'history_failed', 'unknown_trip'].includes(message.code)) $('history-status').textContent = message.message;
        break;
    }
  }

  function onLiveRecord(message) {
    const data = message.record?.data;
    if (!Array.isArray(data)) return;
    const live = view.live;
    let gear = null;
    let charging = null;
    for (const datum of data) {
      const [key, value] = member(datum.value);
      if (datum.key === 'Gear') gear = GEARS[value] ?? null;
      else if (datum.key === 'DetailedChargeState') charging = CHARGE_STATES[value] ?? null;
      else if (datum.key === 'Location' && key === 'locationValue') {
        live.latitude = value.latitude;
        live.longitude = value.longitude;
        view.map.push([value.latitude, value.longitude]);
      } else if (LIVE_COLUMNS[datum.key] && typeof value === 'number') live[LIVE_COLUMNS[datum.key]] = value;
    }
    // A trip or a charge just ended: the server has it now.
    if (gear !== null && live.gear !== undefined && live.gear !== GEAR_P && gear === GEAR_P) refreshSoon();
    if (charging !== null && CHARGING.has(live.charging) && !CHARGING.has(charging)) refreshSoon();
    if (gear !== null) live.gear = gear;
    if (charging !== null) live.charging = charging;
    if (view.data) extendNewest(Date.parse(message.record.createdAt || message.receivedAt) / 1000);
  }

  /** Live values update the newest point (or add one per resolution step), so charts run to now. */
  function extendNewest(t) {
    const d = view.data;
    const live = view.live;
    if (!Number.isFinite(t)) return;
    if (live.packVoltage !== undefined && live.packCurrent !== undefined) live.power = (live.packVoltage * live.packCurrent) / 1000;
    if (live.ac !== undefined || live.dc !== undefined) live.chargerPower = Math.max(live.ac ?? 0, live.dc ?? 0);
    const n = d.t.length;
    if (n > 0 && t < d.t[n - 1]) return;
    const append = n === 0 || t - d.t[n - 1] >= RESOLUTION_S;
    if (append) d.t.push(t);
    for (const [name, column] of Object.entries(d.series)) {
      const value = live[name] ?? (n > 0 ? column[n - 1] : null);
      if (append) column.push(value);
      else column[n - 1] = value;
    }
    const cut = Date.now() / 1000 - view.rangeSeconds;
    while (d.t.length > 2 && d.t[0] < cut) {
      d.t.shift();
      for (const column of Object.values(d.series)) column.shift();
    }
    for (const def of CHARTS) view.charts.get(def.id)?.setData(chartData(d, def));
  }

  function renderCharts() {
    for (const def of CHARTS) {
      const data = chartData(view.data, def);
      const existing = view.charts.get(def.id);
      if (existing) {
        existing.setData(data);
        continue;
      }
      view.charts.set(def.id, makeChart($(def.id), def, data));
    }
  }

  function renderActivity() {
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    const today = (item) => Date.parse(item.endAt) >= midnight.getTime();
    const trips = view.data.trips.filter(today).reverse();
    const charges = view.data.charges.filter(today).reverse();
    $('trip-count').textContent = trips.length ? `${trips.length}` : '';
    $('charge-count').textContent = charges.length ? `${charges.length}` : '';
    $('trips').replaceChildren(
      ...(trips.length === 0
        ? [el('li', { className: 'muted', textContent: view.data.driving ? 'Driving now…' : 'No trip yet today.' })]
        : trips.map((trip) => {
            const button = el('button', { type: 'button', className: 'activity-item' }, [
              el('span', { className: 'activity-when', textContent: `${time(trip.startAt)} – ${time(trip.endAt)}` }),
              el('span', { className: 'activity-figures', textContent: tripFigures(trip) }),
            ]);
            button.dataset.trip = trip.id;
            button.addEventListener('click', () => send({ type: 'trip', vin: view.vin, id: trip.id }));
            return el('li', {}, [button]);
          })),
    );
    $('charges').replaceChildren(
      ...(charges.length === 0
        ? [el('li', { className: 'muted', textContent: view.data.charging ? 'Charging now…' : 'No charge yet today.' })]
        : charges.map((c) => {
            const item = el('div', { className: 'activity-item' }, [
              el('span', { className: 'activity-when', textContent: `${time(c.startAt)} – ${time(c.endAt)} · ${c.current}` }),
              el('span', {
                className: 'activity-figures',
                textContent: `${fixed(c.energyAddedKwh, 2)} kWh · peak ${fixed(c.peakPowerKw, 1)} kW · avg ${fixed(c.averagePowerKw, 1)} kW · ${pct(c.startSoc)} → ${pct(c.endSoc)} · ${duration(c.durationSeconds)}`,
              }),
            ]);
            item.dataset.charge = c.id;
            return el('li', {}, [item]);
          })),
    );
  }

  function renderTrip(trip) {
    view.openTrip = trip;
    $('trip-detail').hidden = false;
    $('trip-title').textContent = `Trip ${time(trip.startAt)} – ${time(trip.endAt)}`;
    $('trip-figures').textContent = tripFigures(trip);
    const points = [];
    for (let i = 0; i < trip.track.length; i += 3) points.push([trip.track[i + 1], trip.track[i + 2]]);
    drawGridTrack($('trip-track'), points);
    view.tripMap.setTrack(points);
    const from = Date.parse(trip.startAt) / 1000;
    const to = Date.parse(trip.endAt) / 1000;
    const d = view.data;
    const slice = { t: [], series: {} };
    for (const name of Object.keys(d?.series ?? {})) slice.series[name] = [];
    for (let i = 0; i < (d?.t.length ?? 0); i++) {
      if (d.t[i] < from || d.t[i] > to) continue;
      slice.t.push(d.t[i]);
      for (const name of Object.keys(d.series)) slice.series[name].push(d.series[name][i]);
    }
    for (const def of TRIP_CHARTS) {
      const data = chartData(slice, def);
      const existing = view.tripCharts.get(def.id);
      if (existing) existing.setData(data);
      else view.tripCharts.set(def.id, makeChart($(def.id), def, data));
    }
    $('trip-detail').scrollIntoView({ block: 'nearest' });
  }

  return { onMessage, onSelect };
}

function positions(message) {
  const points = [];
  const lat = message.series.latitude || [];
  const lon = message.series.longitude || [];
  for (let i = 0; i < lat.length; i++) if (lat[i] !== null && lon[i] !== null) points.push([lat[i], lon[i]]);
  return points;
}

function chartData(d, def) {
  return [d.t, ...def.series.map(([name]) => d.series[name] ?? d.t.map(() => null))];
}

function chartSize(node) {
  const width = Math.max(240, Math.floor(node.clientWidth || 320));
  return { width, height: 170 };
}

/**
 * uPlot widens a lone point's zero-width time range by 86400 / ms, which with second timestamps is
 * about 1,000 days; show the hour before the point (or before now, with no data) instead.
 */
function timeRange(u, min, max) {
  const t = u.data[0];
  if (t.length > 1) return [min, max];
  const end = t.length === 1 ? t[0] : Date.now() / 1000;
  return [end - 3600, end + 60];
}

function makeChart(node, def, data) {
  const axis = { stroke: '#8b97b0', grid: { stroke: 'rgba(139,151,176,0.12)' }, ticks: { stroke: 'rgba(139,151,176,0.2)' }, font: '11px system-ui, sans-serif' };
  const units = [...new Set(def.series.map((s) => s[3]))];
  const options = {
    ...chartSize(node),
    title: node.dataset.title,
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true, range: timeRange } },
    series: [{}, ...def.series.map(([, label, color, unit]) => ({ label, stroke: color, width: 2, spanGaps: true, scale: unit, points: { show: false } }))],
    axes: [axis, ...units.map((unit, i) => ({ ...axis, scale: unit, side: i === 0 ? 3 : 1, size: 48, grid: { ...axis.grid, show: i === 0 } }))],
  };
  return new uPlot(options, data, node);
}

function member(value) {
  if (!value || typeof value !== 'object') return [null, value];
  for (const [key, v] of Object.entries(value)) if (v !== null && v !== undefined) return [key, v];
  return [null, null];
}

function tripFigures(trip) {
  return [
    `${fixed(trip.distanceKm, 1)} km`,
    duration(trip.durationSeconds),
    trip.energyUsedKwh !== null ? `${fixed(trip.energyUsedKwh, 2)} kWh` : null,
    trip.efficiencyWhPerKm !== null ? `${Math.round(trip.efficiencyWhPerKm)} Wh/km` : null,
    trip.maxSpeedKmh !== null ? `max ${Math.round(trip.maxSpeedKmh)} km/h` : null,
    `${pct(trip.startSoc)} → ${pct(trip.endSoc)}`,
  ].filter(Boolean).join(' · ');
}

const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const fixed = (n, digits) => (typeof n === 'number' ? n.toFixed(digits) : '–');
const pct = (n) => (typeof n === 'number' ? `${Math.round(n)}%` : '–');
function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
