import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { checkServerChain, connectHostFor } from './chain-check.js';

export class SelfCheckError extends Error {
  constructor(readonly problems: string[]) {
    super(`self-check failed: a car would refuse this server: ${problems.join('; ')} (SELF_CHECK=false skips this check for local development)`);
    this.name = 'SelfCheckError';
  }
}

/**
 * After the vehicle listener is up: connect to it as a car would (SNI = DOMAIN, trust = the `ca` chain)
 * and refuse to run when a car would refuse us, rather than let cars fail silently for days.
 */
export async function runSelfCheck(o: {
  listenHost: string;
  port: number;
  domain: string;
  caChainFile: string;
  logger: Logger;
  timeoutMs?: number;
}): Promise<void> {
  const report = await checkServerChain({
    host: connectHostFor(o.listenHost),
    port: o.port,
    hostname: o.domain,
    caPem: readFileSync(o.caChainFile, 'utf8'),
    timeoutMs: o.timeoutMs ?? 5000,
  });
  for (const warning of report.warnings) o.logger.warn({ warning }, 'self_check_warning');
  if (!report.ok) {
    o.logger.error({ problems: report.problems, details: report.details }, 'self_check_failed');
    throw new SelfCheckError(report.problems);
  }
  o.logger.info({ domain: o.domain, daysLeft: report.daysLeft }, 'self_check_passed');
}
