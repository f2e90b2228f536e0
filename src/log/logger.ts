import { writeSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/types.js';

export type { Logger };

/**
 * Bytes of log lines held in memory while the destination cannot take them (disk full, stalled pipe);
 * past this, new lines are dropped rather than growing the heap.
 */
export const LOG_BUFFER_LIMIT_BYTES = 8 * 1024 * 1024;

/** How the log destination has fared: a full disk must cost log lines, never the service. */
export const logHealth = {
  /** Write errors reported by the destination (ENOSPC, EIO, EPIPE...). */
  writeErrors: 0,
  /** Lines dropped because the destination was failing and the buffer was full, or write() threw. */
  droppedLines: 0,
  /** The destination's last write failed and none has succeeded since. */
  failing: false,
};

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
    destination === undefined ? stdoutDestination() : guardedDestination(destination),
  );
}

/** A logger that drops everything: for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

function noteFailure(error: unknown): void {
  logHealth.writeErrors++;
  if (logHealth.failing) return;
  logHealth.failing = true;
  // Once per outage, on stderr, which may well be failing too.
  try {
    writeSync(2, `fleet-telemetry: log destination failing (${(error as NodeJS.ErrnoException)?.code ?? String(error)}); dropping log lines until it recovers\n`);
  } catch {
    // nowhere left to say it
  }
}

/**
 * stdout through pino's asynchronous writer, hardened for a destination that fails: a write error is
 * counted instead of crashing the process (an unhandled 'error' event), buffered lines are capped, and
 * the flush pino runs at exit is skipped while the destination is failing (sonic-boom retries a failed
 * synchronous flush forever, which turned SIGTERM on a full disk into a hang).
 */
function stdoutDestination(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_LIMIT_BYTES });
  stream.on('error', noteFailure);
  stream.on('write', () => {
    logHealth.failing = false;
  });
  stream.on('drop', () => {
    logHealth.droppedLines++;
  });
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = () => {
    if (logHealth.failing) return;
    try {
      flushSync();
    } catch (error) {
      noteFailure(error);
    }
  };
  return stream;
}

/** Any other destination: its errors are counted, and a write that throws costs that line only. */
function guardedDestination(destination: NodeJS.WritableStream): DestinationStream {
  destination.on('error', noteFailure);
  return {
    write(line: string): void {
      try {
        destination.write(line);
        logHealth.failing = false;
      } catch (error) {
        logHealth.droppedLines++;
        noteFailure(error);
      }
    },
  };
}
