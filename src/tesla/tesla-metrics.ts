import client from 'prom-client';
import { PREFIX } from '../metrics/series.js';

/** Auto-configure and Tesla tokens: Fleet API calls, config pushes, errors Tesla reports, token refreshes. */
export class TeslaMetrics {
  readonly teslaApiCalls: client.Counter<'endpoint' | 'status_class'>;
  readonly teslaReportedErrors: client.Counter;
  readonly configPushes: client.Counter<'result'>;
  /** Also counted by the dashboard's sign-in sessions (owner="session"). */
  readonly teslaTokenRefreshes: client.Counter<'owner' | 'result'>;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.teslaApiCalls = new client.Counter({ name: `${PREFIX}tesla_api_calls_total`, help: 'Calls to the Tesla Fleet API, by endpoint and HTTP status class (2xx, 4xx, 5xx, network_error).', labelNames: ['endpoint', 'status_class'], registers: r });
    this.teslaReportedErrors = new client.Counter({ name: `${PREFIX}tesla_reported_errors_total`, help: 'Errors Tesla reports for this server through the fleet_telemetry_errors endpoint.', registers: r });
    this.configPushes = new client.Counter({ name: `${PREFIX}config_pushes_total`, help: 'Fleet telemetry configuration pushes to Tesla, by result.', labelNames: ['result'], registers: r });
    this.teslaTokenRefreshes = new client.Counter({ name: `${PREFIX}tesla_token_refreshes_total`, help: 'Tesla access-token refreshes, by owner (server: TESLA_TOKEN_FILE, session: a dashboard session) and result (ok, revoked, failed).', labelNames: ['owner', 'result'], registers: r });
  }
}
