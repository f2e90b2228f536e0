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

/** Requests are small JSON objects; anything bigger is not a dashboard. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** How long a token checked at /api/session (or at an upgrade) lets the next upgrade skip verification. */
const VERIFIED_GRANT_TTL_MS = 60_000;
const VERIFIED_GRANTS_MAX = 10_000;
/** setTimeout's ceiling; longer token lifetimes re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Dashboard sockets one token subject may hold when the listener is not told otherwise. */
const DEFAULT_MAX_SOCKETS_PER_SUBJECT = 16;

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

interface SocketData {
  grant: DashboardGrant;
  /** The sign-in session behind a cookie-authenticated socket; it closes when the session ends. */
  sessionId: string | null;
  session: DashboardSession | null;
  client: UwsDashboardClient | null;
  /** Cancels the token's expiry timer. */
  expiryTimer: (() => void) | null;
  /** Key of the per-subject socket count. */
  holder: string;
  /** Upgraded after an asynchronous check, in a cork of our own: `open` then runs inside that cork. */
  upgradedLater: boolean;
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
 * check and the `/dashboard` WebSocket. Tokens are verified at the upgrade, before the socket exists;
 * a refused upgrade is an HTTP 401 with a reason code. Records fan out through one uWS topic per VIN.
 */
export class DashboardListener implements VinPublisher {
  private readonly options: DashboardListenerOptions;
  private readonly tls: SslListener<DashboardTlsFiles>;
  private readonly clients = new Set<UwsDashboardClient>();
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
  }

  close(): void {
    this.tls.close();
  }

  private routes(app: TemplatedApp, generation: Generation): void {
    const { hub, metrics, logger } = this.options;
    const boundary = this.boundary;
    const maxPerHolder = this.options.maxSocketsPerSubject ?? DEFAULT_MAX_SOCKETS_PER_SUBJECT;
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
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
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
          if (known !== undefined && known.grant.expiresAt > this.now()) {
            const holder = holderOf(known.grant);
            if ((this.socketsPerHolder.get(holder) ?? 0) >= maxPerHolder) {
              this.refuse(res, new AuthError('too_many_sockets', `this token's holder already has ${maxPerHolder} dashboards open (DASHBOARD_MAX_SOCKETS_PER_SUBJECT)`), '429 Too Many Requests');
              return;
            }
            const data: SocketData = { grant: known.grant, sessionId: known.sessionId, session: null, client: null, expiryTimer: null, holder, upgradedLater: false };
            // Still inside uWS's call for this request, where the response is already corked: this cork only
            // tells uWS.js so, and the upgrade happens the way uWS expects (no warning, nothing re-read).
            res.cork(() => res.upgrade(data, key, protocol, extensions, context));
            return;
          }
          this.authenticate(token, cookie)
            .then(
              ({ grant, sessionId }) => {
                if (aborted) return;
                if (grant.expiresAt <= this.now()) {
                  this.refuse(res, new AuthError('expired', 'the token has expired'));
                  return;
                }
                const holder = holderOf(grant);
                if ((this.socketsPerHolder.get(holder) ?? 0) >= maxPerHolder) {
                  this.refuse(res, new AuthError('too_many_sockets', `this token's holder already has ${maxPerHolder} dashboards open (DASHBOARD_MAX_SOCKETS_PER_SUBJECT)`), '429 Too Many Requests');
                  return;
                }
                this.verified.put(credential, grant, sessionId);
                const data: SocketData = { grant, sessionId, session: null, client: null, expiryTimer: null, holder, upgradedLater: true };
                // Credentials not checked moments ago (a client that skipped /api/session): upgraded after the
                // check, in a cork of its own as uWS wants for every write outside its own call (no warning).
                res.cork(() => res.upgrade(data, key, protocol, extensions, context));
              },
              (error: unknown) => {
                if (aborted) return;
                const authError = error instanceof AuthError ? error : new AuthError('malformed_token', 'the token could not be checked');
                if (!(error instanceof AuthError)) logger.error({ err: error }, 'dashboard_auth_crashed');
                this.refuse(res, authError);
              },
            )
            .catch((error: unknown) => {
              boundary.caught('upgrade', error);
              if (!aborted) boundary.run('upgrade', failed(res));
            });
        }, () => {
          if (!aborted) failed(res)();
        });
      },

      open: (ws) => {
        boundary.run('open', () => {
          const data = ws.getUserData();
          const client = new UwsDashboardClient(ws, metrics, this.options.maxBackpressureBytes, data.grant.seesLocation);
          client.sessionId = data.sessionId;
          data.client = client;
          data.session = new DashboardSession(client, data.grant);
          this.clients.add(client);
          this.tls.opened(generation);
          this.socketsPerHolder.set(data.holder, (this.socketsPerHolder.get(data.holder) ?? 0) + 1);
          metrics.dashboardsConnected.set(this.clients.size);
          this.armExpiry(data);
          logger.info({ source: data.grant.source, subject: data.grant.subject, vins: data.grant.all ? '*' : data.grant.vins.size }, 'dashboard_connected');
          const session = data.session;
          if (!data.upgradedLater) {
            hub.opened(session);
            return;
          }
          // `open` runs inside the cork of an asynchronous upgrade: a send from here can make uWS end the
          // fresh socket when that cork is released (uNetworking/uWebSockets#1928), so the hello waits
          // for it. Requests wait too (the message handler defers them), so none is answered before it.
          setImmediate(this.boundary.wrap('deferred', () => {
            if (client.isOpen) hub.opened(session);
          }, () => client.close(CLOSE_INTERNAL_ERROR, 'internal error')));
        }, closeSocket(ws));
      },

      message: (ws, message, isBinary) => {
        boundary.run('message', () => {
          const data = ws.getUserData();
          if (data.session === null) return;
          if (isBinary) {
            metrics.dashboardRequests.inc({ type: 'any', result: 'malformed_message' });
            data.client?.send(JSON.stringify({ type: 'error', code: 'malformed_message', message: 'requests are JSON text frames' }));
            return;
          }
          // The ArrayBuffer is only valid during this call: copy it out before anything async.
          const text = Buffer.from(message).toString('utf8');
          const session = data.session;
          const client = data.client;
          // Handled after uWS's read returns, not in this call's microtasks: replies written while uSockets
          // is still decrypting this socket's input (a burst of requests overflowing the cork buffer) make
          // it discard the rest of that input, and the TLS stream breaks (seen: a subscribe flood, 1006).
          setImmediate(
            boundary.wrap('deferred', () => {
              hub.received(session, text).catch((error: unknown) => {
                boundary.caught('message', error);
                client?.close(CLOSE_INTERNAL_ERROR, 'internal error');
              });
            }, () => client?.close(CLOSE_INTERNAL_ERROR, 'internal error')),
          );
        }, closeSocket(ws));
      },

      dropped: (ws) => {
        // Past maxBackpressure: this dashboard cannot keep up. Cars and other dashboards must not wait for it.
        boundary.run('dropped', () => ws.getUserData().client?.drop(CLOSE_TOO_SLOW, 'too slow: messages could not be delivered', 'slow_consumer'));
      },

      close: (ws, code, message) => {
        boundary.run('close', () => {
          const data = ws.getUserData();
          const client = data.client;
          if (client === null) return;
          client.isOpen = false;
          // uWS ends a socket itself (1006, no close frame) for an oversize message, bad UTF-8, a protocol
          // error or inactivity, and says which in `message`; a peer that just vanished leaves it empty.
          if (client.dropReason === null && code === 1006 && message.byteLength > 0) client.dropReason = uwsDropReason(Buffer.from(message).toString('latin1'));
          this.clients.delete(client);
          this.tls.closed(generation);
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

  private armExpiry(data: SocketData): void {
    const remaining = data.grant.expiresAt - this.now();
    data.expiryTimer = this.clock.after(Math.max(0, Math.min(remaining, MAX_TIMER_MS)), this.boundary.wrap('timer', () => {
      data.expiryTimer = null;
      if (data.client === null || !data.client.isOpen) return;
      if (this.now() >= data.grant.expiresAt) {
        data.client.drop(CLOSE_TOKEN_EXPIRED, 'token expired', 'token_expired');
      } else {
        this.armExpiry(data);
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
