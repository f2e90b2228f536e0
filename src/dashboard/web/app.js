// The live dashboard: signs in with a token, follows cars over the /dashboard WebSocket
// (protocol in docs/DASHBOARD-PROTOCOL.md) and redraws only what changed. No framework, no CDN.

import { COOKIE_SESSION, probeTeslaSession, teslaSignOut } from './tesla-sign-in.js';
import { initHistory } from './history.js';
import { fitTrack, gridCanvas } from './track-canvas.js';

const TOKEN_KEY = 'fleet-telemetry.token';
const MAX_TRACK_POINTS = 2000;
const MAX_FEED = 100;
/** Up to this many allowed cars are all followed live; beyond it only the selected one is. */
const FOLLOW_ALL_LIMIT = 20;
const DOORS = [['DriverFront', 'Driver front'], ['PassengerFront', 'Passenger front'], ['DriverRear', 'Driver rear'], ['PassengerRear', 'Passenger rear'], ['TrunkFront', 'Frunk'], ['TrunkRear', 'Trunk']];

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, children = []) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};

const state = {
  token: null,
  grant: null,
  socket: null,
  backoffMs: 1000,
  reconnectTimer: null,
  /** VIN -> { vin, connected, stale, lastSeenAt, fields: Map(name -> {value, at}), track: [[lat, lon]], feed: [] } */
  cars: new Map(),
  subscribed: new Set(),
  selected: null,
  filter: '',
};

function car(vin) {
  let c = state.cars.get(vin);
  if (!c) {
    c = { vin, connected: false, stale: false, lastSeenAt: null, fields: new Map(), track: [], feed: [] };
    state.cars.set(vin, c);
  }
  return c;
}

// ---------- sign-in ----------

function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token') || url.searchParams.get('access_token');
  if (token) {
    // Keep the token out of the address bar and history.
    url.searchParams.delete('token');
    url.searchParams.delete('access_token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return token;
}

async function checkSession(token) {
  // A Tesla sign-in session rides on its HttpOnly cookie, which fetch sends by itself.
  const headers = token === COOKIE_SESSION ? {} : { Authorization: `Bearer ${token}` };
  const response = await fetch('/api/session', { headers, cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (response.ok) return { ok: true, grant: body };
  return { ok: false, status: response.status, reason: body.reason || `HTTP ${response.status}`, message: body.message || '' };
}

const REASON_TEXT = {
  missing_token: 'Sign in to continue.',
  expired: 'This token has expired. Ask for a new one.',
  bad_signature: 'This token was not signed by this server.',
  malformed_token: 'That does not look like a token.',
  missing_vins: 'This token does not name any vehicles.',
  missing_scope: 'The Tesla token lacks the vehicle_device_data scope.',
  not_yet_valid: 'This token is not valid yet.',
};

function showSignIn(message = '') {
  disconnect();
  $('app').hidden = true;
  $('session').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  $('token-input').focus();
}

async function signIn(token, { quiet = false } = {}) {
  let result;
  try {
    result = await checkSession(token);
  } catch {
    if (quiet) return false;
    showSignIn('The server cannot be reached. Is it running?');
    return false;
  }
  if (!result.ok) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(REASON_TEXT[result.reason] || `Sign-in refused: ${result.reason}`);
    return false;
  }
  state.token = token;
  if (token !== COOKIE_SESSION) sessionStorage.setItem(TOKEN_KEY, token);
  $('sign-in').hidden = true;
  $('app').hidden = false;
  $('session').hidden = false;
  connect();
  return true;
}

function signOut() {
  if (state.token === COOKIE_SESSION) void teslaSignOut();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.cars.clear();
  state.subscribed.clear();
  state.selected = null;
  showSignIn('Signed out.');
}

// ---------- socket ----------

function setLink(kind, text) {
  const pill = $('link-state');
  pill.dataset.state = kind;
  pill.textContent = text;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  const url = state.token === COOKIE_SESSION ? `wss://${location.host}/dashboard` : `wss://${location.host}/dashboard?access_token=${encodeURIComponent(state.token)}`;
  const socket = new WebSocket(url);
  state.socket = socket;
  setLink('connecting', 'Connecting…');
  socket.addEventListener('open', () => {
    state.backoffMs = 1000;
    setLink('live', 'Live');
  });
  socket.addEventListener('message', (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(message);
    historyView.onMessage(message);
  });
  socket.addEventListener('close', (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    state.subscribed.clear();
    if (event.code === 4001) return showSignIn('Your token expired. Sign in with a new one.');
    if (event.code === 4003) return showSignIn('Your session ended. Sign in again.');
    // A token checked only at the upgrade (after a reconnect) and refused there: the reason is the close reason.
    if (event.code === 4401) return showSignIn(`The server refused your token (${event.reason}). Sign in again.`);
    if (event.code === 4429) return showSignIn('This token already has as many dashboards open as the server allows. Close one and sign in again.');
    scheduleReconnect();
  });
}

function disconnect() {
  clearTimeout(state.reconnectTimer);
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000);
}

function scheduleReconnect() {
  const delay = Math.round(state.backoffMs * (0.8 + Math.random() * 0.4));
  state.backoffMs = Math.min(state.backoffMs * 2, 30000);
  const until = Date.now() + delay;
  setLink('reconnecting', `Reconnecting in ${Math.ceil(delay / 1000)}s`);
  const tick = setInterval(() => {
    if (state.socket || !state.token) return clearInterval(tick);
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setLink('reconnecting', left > 0 ? `Reconnecting in ${left}s` : 'Reconnecting…');
  }, 1000);
  state.reconnectTimer = setTimeout(async () => {
    clearInterval(tick);
    if (!state.token) return;
    // A browser cannot see why an upgrade failed, so ask the session endpoint first.
    let result;
    try {
      result = await checkSession(state.token);
    } catch {
      setLink('offline', 'Server unreachable');
      return scheduleReconnect();
    }
    if (!result.ok && result.status === 401) return showSignIn(REASON_TEXT[result.reason] || `Sign-in refused: ${result.reason}`);
    connect();
  }, delay);
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
}

// ---------- protocol ----------

function handle(message) {
  switch (message.type) {
    case 'hello':
      state.grant = message;
      $('token-expiry').textContent = `token valid until ${new Date(message.expiresAt).toLocaleString()}`;
      // A Tesla token without the vehicle_location scope: the server holds location fields back.
      $('location-withheld').hidden = message.location !== false;
      $('add-vin').hidden = message.vins !== '*';
      mergeVehicles(message.vehicles);
      follow();
      break;
    case 'vehicles':
      mergeVehicles(message.vehicles);
      follow();
      break;
    case 'snapshot': {
      const c = car(message.vin);
      c.connected = message.connected;
      c.stale = Boolean(message.stale);
      if (message.lastSeenAt) c.lastSeenAt = message.lastSeenAt;
      c.fields = new Map(Object.entries(message.state));
      const location = c.fields.get('Location');
      const point = location && toPoint(location.value);
      if (point && c.track.length === 0) c.track.push(point);
      render(message.vin, true);
      break;
    }
    case 'record':
      onRecord(message);
      break;
    case 'watchdog': {
      const c = car(message.vin);
      c.stale = message.event === 'stale';
      c.lastSeenAt = message.lastSeenAt;
      pushFeed(c, { kind: 'connectivity', title: message.event === 'stale' ? 'Went quiet' : 'Streaming again', at: message.lastSeenAt });
      render(message.vin, true);
      break;
    }
    case 'error':
      if (message.vin) state.subscribed.delete(message.vin);
      const target = message.vin || state.selected;
      if (target && state.cars.has(target)) {
        pushFeed(state.cars.get(target), { kind: 'error', title: `Server: ${message.message}`, at: new Date().toISOString(), meta: message.code });
        render(target, true);
      }
      break;
  }
}

function onRecord(message) {
  const c = car(message.vin);
  const record = message.record || {};
  c.lastSeenAt = message.receivedAt;
  c.stale = false;
  if (message.topic === 'V' && Array.isArray(record.data)) {
    const at = record.createdAt || message.receivedAt;
    const changed = [];
    for (const datum of record.data) {
      if (datum.value == null) continue;
      c.fields.set(datum.key, { value: datum.value, at });
      changed.push(datum.key);
      if (datum.key === 'Location') {
        const point = toPoint(datum.value);
        if (point) {
          c.track.push(point);
          if (c.track.length > MAX_TRACK_POINTS) c.track.splice(0, c.track.length - MAX_TRACK_POINTS);
        }
      }
    }
    c.connected = true;
    render(message.vin, false, changed);
    return;
  }
  if (message.topic === 'alerts') {
    for (const alert of record.alerts || []) {
      pushFeed(c, { kind: 'alert', title: alert.name, at: alert.startedAt || message.receivedAt, meta: `${alert.endedAt ? 'ended' : 'active'} · ${(alert.audiences || []).join(', ') || 'no audience'}` });
    }
  } else if (message.topic === 'errors') {
    for (const error of record.errors || []) {
      pushFeed(c, { kind: 'error', title: error.name, at: error.createdAt || message.receivedAt, meta: error.body || '' });
    }
  } else if (message.topic === 'connectivity') {
    c.connected = record.status === 'CONNECTED';
    pushFeed(c, { kind: 'connectivity', title: c.connected ? 'Connected' : 'Disconnected', at: message.receivedAt, meta: record.networkInterface || '' });
  }
  render(message.vin, true);
}

function mergeVehicles(list) {
  for (const v of list || []) {
    const c = car(v.vin);
    c.connected = v.connected;
    c.stale = v.stale;
    c.lastSeenAt = v.lastSeenAt;
  }
  if (Array.isArray(state.grant?.vins)) for (const vin of state.grant.vins) car(vin);
  if (!state.selected && state.cars.size > 0) state.selected = [...state.cars.keys()].sort()[0];
  renderList();
  renderDetail(true);
}

/** Which cars to follow: all of a small fleet (live list), otherwise the selected one. */
function follow() {
  const vins = [...state.cars.keys()];
  const wanted = new Set(vins.length <= FOLLOW_ALL_LIMIT ? vins : [state.selected].filter(Boolean));
  const add = [...wanted].filter((vin) => !state.subscribed.has(vin));
  const drop = [...state.subscribed].filter((vin) => !wanted.has(vin));
  if (drop.length) send({ type: 'unsubscribe', vins: drop });
  if (add.length) send({ type: 'subscribe', vins: add });
  for (const vin of drop) state.subscribed.delete(vin);
  for (const vin of add) state.subscribed.add(vin);
}

function pushFeed(c, entry) {
  c.feed.unshift(entry);
  if (c.feed.length > MAX_FEED) c.feed.length = MAX_FEED;
}

// ---------- values ----------

/** The set member of a Value: [memberName, value]. */
function member(value) {
  if (!value || typeof value !== 'object') return [null, value];
  for (const [key, v] of Object.entries(value)) if (v !== null && v !== undefined) return [key, v];
  return [null, null];
}

function numberOf(value) {
  const [key, v] = member(value);
  if (key === 'invalid') return null;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

function toPoint(value) {
  const [key, v] = member(value);
  if (key === 'locationValue' && v && typeof v.latitude === 'number') return [v.latitude, v.longitude];
  return null;
}

const ENUM_PREFIXES = ['ShiftState', 'DetailedChargeState', 'ChargeState', 'CableType', 'HvacPower', 'SentryModeState'];

function prettyEnum(text) {
  let s = String(text);
  for (const prefix of ENUM_PREFIXES) if (s.startsWith(prefix) && s.length > prefix.length) { s = s.slice(prefix.length); break; }
  return s.replace(/([a-z])([A-Z])/g, '$1 $2');
}

function formatValue(value) {
  const [key, v] = member(value);
  if (key === null) return '–';
  if (key === 'invalid') return 'unreadable';
  if (key === 'locationValue') return `${v.latitude.toFixed(5)}, ${v.longitude.toFixed(5)}`;
  if (key === 'doorValue') {
    const open = DOORS.filter(([k]) => v[k]).map(([, label]) => label);
    return open.length ? `open: ${open.join(', ')}` : 'all closed';
  }
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, '');
  if (typeof v === 'object') return JSON.stringify(v);
  if (key.endsWith('Value') && key !== 'stringValue' && typeof v === 'string') return prettyEnum(v);
  return String(v);
}

function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return new Date(iso).toLocaleDateString();
}

function statusOf(c) {
  if (c.connected && c.stale) return ['stale', 'Stale'];
  if (c.connected) return ['online', 'Connected'];
  return ['offline', 'Offline'];
}

// ---------- rendering ----------

function renderList() {
  const list = $('vehicle-list');
  const vins = [...state.cars.keys()].sort().filter((vin) => vin.includes(state.filter));
  $('vehicle-count').textContent = `${state.cars.size}`;
  list.replaceChildren(
    ...vins.map((vin) => {
      const c = state.cars.get(vin);
      const [kind, label] = statusOf(c);
      const soc = numberOf(c.fields.get('Soc')?.value);
      const speed = numberOf(c.fields.get('VehicleSpeed')?.value);
      const quick = [soc !== null ? `${Math.round(soc)}%` : null, speed ? `${Math.round(speed)} mph` : null].filter(Boolean).join(' · ');
      const button = el('button', { type: 'button' }, [
        el('span', { className: 'dot' }),
        el('span', { className: 'vin', textContent: vin }),
        el('span', { className: 'vehicle-quick', textContent: quick }),
        el('span', { className: 'vehicle-meta', textContent: `${label} · seen ${ago(c.lastSeenAt)}` }),
      ]);
      button.querySelector('.dot').dataset.state = kind;
      if (vin === state.selected) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => select(vin));
      return el('li', {}, [button]);
    }),
  );
}

function select(vin) {
  state.selected = vin;
  historyView.onSelect(vin);
  follow();
  renderList();
  renderDetail(true);
}

let listTimer = null;
function render(vin, full, changed = []) {
  // The list is cheap but not free: coalesce its redraws.
  if (!listTimer) listTimer = setTimeout(() => { listTimer = null; renderList(); }, 250);
  if (vin === state.selected) renderDetail(full, changed);
}

function renderDetail(full, changed = []) {
  const c = state.selected ? state.cars.get(state.selected) : null;
  $('empty-state').hidden = Boolean(c);
  $('vehicle-view').hidden = !c;
  if (!c) return;
  const [kind, label] = statusOf(c);
  $('vin-title').textContent = c.vin;
  $('vin-subtitle').textContent = `Last heard ${ago(c.lastSeenAt)}${c.lastSeenAt ? ` · ${new Date(c.lastSeenAt).toLocaleTimeString()}` : ''}`;
  const badge = $('vin-badge');
  badge.dataset.state = kind;
  badge.textContent = label;

  for (const node of document.querySelectorAll('#vehicle-view [data-field]')) {
    const known = c.fields.get(node.dataset.field);
    const valueNode = node.querySelector('[data-value]');
    if (valueNode) valueNode.textContent = known ? tileText(node.dataset.field, known.value) : '–';
    const whenNode = node.querySelector('[data-when]');
    if (whenNode) whenNode.textContent = known ? `changed ${ago(known.at)}` : 'no data yet';
    if (changed.includes(node.dataset.field) && node.classList.contains('tile')) flash(node);
  }
  const soc = numberOf(c.fields.get('Soc')?.value);
  const bar = $('soc-bar');
  bar.style.width = `${Math.max(0, Math.min(100, soc ?? 0))}%`;
  bar.classList.toggle('low', soc !== null && soc < 20);
  const power = numberOf(c.fields.get('ACChargingPower')?.value) ?? numberOf(c.fields.get('DCChargingPower')?.value);
  $('charge-power').textContent = power !== null ? `${power.toFixed(1)} kW` : '– kW';
  for (const tire of document.querySelectorAll('.tire')) {
    const bar = numberOf(c.fields.get(tire.dataset.field)?.value);
    tire.dataset.low = String(bar !== null && bar < 2.4);
  }
  const locked = member(c.fields.get('Locked')?.value)[1];
  $('lock-icon').dataset.locked = typeof locked === 'boolean' ? String(locked) : '';
  renderDoors(c);
  renderLocation(c);
  if (full || changed.length) renderFields(c, changed);
  renderFeed(c);
}

function tileText(field, value) {
  const n = numberOf(value);
  switch (field) {
    case 'VehicleSpeed': return n === null ? formatValue(value) : String(Math.round(n));
    case 'Soc': return n === null ? formatValue(value) : n.toFixed(1);
    case 'EstBatteryRange': return n === null ? formatValue(value) : String(Math.round(n));
    case 'Odometer': return n === null ? formatValue(value) : Math.round(n).toLocaleString();
    case 'InsideTemp': case 'OutsideTemp': return n === null ? formatValue(value) : n.toFixed(1);
    case 'TpmsPressureFl': case 'TpmsPressureFr': case 'TpmsPressureRl': case 'TpmsPressureRr': return n === null ? formatValue(value) : n.toFixed(2);
    case 'Gear': return formatValue(value).replace(/^Shift State/, '') || '–';
    case 'Locked': return member(value)[1] === true ? 'Locked' : member(value)[1] === false ? 'Unlocked' : formatValue(value);
    default: return formatValue(value);
  }
}

function flash(node) {
  node.classList.add('flash');
  setTimeout(() => node.classList.remove('flash'), 350);
}

function renderDoors(c) {
  const [key, doors] = member(c.fields.get('DoorState')?.value);
  const list = $('doors');
  if (key !== 'doorValue') {
    list.replaceChildren(el('li', { className: 'muted', textContent: 'No door data yet' }));
    return;
  }
  list.replaceChildren(
    ...DOORS.map(([k, label]) => {
      const item = el('li', {}, [el('span', { textContent: label }), el('span', { textContent: doors[k] ? 'open' : 'closed' })]);
      item.dataset.open = String(Boolean(doors[k]));
      return item;
    }),
  );
}

function renderLocation(c) {
  const last = c.track[c.track.length - 1];
  const heading = numberOf(c.fields.get('GpsHeading')?.value);
  $('coords').textContent = last ? `${last[0].toFixed(5)}°, ${last[1].toFixed(5)}°` : 'No position yet';
  $('heading').textContent = heading !== null ? `heading ${Math.round(heading)}°` : '';
  drawTrack($('track'), c.track, heading);
}

/** The track on a plain canvas: equirectangular around the track's centre, fitted with a margin. */
function drawTrack(canvas, track, heading) {
  const { g, width, height } = gridCanvas(canvas);
  if (track.length === 0) {
    g.fillStyle = '#8b97b0';
    g.font = '13px system-ui, sans-serif';
    g.textAlign = 'center';
    g.fillText('Waiting for a position…', width / 2, height / 2);
    return;
  }
  const { px, py, scale } = fitTrack(track, width, height);

  const gradient = g.createLinearGradient(0, 0, width, height);
  gradient.addColorStop(0, '#818cf8');
  gradient.addColorStop(1, '#38bdf8');
  g.strokeStyle = gradient;
  g.lineWidth = 3;
  g.lineJoin = 'round';
  g.lineCap = 'round';
  g.beginPath();
  for (let i = 0; i < track.length; i++) (i === 0 ? g.moveTo(px(i), py(i)) : g.lineTo(px(i), py(i)));
  g.stroke();

  g.fillStyle = '#8b97b0';
  g.beginPath();
  g.arc(px(0), py(0), 4, 0, Math.PI * 2);
  g.fill();

  const n = track.length - 1;
  g.save();
  g.translate(px(n), py(n));
  g.fillStyle = 'rgba(56,189,248,0.18)';
  g.beginPath();
  g.arc(0, 0, 14, 0, Math.PI * 2);
  g.fill();
  if (heading !== null) {
    g.rotate((heading * Math.PI) / 180);
    g.fillStyle = '#38bdf8';
    g.beginPath();
    g.moveTo(0, -10);
    g.lineTo(7, 8);
    g.lineTo(0, 4);
    g.lineTo(-7, 8);
    g.closePath();
    g.fill();
  } else {
    g.fillStyle = '#38bdf8';
    g.beginPath();
    g.arc(0, 0, 6, 0, Math.PI * 2);
    g.fill();
  }
  g.restore();

  // Scale bar: metres per pixel from degrees.
  const metresPerPixel = 111320 / scale;
  const barMetres = niceNumber(metresPerPixel * 100);
  const barPixels = barMetres / metresPerPixel;
  g.strokeStyle = '#8b97b0';
  g.lineWidth = 2;
  g.beginPath();
  g.moveTo(12, height - 14);
  g.lineTo(12 + barPixels, height - 14);
  g.stroke();
  g.fillStyle = '#8b97b0';
  g.font = '11px system-ui, sans-serif';
  g.textAlign = 'left';
  g.fillText(barMetres >= 1000 ? `${barMetres / 1000} km` : `${barMetres} m`, 12, height - 20);
}

function niceNumber(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  const f = x / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

function renderFields(c, changed) {
  const rows = [...c.fields.entries()].sort(([a], [b]) => a.localeCompare(b));
  $('field-count').textContent = `${rows.length}`;
  $('fields').replaceChildren(
    ...rows.map(([name, known]) => {
      const row = el('tr', {}, [el('td', { textContent: name }), el('td', { textContent: formatValue(known.value) }), el('td', { textContent: ago(known.at), title: known.at })]);
      if (changed.includes(name)) row.className = 'changed';
      return row;
    }),
  );
}

function renderFeed(c) {
  const feed = $('feed');
  if (c.feed.length === 0) {
    feed.replaceChildren(el('li', { className: 'muted', textContent: 'Nothing yet.' }));
    return;
  }
  feed.replaceChildren(
    ...c.feed.map((entry) => {
      const item = el('li', {}, [
        el('span', { className: 'feed-title', textContent: entry.title }),
        el('span', { className: 'feed-meta', textContent: [new Date(entry.at).toLocaleTimeString(), entry.meta].filter(Boolean).join(' · ') }),
      ]);
      item.dataset.kind = entry.kind;
      return item;
    }),
  );
}

// ---------- start ----------

$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  if (token) signIn(token);
});
$('sign-out').addEventListener('click', signOut);
$('vehicle-filter').addEventListener('input', (event) => {
  state.filter = event.target.value.trim().toUpperCase();
  renderList();
});
$('add-vin').addEventListener('submit', (event) => {
  event.preventDefault();
  const vin = $('add-vin-input').value.trim().toUpperCase();
  if (!/^[A-HJ-NPR-Z0-9]{17}$/.test(vin)) return;
  $('add-vin-input').value = '';
  car(vin);
  select(vin);
});
// Relative times age even when nothing arrives; the server's list refreshes connection states.
setInterval(() => {
  if (!state.token) return;
  renderList();
  renderDetail(false);
}, 5000);
setInterval(() => send({ type: 'vehicles' }), 15000);

// Charts, trips and charges, and the map (history.js, map.js): fed the same messages, asking through send().
const historyView = initHistory({ send, selected: () => state.selected });

const initial = takeTokenFromUrl() || sessionStorage.getItem(TOKEN_KEY);
if (initial) signIn(initial);
else probeTeslaSession().then((signedIn) => (signedIn ? signIn(COOKIE_SESSION) : showSignIn($('sign-in-error').textContent)));
