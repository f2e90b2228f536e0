import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/types.js';

export type { Logger };

/**
 * Structured JSON logs, one event name per line (in `event`), so operators can grep and alert on names
 * rather than prose. Redaction is a second line of defence: callers never pass secrets on purpose.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      messageKey: 'event',
      base: { service: 'fleet-telemetry' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'token', 'accessToken', 'access_token', 'authorization', 'jwtSecret', 'secret', 'password',
          'keyPassphrase', '*.token', '*.accessToken', '*.authorization', '*.jwtSecret', 'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything: for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
