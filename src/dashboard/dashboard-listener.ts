import type { Logger } from 'pino';
import type { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { AppGenerations, stageAndPromote, type Generation } from '../tls/app-generations.js';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type WebSocket } from '../vehicle/uws.js';
import type { DashboardGrant } from './dashboard-grant.js';
import { CLOSE_TOO_SLOW, DashboardSession, type DashboardClient, type DashboardHub, type VinPublisher } from './dashboard-hub.js';
import type { StaticAsset } from './static-assets.js';
import { AuthError, type AuthFailureReason, type TokenVerifier } from './token-verifier.js';
import { VerifiedGrants } from './verified-grants.js';

export const DASHBOARD_PATH = '/dashboard';
export const SESSION_PATH = '/api/session';
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOKEN_EXPIRED = 4001;

/** Requests are small JSON objects; anything bigger is not a dashboard. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** How long a token checked at /api/session (or at an upgrade) lets the next upgrade skip verification. */
const VERIFIED_GRANT_TTL_MS = 60_000;
const VERIFIED_GRANTS_MAX = 10_000;
/** setTimeout's ceiling; longer token lifetimes re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const SECURITY_HEADERS: Array<[string, string]> = [
  ['Content-Security-Policy', "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"],
  ['X-Content-Type-Options', 'nosniff'],
  // The page may be opened with ?token=...: never let that URL leak to another site.
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'DENY'],
  ['Cache-Control', 'no-store'],
];

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
  verifier: TokenVerifier;
  hub: DashboardHub;
  assets: ReadonlyMap<string, StaticAsset>;
  metrics: TelemetryMetrics;
  logger: Logger;
  now?: () => number;
}

/** What a certificate reload replaces. */
export type DashboardTlsFiles = Pick<DashboardListenerOptions, 'certFile' | 'keyFile' | 'keyPassphrase'>;

interface SocketData {
  grant: DashboardGrant;
  session: DashboardSession | null;
  client: UwsDashboardClient | null;
  expiryTimer: NodeJS.Timeout | null;
}

function topicOf(vin: string): string {
  return `vin/${vin}`;
}

class UwsDashboardClient implements DashboardClient {
  isOpen = true;
  /** Set once the server decided to drop it: the close handler then knows it was not the client's choice. */
  dropReason: string | null = null;

  constructor(
    private readonly ws: WebSocket<SocketData>,
    private readonly metrics: TelemetryMetrics,
    private readonly maxBackpressureBytes: number,
  ) {}

  send(message: string): void {
    if (!this.isOpen || this.dropReason !== null) return;
    // Sends happen from promise callbacks too: cork so each is one TLS record write.
    this.ws.cork(() => {
      this.ws.send(message, false);
    });
    this.metrics.dashboardMessagesSent.inc();
  }

  joinVin(vin: string): void {
    if (this.isOpen) this.ws.subscribe(topicOf(vin));
  }

  leaveVin(vin: string): void {
    if (this.isOpen) this.ws.unsubscribe(topicOf(vin));
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
      // uWS drops a close frame that would queue past maxBackpressure, then holds the full buffer until
      // its 15 s close timeout: a dashboard that stopped reading would never see the code anyway, so
      // cut it at once and free the buffer (it sees 1006; the metric still says why).
      if (this.ws.getBufferedAmount() >= this.maxBackpressureBytes) this.ws.close();
      else this.ws.end(code, reason);
    });
  }
}

/**
 * The dashboard listener: a uWS SSLApp (server certificate only) serving the web page, a session
 * check and the `/dashboard` WebSocket. Tokens are verified at the upgrade, before the socket exists;
 * a refused upgrade is an HTTP 401 with a reason code. Records fan out through one uWS topic per VIN.
 */
export class DashboardListener implements VinPublisher {
  private readonly options: DashboardListenerOptions;
  private readonly generations: AppGenerations;
  private readonly clients = new Set<UwsDashboardClient>();
  private readonly verified: VerifiedGrants;
  private readonly now: () => number;
  private draining = false;

  constructor(options: DashboardListenerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.verified = new VerifiedGrants(VERIFIED_GRANT_TTL_MS, VERIFIED_GRANTS_MAX, this.now);
    this.generations = new AppGenerations(options.host, options.port, 'dashboard listener');
    const app = this.createApp(options);
    this.routes(app, this.generations.add(app));
  }

  private createApp(files: DashboardTlsFiles): TemplatedApp {
    return uWS.SSLApp({
      cert_file_name: files.certFile,
      key_file_name: files.keyFile,
      ...(files.keyPassphrase ? { passphrase: files.keyPassphrase } : {}),
    });
  }

  async listen(): Promise<number> {
    return this.generations.listen();
  }

  /** New certificate and key for new handshakes; open dashboards stay on their app (see VehicleListener.reload). */
  async reload(files: DashboardTlsFiles, probe: (port: number) => Promise<string[]>): Promise<string[]> {
    if (this.draining) return ['the listener is shutting down'];
    return stageAndPromote(this.generations, this.createApp(files), this.options.host, probe, (app, generation) => this.routes(app, generation));
  }

  get openConnections(): number {
    return this.clients.size;
  }

  publish(vin: string, message: string): void {
    const topic = topicOf(vin);
    // Topics belong to an app: dashboards that came in before a certificate reload are on an older one.
    const generations = this.generations.live;
    for (let i = 0; i < generations.length; i++) {
      const app = generations[i].app;
      if (app.publish(topic, message, false)) this.options.metrics.dashboardMessagesSent.inc(app.numSubscribers(topic));
    }
  }

  stopAccepting(): void {
    this.draining = true;
    this.generations.stopAccepting();
  }

  /** Close every dashboard with "going away": the page reconnects with backoff. */
  closeAll(): void {
    for (const client of [...this.clients]) client.drop(CLOSE_GOING_AWAY, 'server shutting down', 'shutdown');
  }

  close(): void {
    this.stopAccepting();
    this.generations.closeAll();
  }

  private routes(app: TemplatedApp, generation: Generation): void {
    const { hub, metrics, logger, verifier } = this.options;

    app.ws<SocketData>(DASHBOARD_PATH, {
      maxPayloadLength: MAX_REQUEST_BYTES,
      idleTimeout: this.options.idleTimeoutSeconds ?? 60,
      sendPingsAutomatically: true,
      maxBackpressure: this.options.maxBackpressureBytes,
      // We close ourselves from `dropped`, with our own close code and a metric.
      closeOnBackpressureLimit: false,
      compression: uWS.DISABLED,

      upgrade: (res, req, context) => {
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const origin = req.getHeader('origin');
        const host = req.getHeader('host');
        const token = bearerToken(req) ?? req.getQuery('access_token') ?? null;
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        if (this.draining) {
          res.cork(() => res.writeStatus('503 Service Unavailable').end('shutting down\n'));
          return;
        }
        if (!originAllowed(origin, host, this.options.allowedOrigins)) {
          this.refuse(res, new AuthError('origin_not_allowed', 'this origin may not open the dashboard socket'), '403 Forbidden');
          return;
        }
        const known = this.verified.get(token);
        if (known !== undefined && known.expiresAt > this.now()) {
          const data: SocketData = { grant: known, session: null, client: null, expiryTimer: null };
          // Still inside uWS's call for this request, where the response is already corked: this cork only
          // tells uWS.js so, and the upgrade happens the way uWS expects (no warning, nothing re-read).
          res.cork(() => res.upgrade(data, key, protocol, extensions, context));
          return;
        }
        verifier.verify(token).then(
          (grant) => {
            if (aborted) return;
            if (grant.expiresAt <= this.now()) {
              this.refuse(res, new AuthError('expired', 'the token has expired'));
              return;
            }
            this.verified.put(token, grant);
            const data: SocketData = { grant, session: null, client: null, expiryTimer: null };
            // A token not checked moments ago (a client that skipped /api/session): upgraded after the
            // verification, outside uWS's call. Not inside res.cork: after a callback uWS's
            // HttpResponse::cork tells an upgraded socket from the HTTP one by its address, and the upgrade
            // reallocates the socket, sometimes in place. Then cork reads the new WebSocket's memory as
            // HTTP state and, depending on what lies there, shuts the fresh socket (1006 right after
            // `hello`). Uncorked, the 101 goes out in a few small writes and uWS.js prints a cork warning;
            // the socket itself is sound (the `open` handler corks its own sends). Browsers never take this
            // path: the page checks its token first, which lands it in `verified`.
            res.upgrade(data, key, protocol, extensions, context);
          },
          (error: unknown) => {
            if (aborted) return;
            const authError = error instanceof AuthError ? error : new AuthError('malformed_token', 'the token could not be checked');
            if (!(error instanceof AuthError)) logger.error({ err: error }, 'dashboard_auth_crashed');
            this.refuse(res, authError);
          },
        );
      },

      open: (ws) => {
        const data = ws.getUserData();
        const client = new UwsDashboardClient(ws, metrics, this.options.maxBackpressureBytes);
        data.client = client;
        data.session = new DashboardSession(client, data.grant);
        this.clients.add(client);
        this.generations.opened(generation);
        metrics.dashboardsConnected.set(this.clients.size);
        this.armExpiry(data);
        logger.info({ source: data.grant.source, subject: data.grant.subject, vins: data.grant.all ? '*' : data.grant.vins.size }, 'dashboard_connected');
        hub.opened(data.session);
      },

      message: (ws, message, isBinary) => {
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
        // Handled after uWS's read returns, not in this call's microtasks: replies written while uSockets
        // is still decrypting this socket's input (a burst of requests overflowing the cork buffer) make
        // it discard the rest of that input, and the TLS stream breaks (seen: a subscribe flood, 1006).
        setImmediate(() => {
          hub.received(session, text).catch((error: unknown) => logger.error({ err: error }, 'dashboard_request_failed'));
        });
      },

      dropped: (ws) => {
        // Past maxBackpressure: this dashboard cannot keep up. Cars and other dashboards must not wait for it.
        ws.getUserData().client?.drop(CLOSE_TOO_SLOW, 'too slow: messages could not be delivered', 'slow_consumer');
      },

      close: (ws, code, message) => {
        const data = ws.getUserData();
        const client = data.client;
        if (client === null) return;
        client.isOpen = false;
        // uWS ends a socket itself (1006, no close frame) for an oversize message, bad UTF-8, a protocol
        // error or inactivity, and says which in `message`; a peer that just vanished leaves it empty.
        if (client.dropReason === null && code === 1006 && message.byteLength > 0) client.dropReason = uwsDropReason(Buffer.from(message).toString('latin1'));
        this.clients.delete(client);
        this.generations.closed(generation);
        metrics.dashboardsConnected.set(this.clients.size);
        if (data.expiryTimer !== null) clearTimeout(data.expiryTimer);
        if (client.dropReason !== null) metrics.dashboardsDropped.inc({ reason: client.dropReason });
        if (data.session !== null) hub.closed(data.session);
        logger.info({ code, droppedFor: client.dropReason }, 'dashboard_disconnected');
      },
    });

    app.get(SESSION_PATH, (res, req) => {
      // The page checks its token here first: a browser cannot read why a WebSocket upgrade failed.
      const token = bearerToken(req);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      verifier.verify(token).then(
        (grant) => {
          if (aborted) return;
          // The page opens the socket right after this check: its upgrade then needs no second verification.
          this.verified.put(token, grant);
          const body = JSON.stringify({ vins: grant.describeVins(), expiresAt: new Date(grant.expiresAt).toISOString(), subject: grant.subject });
          res.cork(() => {
            res.writeStatus('200 OK');
            writeCommonHeaders(res, 'application/json');
            res.end(body);
          });
        },
        (error: unknown) => {
          if (aborted) return;
          this.refuse(res, error instanceof AuthError ? error : new AuthError('malformed_token', 'the token could not be checked'));
        },
      );
    });

    app.get('/healthz', (res) => {
      res.cork(() => res.writeHeader('Content-Type', 'text/plain').end('ok\n'));
    });

    app.any(DASHBOARD_PATH, (res) => {
      res.cork(() => res.writeStatus('426 Upgrade Required').end('the dashboard socket needs a WebSocket upgrade\n'));
    });

    app.get('/*', (res, req) => {
      const asset = this.options.assets.get(req.getUrl());
      res.cork(() => {
        if (asset === undefined) {
          res.writeStatus('404 Not Found');
          writeCommonHeaders(res, 'text/plain; charset=utf-8');
          res.end('not found\n');
          return;
        }
        res.writeStatus('200 OK');
        writeCommonHeaders(res, asset.contentType);
        res.end(asset.body);
      });
    });

    app.any('/*', (res) => {
      res.cork(() => res.writeStatus('405 Method Not Allowed').end());
    });
  }

  private armExpiry(data: SocketData): void {
    const remaining = data.grant.expiresAt - this.now();
    data.expiryTimer = setTimeout(() => {
      data.expiryTimer = null;
      if (data.client === null || !data.client.isOpen) return;
      if (this.now() >= data.grant.expiresAt) {
        data.client.drop(CLOSE_TOKEN_EXPIRED, 'token expired', 'token_expired');
      } else {
        this.armExpiry(data);
      }
    }, Math.max(0, Math.min(remaining, MAX_TIMER_MS)));
    data.expiryTimer.unref();
  }

  private refuse(res: HttpResponse, error: AuthError, status = '401 Unauthorized'): void {
    const reason: AuthFailureReason = error.reason;
    this.options.metrics.dashboardAuthFailures.inc({ reason });
    // The reason and our own message only: never the token, never the URL that may carry it.
    this.options.logger.warn({ reason }, 'dashboard_refused');
    res.cork(() => {
      res.writeStatus(status);
      writeCommonHeaders(res, 'application/json');
      if (status.startsWith('401')) res.writeHeader('WWW-Authenticate', `Bearer error="invalid_token", error_description="${reason}"`);
      res.end(JSON.stringify({ error: status.startsWith('401') ? 'unauthorized' : 'forbidden', reason, message: error.message }));
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

function writeCommonHeaders(res: HttpResponse, contentType: string): void {
  res.writeHeader('Content-Type', contentType);
  for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
}

function bearerToken(req: HttpRequest): string | null {
  const header = req.getHeader('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match === null ? null : match[1];
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
