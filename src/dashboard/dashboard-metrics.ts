import client from 'prom-client';
import { PREFIX } from '../metrics/series.js';

/** Series owned by other stages that the dashboard also counts. */
export interface DashboardBorrowedSeries {
  /** The handler boundary's (src/safety/). */
  readonly handlerErrors: client.Counter<'listener' | 'handler'>;
  /** The Tesla stage's (a sign-in session refreshing its own Tesla token). */
  readonly teslaTokenRefreshes: client.Counter<'owner' | 'result'>;
}

/** The dashboard: connections, messages, requests, watched VINs, and Sign in with Tesla. */
export class DashboardMetrics {
  readonly dashboardsConnected: client.Gauge;
  readonly dashboardMessagesSent: client.Counter;
  readonly dashboardsDropped: client.Counter<'reason'>;
  readonly dashboardAuthFailures: client.Counter<'reason'>;
  readonly dashboardRequests: client.Counter<'type' | 'result'>;
  readonly dashboardWatchedVehicles: client.Gauge;
  /** Sign in with Tesla (tesla-login.ts, tesla-sign-in.ts). */
  readonly teslaSignIns: client.Counter<'result'>;
  readonly dashboardSessions: client.Gauge;
  readonly teslaTokenRefreshes: client.Counter<'owner' | 'result'>;
  readonly handlerErrors: client.Counter<'listener' | 'handler'>;

  constructor(registry: client.Registry, borrowed: DashboardBorrowedSeries) {
    const r = [registry];
    this.handlerErrors = borrowed.handlerErrors;
    this.teslaTokenRefreshes = borrowed.teslaTokenRefreshes;
    this.dashboardsConnected = new client.Gauge({ name: `${PREFIX}dashboards_connected`, help: 'Open dashboard WebSocket connections.', registers: r });
    this.dashboardMessagesSent = new client.Counter({ name: `${PREFIX}dashboard_messages_sent_total`, help: 'Messages written to dashboard WebSockets.', registers: r });
    this.dashboardsDropped = new client.Counter({ name: `${PREFIX}dashboards_dropped_total`, help: 'Dashboard connections closed by the server, by reason (e.g. slow consumer, token expired).', labelNames: ['reason'], registers: r });
    this.dashboardAuthFailures = new client.Counter({ name: `${PREFIX}dashboard_auth_failures_total`, help: 'Dashboard connections refused at authentication, by reason.', labelNames: ['reason'], registers: r });
    this.dashboardRequests = new client.Counter({ name: `${PREFIX}dashboard_requests_total`, help: 'Dashboard requests, by type (subscribe, unsubscribe, vehicles, any) and result (ok or the error code sent back).', labelNames: ['type', 'result'], registers: r });
    this.dashboardWatchedVehicles = new client.Gauge({ name: `${PREFIX}dashboard_watched_vehicles`, help: 'VINs at least one dashboard on this instance is subscribed to.', registers: r });
    this.teslaSignIns = new client.Counter({ name: `${PREFIX}tesla_sign_ins_total`, help: 'Sign in with Tesla attempts on the dashboard, by result (ok, or why it was refused: state_mismatch, state_replayed, no_login_cookie, access_denied, bad_code, missing_scope, tesla_unavailable, ...).', labelNames: ['result'], registers: r });
    this.dashboardSessions = new client.Gauge({ name: `${PREFIX}dashboard_sessions`, help: 'Sign in with Tesla sessions held by this instance.', registers: r });
  }
}
