import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';

/** The Linux setting that hands a closing listen socket's queued connections to another on the same port. */
export const MIGRATE_SETTING = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * A certificate renewal and a rolling restart both close a listen socket while another one shares its
 * port (SO_REUSEPORT). Connections the kernel already queued on the closing socket are then reset
 * (the client sees ECONNRESET and retries) unless `net.ipv4.tcp_migrate_req` is 1 (Linux 5.14+), which
 * moves them to the socket that stays. Measured: docs/RELIABILITY.md "Certificate renewal". Returns
 * what was found, for the log and the test.
 */
export function checkListenerHandover(logger: Logger, read: (path: string) => string = (path) => readFileSync(path, 'utf8')): 'migrates' | 'resets' | 'unknown' {
  let value: string;
  try {
    value = read(MIGRATE_SETTING).trim();
  } catch {
    // Not Linux, or a kernel before 5.14: nothing to advise that the operator could set.
    return 'unknown';
  }
  if (value === '1') return 'migrates';
  logger.warn(
    { setting: 'net.ipv4.tcp_migrate_req', value, fix: 'deploy/60-fleet-telemetry.conf in /etc/sysctl.d' },
    'listener_handover_resets_queued_connections',
  );
  return 'resets';
}
