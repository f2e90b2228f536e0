import type { Logger } from 'pino';
import type { DashboardMetrics } from './dashboard-metrics.js';
import type { Generation } from '../uws/app-generations.js';
import { SslListener } from '../uws/ssl-listener.js';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type WebSocket } from '../uws/uws.js';
import type { DashboardGrant } from './dashboard-grant.js';
import { CLOSE_TOO_SLOW, DashboardSession, type DashboardClient, type DashboardHub, type VinPublisher } from './dashboard-hub.js';
import type { StaticAsset } from './static-assets.js';
import { AuthError, type AuthFailureReason, type TokenVerifier } from './token-verifier.js';
import { HandlerBoundary } from '../safety/handler-boundary.js';
import { isoTime } from './dashboard-protocol.js';
import { securityHeaders, type SecurityHeaderOptions } from './security-headers.js';
import { withoutLocation } from './location-filter.js';
import { VerifiedGrants } from './verified-grants.js';
import { wallClock, type Clock } from './clock.js';

export const DASHBOARD_PATH = '/dashboard';
export const SESSION_PATH = '/api/session';
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOKEN_EXPIRED = 4001;
export const CLOSE_SIGNED_OUT = 4003;
export const CLOSE_SERVICE_RESTART = 1012;
export const CLOSE_INTERNAL_ERROR = 1011;
/** A credential checked after the upgrade and refused: the reason code is the close reason. */
export const CLOSE_UNAUTHORIZED = 4401;
/** The token's holder already has DASHBOARD_MAX_SOCKETS_PER_SUBJECT dashboards open. */
export const CLOSE_TOO_MANY_SOCKETS = 4429;
export const CLOSE_POLICY_VIOLATION = 1008;

/** Requests are small JSON objects; anything bigger is not a dashboard. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** How long a token checked at /api/session (or at an upgrade) lets the next upgrade skip verification. */
const VERIFIED_GRANT_TTL_MS = 60_000;
const VERIFIED_GRANTS_MAX = 10_000;
/** setTimeout's ceiling; longer token lifetimes re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Dashboard sockets one token subject may hold when the listener is not told otherwise. */
const DEFAULT_MAX_SOCKETS_PER_SUBJECT = 16;
/**
 * Requests a socket may send while its credential is still being checked, and their bytes together
 * (one largest request): past either it is closed. A check can wait on Tesla or a key fetch for seconds.
 */
const HELD_REQUESTS_MAX = 16;
const HELD_BYTES_MAX = MAX_REQUEST_BYTES;

export interface DashboardListenerOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  keyPassphrase: string;
  /** Empty: only the page's own origin (and non-browser clients); `*`: any origin; else these plus our own. */
  allowedOrigins: readonly string[];
  maxBackpressureBytes: number;
  idleTimeoutSeconds?: number;
  /** Open sockets per token subject (DASHBOARD_MAX_SOCKETS_PER_SUBJECT). */
  maxSocketsPerSubject?: number;
  /** Extra CSP sources (map tiles, sign-in targets): see security-headers.ts. */
  headers?: SecurityHeaderOptions;
  verifier: TokenVerifier;
  hub: DashboardHub;
  assets: ReadonlyMap<string, StaticAsset>;
  metrics: DashboardMetrics;
  logger: Logger;
  /** Token expiry reads this clock (tests move it by hand); the wall clock by default. */
  clock?: Clock;
  /** Sign in with Tesla (tesla-login.ts): cookie sessions for requests without a token, and its routes. */
  cookieSessions?: CookieSessions | null;
}

export interface CookieSessions {
  grantFor(cookieHeader: string): Promise<{ grant: DashboardGrant; sessionId: string } | null>;
  routes(app: uWS.TemplatedApp): void;
}

/** What a certificate reload replaces. */
export type DashboardTlsFiles = Pick<DashboardListenerOptions, 'certFile' | 'keyFile' | 'keyPassphrase'>;

interface Authenticated {
  grant: DashboardGrant;
  sessionId: string | null;
}

interface SocketData {
  /** Null while the credential is checked (it was not checked moments ago): nothing flows until then. */
  grant: DashboardGrant | null;
  /** The sign-in session behind a cookie-authenticated socket; it closes when the session ends. */
  sessionId: string | null;
  session: DashboardSession | null;
  client: UwsDashboardClient | null;
  /** Cancels the token's expiry timer. */
  expiryTimer: (() => void) | null;
  /** Key of the per-subject socket count; empty until the socket is admitted. */
  holder: string;
  /** The check still running for this socket's credential. */
  check: Promise<Authenticated> | null;
  /** Requests sent while the check runs, in order (null: a binary frame), handled once admitted. */
  held: Array<string | null> | null;
  heldBytes: number;
  /** The socket closed (or is being closed): a check that ends later has nobody to admit. */
  gone: boolean;
}

/** Whose sockets count together: the token's subject, or (no `sub`) the set of VINs it grants. */
function holderOf(grant: DashboardGrant): string {
  if (grant.subject !== null) return `${grant.source}:sub:${grant.subject}`;
  const vins = grant.describeVins();
  return `${grant.source}:vins:${vins === '*' ? '*' : vins.join(',')}`;
}

function topicOf(vin: string): string {
  return `vin/${vin}`;
}

/** The VIN's topic for dashboards that may not see location: same records, location fields removed. */
function noLocationTopicOf(vin: string): string {
  return `vin-no-location/${vin}`;
}

class UwsDashboardClient implements DashboardClient {
  isOpen = true;
  /** Set once the server decided to drop it: the close handler then knows it was not the client's choice. */
  dropReason: string | null = null;
  sessionId: string | null = null;

  constructor(
    private readonly ws: WebSocket<SocketData>,
    private readonly metrics: DashboardMetrics,
    private readonly maxBackpressureBytes: number,
    private readonly seesLocation: boolean,
  ) {}

  send(message: string): void {
    if (!this.isOpen || this.dropReason !== null) return;
    const text = this.seesLocation ? message : withoutLocation(message);
    // Sends happen from promise callbacks too: cork so each is one TLS record write.
    this.ws.cork(() => {
      this.ws.send(text, false);
    });
    this.metrics.dashboardMessagesSent.inc();
  }

  joinVin(vin: string): void {
    if (this.isOpen) this.ws.subscribe(this.seesLocation ? topicOf(vin) : noLocationTopicOf(vin));
  }

  leaveVin(vin: string): void {
    if (this.isOpen) this.ws.unsubscribe(this.seesLocation ? topicOf(vin) : noLocationTopicOf(vin));
  }

  close(code: number, reason: string): void {
    this.drop(code, reason, 'closed_by_server');
  }

  /** End the socket with a close code. Deferred: this can be called from inside a uWS publish. */
  drop(code: number, reason: string, metricReason: string): void {
    if (!this.isOpen || this.dropReason !== null) return;
    this.dropReason = metricReason;
    setImmediate(() => {
      if (!this.isOpen) return;
      try {
        this.closeNow(code, reason);
      } catch {
        // Closed meanwhile by the peer: nothing left to end (and a throw here would end the process).
      }
    });
  }


  private closeNow(code: number, reason: string): void {
    // uWS drops a close frame that would queue past maxBackpressure, then holds the full buffer until
    // its 15 s close timeout: a dashboard that stopped reading would never see the code anyway, so
    // cut it at once and free the buffer (it sees 1006; the metric still says why).
    if (this.ws.getBufferedAmount() >= this.maxBackpressureBytes) this.ws.close();
    else this.ws.end(code, reason);
  }
}

/**
 * The dashboard listener: a uWS SSLApp (server certificate only) serving the web page, a session
 * check and the `/dashboard` WebSocket. A token checked moments ago opens the socket at once; any other
 * is checked right after the upgrade, and the socket gets nothing until it is admitted or closed with
 * 4401 and the reason code. What needs no key to refuse gets an HTTP 401 at the upgrade itself.
 * Records fan out through one uWS topic per VIN.
 */
export class DashboardListener implements VinPublisher {
  private readonly options: DashboardListenerOptions;
  private readonly tls: SslListener<DashboardTlsFiles>;
  private readonly clients = new Set<UwsDashboardClient>();
  /** Sockets whose credential is still being checked: not clients yet, but closed at shutdown too. */
  private readonly checking = new Set<WebSocket<SocketData>>();
  private readonly verified: VerifiedGrants;
  private readonly clock: Clock;
  private readonly now: () => number;
  private readonly boundary: HandlerBoundary;
  private readonly headers: Array<[string, string]>;
  private readonly socketsPerHolder = new Map<string, number>();

  constructor(options: DashboardListenerOptions) {
    this.options = options;
    this.clock = options.clock ?? wallClock;
    this.now = () => this.clock.now();
    this.boundary = new HandlerBoundary('dashboard', options.metrics, options.logger);
    this.headers = securityHeaders(options.headers);
    this.verified = new VerifiedGrants(VERIFIED_GRANT_TTL_MS, VERIFIED_GRANTS_MAX, this.now);
    this.tls = new SslListener<DashboardTlsFiles>({
      host: options.host,
      port: options.port,
      what: 'dashboard listener',
      routes: (app, generation) => this.routes(app, generation),
    }, options);
  }

  private get draining(): boolean {
    return this.tls.draining;
  }

  async listen(): Promise<number> {
    return this.tls.listen();
  }

  /** New certificate and key for new handshakes; open dashboards stay on their app (see VehicleListener.reload). */
  async reload(files: DashboardTlsFiles, probe: (port: number) => Promise<string[]>): Promise<string[]> {
    return this.tls.reload(files, probe);
  }

  get openConnections(): number {
    return this.clients.size;
  }

  /**
   * `message` as text, or as UTF-8 bytes (sent as they are: no copy to UTF-8 per publish) with `text`
   * the same message as a string, which the location filter reads.
   */
  publish(vin: string, message: string | Uint8Array, text: string = message as string): void {
    const topic = topicOf(vin);
    const limited = noLocationTopicOf(vin);
    // Topics belong to an app: dashboards that came in before a certificate reload are on an older one.
    const generations = this.tls.live;
    for (let i = 0; i < generations.length; i++) {
      const app = generations[i]!.app;
      if (app.publish(topic, message, false)) this.options.metrics.dashboardMessagesSent.inc(app.numSubscribers(topic));
      // Filtered once per message, and only while some location-less dashboard watches this VIN.
      const subscribers = app.numSubscribers(limited);
      if (subscribers === 0) continue;
      const filtered = withoutLocation(text);
      if (app.publish(limited, filtered === text ? message : filtered, false)) this.options.metrics.dashboardMessagesSent.inc(subscribers);
    }
  }

  stopAccepting(): void {
    this.tls.stopAccepting();
  }

  /** Close every dashboard with "going away": the page reconnects with backoff. */
  closeAll(): void {
    for (const client of [...this.clients]) client.drop(CLOSE_GOING_AWAY, 'server shutting down', 'shutdown');
    const checking = [...this.checking];
    this.checking.clear();
    setImmediate(() => {
      for (const ws of checking) endQuietly(ws, CLOSE_GOING_AWAY, 'server shutting down');
    });
  }

  close(): void {
    this.tls.close();
  }

  private routes(app: TemplatedApp, generation: Generation): void {
    const { hub, metrics, logger } = this.options;
    const boundary = this.boundary;
    /** A request whose handler threw: answered 500 if it can still be answered at all. */
    const failed = (res: HttpResponse) => () => {
      res.cork(() => {
        res.writeStatus('500 Internal Server Error');
        this.writeCommonHeaders(res, 'application/json');
        res.end(JSON.stringify({ error: 'internal_error', message: 'the request could not be handled' }));
      });
    };
    const closeSocket = (ws: WebSocket<SocketData>) => () => ws.end(CLOSE_INTERNAL_ERROR, 'internal error');

    app.ws<SocketData>(DASHBOARD_PATH, {
      maxPayloadLength: MAX_REQUEST_BYTES,
      idleTimeout: this.options.idleTimeoutSeconds ?? 60,
      sendPingsAutomatically: true,
      maxBackpressure: this.options.maxBackpressureBytes,
      // We close ourselves from `dropped`, with our own close code and a metric.
      closeOnBackpressureLimit: false,
      compression: uWS.DISABLED,

      upgrade: (res, req, context) => {
        boundary.run('upgrade', () => {
          const key = req.getHeader('sec-websocket-key');
          const protocol = req.getHeader('sec-websocket-protocol');
          const extensions = req.getHeader('sec-websocket-extensions');
          const origin = req.getHeader('origin');
          const host = req.getHeader('host');
          const token = bearerToken(req) ?? req.getQuery('access_token') ?? null;
          const cookie = req.getHeader('cookie');
          if (this.draining) {
            res.cork(() => res.writeStatus('503 Service Unavailable').end('shutting down\n'));
            return;
          }
          if (!originAllowed(origin, host, this.options.allowedOrigins)) {
            this.refuse(res, new AuthError('origin_not_allowed', 'this origin may not open the dashboard socket'), '403 Forbidden');
            return;
          }
          const credential = token ?? (cookie !== '' ? cookie : null);
          const known = this.verified.get(credential);
          let data: SocketData;
          // VerifiedGrants forgets a grant at its token's expiry: a known one is never expired.
          if (known !== undefined) {
            const holder = holderOf(known.grant);
            if (this.holderIsFull(holder)) {
              this.refuse(res, this.tooManySockets(), '429 Too Many Requests');
              return;
            }
            data = { grant: known.grant, sessionId: known.sessionId, session: null, client: null, expiryTimer: null, holder, check: null, held: null, heldBytes: 0, gone: false };
          } else {
            const refusal = this.precheck(token, cookie);
            if (refusal !== null) {
              this.refuse(res, refusal);
              return;
            }
            const check = this.authenticate(token, cookie).then((found) => {
              this.verified.put(credential, found.grant, found.sessionId);
              return found;
            });
            // `open` takes the outcome; should the socket never open, a refusal is not an unhandled rejection.
            check.catch(() => {});
            data = { grant: null, sessionId: null, session: null, client: null, expiryTimer: null, holder: '', check, held: [], heldBytes: 0, gone: false };
          }
          // Always upgraded here, inside uWS's call for this request (the response is already corked, so
          // this cork only tells uWS.js so). A credential that needs a key check is checked after the
          // upgrade, not before: uWS's cork() can end a socket upgraded later, from a promise
          // (uNetworking/uWebSockets#1928, fixed upstream by #1929, not in the build we can install).
          res.cork(() => res.upgrade(data, key, protocol, extensions, context));
        }, failed(res));
      },

      open: (ws) => {
        boundary.run('open', () => {
          const data = ws.getUserData();
          this.tls.opened(generation);
          if (data.check === null) {
            this.admit(ws, data);
            return;
          }
          this.checking.add(ws);
          data.check.then(
            ({ grant, sessionId }) => {
              boundary.run('deferred', () => this.checked(ws, data, grant, sessionId), () => this.refuseOpen(ws, data, new AuthError('malformed_token', 'the token could not be checked')));
            },
            (error: unknown) => {
              if (!(error instanceof AuthError)) logger.error({ err: error }, 'dashboard_auth_crashed');
              this.refuseOpen(ws, data, error instanceof AuthError ? error : new AuthError('malformed_token', 'the token could not be checked'));
            },
          );
        }, closeSocket(ws));
      },

      message: (ws, message, isBinary) => {
        boundary.run('message', () => {
          const data = ws.getUserData();
          // The ArrayBuffer is only valid during this call: copy it out before anything async.
          const text = isBinary ? null : Buffer.from(message).toString('utf8');
          const held = data.held;
          if (held !== null) {
            // The credential is still being checked: keep the request for when (and if) it is admitted.
            data.heldBytes += message.byteLength;
            if (held.length >= HELD_REQUESTS_MAX || data.heldBytes > HELD_BYTES_MAX) {
              data.held = null;
              // Going: a check that ends before the close completes must not admit it.
              data.gone = true;
              this.checking.delete(ws);
              ws.end(CLOSE_POLICY_VIOLATION, `more than ${HELD_REQUESTS_MAX} requests or ${HELD_BYTES_MAX} bytes before the token was checked`);
              return;
            }
            held.push(text);
            return;
          }
          if (data.session !== null) this.received(data, text);
        }, closeSocket(ws));
      },

      dropped: (ws) => {
        // Past maxBackpressure: this dashboard cannot keep up. Cars and other dashboards must not wait for it.
        boundary.run('dropped', () => ws.getUserData().client?.drop(CLOSE_TOO_SLOW, 'too slow: messages could not be delivered', 'slow_consumer'));
      },

      close: (ws, code, message) => {
        boundary.run('close', () => {
          const data = ws.getUserData();
          data.gone = true;
          data.held = null;
          this.tls.closed(generation);
          this.checking.delete(ws);
          const client = data.client;
          if (client === null) return;
          client.isOpen = false;
          // uWS ends a socket itself (1006, no close frame) for an oversize message, bad UTF-8, a protocol
          // error or inactivity, and says which in `message`; a peer that just vanished leaves it empty.
          if (client.dropReason === null && code === 1006 && message.byteLength > 0) client.dropReason = uwsDropReason(Buffer.from(message).toString('latin1'));
          this.clients.delete(client);
          const held = (this.socketsPerHolder.get(data.holder) ?? 1) - 1;
          if (held <= 0) this.socketsPerHolder.delete(data.holder);
          else this.socketsPerHolder.set(data.holder, held);
          metrics.dashboardsConnected.set(this.clients.size);
          if (data.expiryTimer !== null) data.expiryTimer();
          if (client.dropReason !== null) metrics.dashboardsDropped.inc({ reason: client.dropReason });
          if (data.session !== null) hub.closed(data.session);
          logger.info({ code, droppedFor: client.dropReason }, 'dashboard_disconnected');
        });
      },
    });

    app.get(SESSION_PATH, (res, req) => {
      // The page checks its token here first: a browser cannot read why a WebSocket upgrade failed.
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      boundary.run('http', () => {
        const token = bearerToken(req);
        const cookie = req.getHeader('cookie');
        this.authenticate(token, cookie)
          .then(
            ({ grant, sessionId }) => {
              if (aborted) return;
              // The page opens the socket right after this check: its upgrade then needs no second one.
              this.verified.put(token ?? (cookie !== '' ? cookie : null), grant, sessionId);
              const body = JSON.stringify({ vins: grant.describeVins(), expiresAt: isoTime(grant.expiresAt), subject: grant.subject, location: grant.seesLocation });
              res.cork(() => {
                res.writeStatus('200 OK');
                this.writeCommonHeaders(res, 'application/json');
                res.end(body);
              });
            },
            (error: unknown) => {
              if (aborted) return;
              this.refuse(res, error instanceof AuthError ? error : new AuthError('malformed_token', 'the token could not be checked'));
            },
          )
          .catch((error: unknown) => {
            boundary.caught('http', error);
            if (!aborted) boundary.run('http', failed(res));
          });
      }, () => {
        if (!aborted) failed(res)();
      });
    });

    this.options.cookieSessions?.routes(app);

    app.get('/healthz', (res) => {
      boundary.run('http', () => res.cork(() => res.writeHeader('Content-Type', 'text/plain').end('ok\n')), failed(res));
    });

    // uWS passes a GET without an upgrade on to the next route; a GET route beats `any`, so both are named.
    app.get(DASHBOARD_PATH, (res) => {
      boundary.run('http', () => this.upgradeRequired(res), failed(res));
    });
    app.any(DASHBOARD_PATH, (res) => {
      boundary.run('http', () => this.upgradeRequired(res), failed(res));
    });

    app.get('/*', (res, req) => {
      boundary.run('http', () => {
        const asset = this.options.assets.get(req.getUrl());
        res.cork(() => {
          if (asset === undefined) {
            res.writeStatus('404 Not Found');
            this.writeCommonHeaders(res, 'text/plain; charset=utf-8');
            res.end('not found\n');
            return;
          }
          res.writeStatus('200 OK');
          this.writeCommonHeaders(res, asset.contentType);
          res.end(asset.body);
        });
      }, failed(res));
    });

    app.any('/*', (res) => {
      boundary.run('http', () => res.cork(() => {
        res.writeStatus('405 Method Not Allowed');
        this.writeCommonHeaders(res, 'text/plain; charset=utf-8');
        res.end();
      }), failed(res));
    });
  }

  /** `/dashboard` without a WebSocket upgrade (docs/DASHBOARD-PROTOCOL.md). */
  private upgradeRequired(res: HttpResponse): void {
    res.cork(() => {
      res.writeStatus('426 Upgrade Required');
      this.writeCommonHeaders(res, 'text/plain; charset=utf-8');
      res.writeHeader('Upgrade', 'websocket');
      res.end('the dashboard socket needs a WebSocket upgrade\n');
    });
  }

  private writeCommonHeaders(res: HttpResponse, contentType: string): void {
    res.writeHeader('Content-Type', contentType);
    for (const [name, value] of this.headers) res.writeHeader(name, value);
  }

  /** A token when one is presented (the JWT modes); otherwise the sign-in session cookie, if any. */
  private async authenticate(token: string | null, cookie: string): Promise<{ grant: DashboardGrant; sessionId: string | null }> {
    const sessions = this.options.cookieSessions ?? null;
    if (token === null && sessions !== null && cookie !== '') {
      const found = await sessions.grantFor(cookie);
      if (found !== null) return found;
    }
    return { grant: await this.options.verifier.verify(token), sessionId: null };
  }

  /** What refuses a credential before any key is consulted (no credential, not a JWT, an algorithm not accepted). */
  private precheck(token: string | null, cookie: string): AuthError | null {
    if (token === null && this.options.cookieSessions != null && cookie !== '') return null;
    return this.options.verifier.precheck(token);
  }

  private get maxPerHolder(): number {
    return this.options.maxSocketsPerSubject ?? DEFAULT_MAX_SOCKETS_PER_SUBJECT;
  }

  private holderIsFull(holder: string): boolean {
    return (this.socketsPerHolder.get(holder) ?? 0) >= this.maxPerHolder;
  }

  private tooManySockets(): AuthError {
    return new AuthError('too_many_sockets', `this token's holder already has ${this.maxPerHolder} dashboards open (DASHBOARD_MAX_SOCKETS_PER_SUBJECT)`);
  }

  /** The check of a socket's credential ended well: admit it, unless it went meanwhile or may not stay. */
  private checked(ws: WebSocket<SocketData>, data: SocketData, grant: DashboardGrant, sessionId: string | null): void {
    if (data.gone) return;
    this.checking.delete(ws);
    if (this.draining) {
      endQuietly(ws, CLOSE_GOING_AWAY, 'server shutting down');
      return;
    }
    if (grant.expiresAt <= this.now()) {
      this.refuseOpen(ws, data, new AuthError('expired', 'the token has expired'));
      return;
    }
    const holder = holderOf(grant);
    if (this.holderIsFull(holder)) {
      this.refuseOpen(ws, data, this.tooManySockets(), CLOSE_TOO_MANY_SOCKETS);
      return;
    }
    data.grant = grant;
    data.sessionId = sessionId;
    data.holder = holder;
    data.check = null;
    this.admit(ws, data);
  }

  /** A socket with a good credential becomes a dashboard: hello, then the requests it sent meanwhile. */
  private admit(ws: WebSocket<SocketData>, data: SocketData): void {
    const { hub, metrics, logger } = this.options;
    const grant = data.grant as DashboardGrant;
    const client = new UwsDashboardClient(ws, metrics, this.options.maxBackpressureBytes, grant.seesLocation);
    client.sessionId = data.sessionId;
    data.client = client;
    const session = new DashboardSession(client, grant);
    data.session = session;
    this.clients.add(client);
    this.socketsPerHolder.set(data.holder, (this.socketsPerHolder.get(data.holder) ?? 0) + 1);
    metrics.dashboardsConnected.set(this.clients.size);
    this.armExpiry(data, grant);
    logger.info({ source: grant.source, subject: grant.subject, vins: grant.all ? '*' : grant.vins.size }, 'dashboard_connected');
    hub.opened(session);
    const held = data.held;
    data.held = null;
    if (held !== null) for (const text of held) this.received(data, text);
  }

  /** One request of an admitted socket (null: a binary frame). */
  private received(data: SocketData, text: string | null): void {
    const { hub, metrics } = this.options;
    const session = data.session as DashboardSession;
    const client = data.client as UwsDashboardClient;
    if (text === null) {
      metrics.dashboardRequests.inc({ type: 'any', result: 'malformed_message' });
      client.send(JSON.stringify({ type: 'error', code: 'malformed_message', message: 'requests are JSON text frames' }));
      return;
    }
    // Handled after uWS's read returns, not in this call's microtasks: replies written while uSockets
    // is still decrypting this socket's input (a burst of requests overflowing the cork buffer) make
    // it discard the rest of that input, and the TLS stream breaks (seen: a subscribe flood, 1006).
    setImmediate(
      this.boundary.wrap('deferred', () => {
        hub.received(session, text).catch((error: unknown) => {
          this.boundary.caught('message', error);
          client.close(CLOSE_INTERNAL_ERROR, 'internal error');
        });
      }, () => client.close(CLOSE_INTERNAL_ERROR, 'internal error')),
    );
  }

  /** A credential refused after the upgrade: counted like a refused upgrade, the reason code as close reason. */
  private refuseOpen(ws: WebSocket<SocketData>, data: SocketData, error: AuthError, code = CLOSE_UNAUTHORIZED): void {
    this.checking.delete(ws);
    if (data.gone) return;
    data.held = null;
    data.check = null;
    this.options.metrics.dashboardAuthFailures.inc({ reason: error.reason });
    this.options.logger.warn({ reason: error.reason, after: 'upgrade' }, 'dashboard_refused');
    endQuietly(ws, code, error.reason);
  }

  /**
   * Close the sockets of a sign-in session that ended (signed out, revoked, expired): 4003. When the
   * session only lost cars, 1012 instead: the page reconnects and gets a grant without them.
   */
  endSession(sessionId: string, reason: string): void {
    this.verified.dropSession(sessionId);
    for (const client of this.clients) {
      if (client.sessionId !== sessionId) continue;
      if (reason === 'vehicles_changed') client.drop(CLOSE_SERVICE_RESTART, 'vehicle list changed', 'vehicles_changed');
      else client.drop(CLOSE_SIGNED_OUT, reason === 'signed_out' ? 'signed out' : 'session ended', 'session_ended');
    }
  }

  private armExpiry(data: SocketData, grant: DashboardGrant): void {
    const remaining = grant.expiresAt - this.now();
    data.expiryTimer = this.clock.after(Math.max(0, Math.min(remaining, MAX_TIMER_MS)), this.boundary.wrap('timer', () => {
      data.expiryTimer = null;
      if (data.client === null || !data.client.isOpen) return;
      if (this.now() >= grant.expiresAt) {
        data.client.drop(CLOSE_TOKEN_EXPIRED, 'token expired', 'token_expired');
      } else {
        this.armExpiry(data, grant);
      }
    }));
  }

  private refuse(res: HttpResponse, error: AuthError, status = '401 Unauthorized'): void {
    const reason: AuthFailureReason = error.reason;
    this.options.metrics.dashboardAuthFailures.inc({ reason });
    // The reason and our own message only: never the token, never the URL that may carry it.
    this.options.logger.warn({ reason }, 'dashboard_refused');
    res.cork(() => {
      res.writeStatus(status);
      this.writeCommonHeaders(res, 'application/json');
      if (status.startsWith('401')) res.writeHeader('WWW-Authenticate', `Bearer error="invalid_token", error_description="${reason}"`);
      res.end(JSON.stringify({ error: status.startsWith('401') ? 'unauthorized' : status.startsWith('429') ? 'too_many_requests' : 'forbidden', reason, message: error.message }));
    });
  }
}

/** Ends a socket that may have closed meanwhile (a throw here, outside any handler, would end the process). */
function endQuietly(ws: WebSocket<SocketData>, code: number, reason: string): void {
  try {
    ws.end(code, reason);
  } catch {
    // Already closed by the peer.
  }
}

/** uWS's own close messages to a metric label: a fixed, small set. */
function uwsDropReason(message: string): string {
  if (message.includes('too big')) return 'message_too_big';
  if (message.includes('UTF-8')) return 'invalid_utf8';
  if (message.includes('inactivity')) return 'idle_timeout';
  return 'protocol_error';
}

function bearerToken(req: HttpRequest): string | null {
  const header = req.getHeader('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match === null ? null : match[1]!;
}

/**
 * Browsers always send Origin on a WebSocket upgrade, so a page on another site is refused unless
 * listed; clients without Origin are not browsers and a cross-site page cannot make them, so the token
 * alone decides for them. The page's own origin (https + the Host it asked for) is always allowed.
 */
export function originAllowed(origin: string, host: string, allowed: readonly string[]): boolean {
  if (origin === '') return true;
  if (allowed.includes('*')) return true;
  let normalised: string;
  try {
    normalised = new URL(origin).origin;
  } catch {
    return false;
  }
  if (allowed.includes(normalised)) return true;
  if (host === '') return false;
  try {
    return new URL(`https://${host}`).origin === normalised;
  } catch {
    return false;
  }
}
