import { loadConfigOrExit } from './config/index.js';
import { nameStartupThreads } from './lifecycle/thread-names.js';
import { startServer } from './server.js';

/**
 * `node dist/main.js`: read and validate the configuration (exit 2 with one line per problem before any
 * port opens), start the server, stop gracefully on SIGTERM/SIGINT, reload certificates on SIGHUP.
 */
nameStartupThreads();
const config = loadConfigOrExit();
const server = await startServer(config).catch((error: Error) => {
  process.stderr.write(`fleet-telemetry: could not start: ${error.message}\n`);
  process.exit(1);
});

// systemctl reload (and renewal hooks) send SIGHUP: re-read the certificates; never stop on it.
process.on('SIGHUP', () => {
  server.logger.info({ signal: 'SIGHUP' }, 'signal_received');
  server.reloadCertificates().catch((error: Error) => server.logger.error({ err: error }, 'certificate_reload_failed'));
});

// The last net under the handler boundaries (src/safety): a promise somebody forgot to await must cost
// one log line and a count, not every car's connection. Node's default would end the process.
process.on('unhandledRejection', (reason) => {
  server.metrics.safety.handlerErrors.inc({ listener: 'process', handler: 'unhandled_rejection' });
  server.logger.error({ err: reason }, 'unhandled_rejection');
});

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = true;
    server.logger.info({ signal }, 'signal_received');
    const hardStop = setTimeout(() => process.exit(1), config.shutdownGraceMs + 5_000);
    hardStop.unref();
    server.stop().then(
      () => process.exit(0),
      (error: Error) => {
        server.logger.error({ err: error }, 'shutdown_failed');
        process.exit(1);
      },
    );
  });
}
