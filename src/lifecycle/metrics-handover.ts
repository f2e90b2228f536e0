import { createServer } from 'node:net';
import type { Logger } from 'pino';
import type { MetricsListener } from '../metrics/metrics-listener.js';

const RETRY_MS = 500;

/**
 * Binds the metrics port, allowing for a rolling restart: the vehicle and dashboard listeners share
 * their ports with a draining predecessor (SO_REUSEPORT), but Node's HTTP server cannot on Node 20, so
 * while the old process still holds the metrics port this one keeps trying in the background, for as
 * long as the old one may take to stop (`waitMs`), and serves metrics from then on. Cars are never
 * kept waiting for it. A fixed port still busy after that is logged as an error.
 */
export async function listenMetricsAcrossHandover(listener: MetricsListener, host: string, port: number, waitMs: number, logger: Logger): Promise<number> {
  try {
    return await listener.listen(host, port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw error;
  }
  logger.warn({ host, port, waitMs }, 'metrics_port_busy_retrying');
  const giveUpAt = Date.now() + waitMs;
  const fail = (error: Error): void => logger.error({ host, port, err: error }, 'metrics_listen_failed');
  const retry = (): void => {
    // Probed with a throwaway server: a failed listen() leaves its callback behind on the real one.
    portIsFree(host, port).then((free) => {
      if (free) {
        listener.listen(host, port).then(() => logger.info({ host, port }, 'metrics_listening'), fail);
      } else if (Date.now() > giveUpAt) {
        fail(new Error(`metrics port ${host}:${port} still in use after ${waitMs} ms`));
      } else {
        setTimeout(retry, RETRY_MS).unref();
      }
    }, fail);
  };
  setTimeout(retry, RETRY_MS).unref();
  return port;
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(false) : reject(error)));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}
