// Sign in with Tesla on the page: the button (when the server offers it), why a sign-in was refused,
// sign-out of the server-side session, and the pairing link + QR code for cars that have not
// streamed yet. The session lives in an HttpOnly cookie: this code never sees a Tesla token.

/** What app.js holds as its "token" for a cookie session: never sent anywhere, it only picks the mode. */
export const COOKIE_SESSION = 'cookie-session';

const $ = (id) => document.getElementById(id);

const REFUSAL_TEXT = {
  access_denied: 'You declined the request on Tesla\u2019s page, so nothing was shared. Sign in again to allow it.',
  missing_scope: 'Tesla did not grant access to vehicle data (the \u201cvehicle information\u201d permission). Sign in again and leave that permission ticked.',
  state_mismatch: 'This sign-in did not start in this browser (or was started twice). Start again from this page.',
  state_replayed: 'That sign-in link was already used. Start again from this page.',
  no_login_cookie: 'The sign-in took too long or started elsewhere. Start again from this page.',
  bad_code: 'Tesla did not accept the sign-in (the code was invalid or expired). Try again.',
  tesla_error: 'Tesla reported a problem with the sign-in. Try again.',
  tesla_unavailable: 'Tesla\u2019s sign-in service could not be reached. Try again in a minute.',
  vehicle_list_unavailable: 'Signed in, but Tesla\u2019s vehicle list could not be fetched. Try again in a minute.',
};

/** Reads (and removes) ?signin_error= from the address bar. */
function takeRefusal() {
  const url = new URL(location.href);
  const reason = url.searchParams.get('signin_error');
  if (reason === null) return null;
  url.searchParams.delete('signin_error');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  return reason;
}

/** Shows the Sign in with Tesla block when the server offers it; resolves true when this browser is signed in. */
export async function probeTeslaSession() {
  const refusal = takeRefusal();
  let status;
  try {
    const response = await fetch('/auth/status', { cache: 'no-store' });
    if (!response.ok) return false;
    status = await response.json();
  } catch {
    return false;
  }
  $('tesla-sign-in').hidden = false;
  $('tesla-sign-in-error').textContent = refusal === null ? '' : REFUSAL_TEXT[refusal] || `Sign-in refused: ${refusal}`;
  if (refusal !== null) $('tesla-sign-in-error').dataset.reason = refusal;
  if (status.signedIn) startPairing();
  return status.signedIn === true;
}

export async function teslaSignOut() {
  stopPairing();
  try {
    await fetch('/auth/logout', { method: 'POST', cache: 'no-store' });
  } catch {
    // the cookie is HttpOnly: if the server is unreachable it ends when it expires
  }
}

let pairingTimer = null;

function startPairing() {
  stopPairing();
  void showPairing();
  pairingTimer = setInterval(showPairing, 60000);
}

function stopPairing() {
  clearInterval(pairingTimer);
  pairingTimer = null;
  $('pairing').hidden = true;
}

async function showPairing() {
  let body;
  try {
    const response = await fetch('/auth/pairing', { cache: 'no-store' });
    if (!response.ok) return;
    body = await response.json();
  } catch {
    return;
  }
  const waiting = body.vehicles.filter((v) => !v.streaming).map((v) => v.vin);
  $('pairing').hidden = waiting.length === 0;
  $('pairing-vins').replaceChildren(...waiting.map((vin) => Object.assign(document.createElement('li'), { textContent: vin })));
  const link = $('pairing-link');
  link.href = body.url;
  link.textContent = body.url;
  $('pairing-qr').src = body.qr;
}
