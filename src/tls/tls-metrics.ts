import client from 'prom-client';
import { PREFIX } from '../metrics/series.js';

/** Certificate hot reload and how long each listener's certificate has left. */
export class TlsMetrics {
  readonly tlsReloads: client.Counter<'listener' | 'result'>;
  readonly tlsCertificateSecondsLeft: client.Gauge<'listener'>;
  /** Set by the certificate reloader: days left on each listener's certificate, read at scrape time. */
  certificateDaysLeft: (() => Array<[string, number]>) | null = null;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.tlsReloads = new client.Counter({ name: `${PREFIX}tls_reloads_total`, help: 'Certificate reloads by listener (vehicle, dashboard) and result (applied, refused: the old certificate stays in use).', labelNames: ['listener', 'result'], registers: r });
    const metrics = this;
    this.tlsCertificateSecondsLeft = new client.Gauge({
      name: `${PREFIX}tls_certificate_expiry_seconds`,
      help: 'Seconds until the certificate each listener (vehicle, dashboard) serves expires (divide by 86400 for days); negative once expired.',
      labelNames: ['listener'],
      registers: r,
      collect() {
        for (const [listener, days] of metrics.certificateDaysLeft?.() ?? []) this.set({ listener }, Math.round(days * 86_400));
      },
    });
    // Known label values exist from the first scrape, at 0: rate() then sees the first event.
    for (const listener of ['vehicle', 'dashboard']) for (const result of ['applied', 'refused']) this.tlsReloads.inc({ listener, result }, 0);
  }
}
