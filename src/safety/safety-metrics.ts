import client from 'prom-client';
import { PREFIX } from '../metrics/series.js';

/** Throws caught at a handler boundary (handler-boundary.ts) and around the process's own timers. */
export class SafetyMetrics {
  readonly handlerErrors: client.Counter<'listener' | 'handler'>;

  constructor(registry: client.Registry) {
    this.handlerErrors = new client.Counter({ name: `${PREFIX}handler_errors_total`, help: 'Exceptions caught at a socket or request handler boundary (logged; that client is answered or closed, the process carries on), by listener and handler.', labelNames: ['listener', 'handler'], registers: [registry] });
  }
}
