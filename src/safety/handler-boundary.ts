import type { Logger } from 'pino';
import type { SafetyMetrics } from './safety-metrics.js';

/** Where a caught exception was raised: the `listener` and `handler` labels of handler_errors_total. */
export type ListenerName = 'vehicle' | 'dashboard' | 'process';
export type HandlerName = 'upgrade' | 'open' | 'message' | 'close' | 'dropped' | 'http' | 'deferred' | 'timer' | 'unhandled_rejection';

/**
 * One socket's or one request's handler boundary. A throw escaping a uWS handler ends the process (uWS.js
 * rethrows it from native code), and a rejected promise nobody awaits does the same under Node's default:
 * either would disconnect every car because of one client. So every handler runs inside `guard`, which
 * logs the error, counts it, and lets the caller answer that one client (a 500, a 1011 close).
 */
export class HandlerBoundary {
  constructor(
    private readonly listener: ListenerName,
    private readonly metrics: SafetyMetrics,
    private readonly logger: Logger,
  ) {}

  /** Runs `body`; on a throw, logs and counts it, then runs `answer` (itself guarded) for that client. */
  run(handler: HandlerName, body: () => void, answer?: () => void): void {
    try {
      body();
    } catch (error) {
      this.caught(handler, error);
      if (answer !== undefined) {
        try {
          answer();
        } catch {
          // The client is gone or already answered: nothing more to tell it.
        }
      }
    }
  }

  /** A callback (timer, setImmediate, promise continuation) that must never throw out. */
  wrap<A extends unknown[]>(handler: HandlerName, callback: (...args: A) => void, answer?: () => void): (...args: A) => void {
    return (...args: A) => this.run(handler, () => callback(...args), answer);
  }

  /** Logs and counts an exception caught elsewhere (a promise's rejection). */
  caught(handler: HandlerName, error: unknown): void {
    this.metrics.handlerErrors.inc({ listener: this.listener, handler });
    this.logger.error({ err: error, listener: this.listener, handler }, 'handler_failed');
  }
}
