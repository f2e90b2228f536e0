import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../src/log/logger.js';

/** A real server logger (createLogger) whose lines are kept in memory, to be searched for secrets. */
export function capturedLogger(level: 'debug' | 'trace' | 'info' = 'debug'): { logger: Logger; text(): string; lines(): number } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger(level, sink), text: () => chunks.join(''), lines: () => chunks.join('').split('\n').length - 1 };
}

/**
 * The distinctive parts of secrets: a PEM key's base64 body lines (any 40-character run of one is
 * enough to leak it), the markers of private key material, and literal secrets such as the JWT secret.
 */
export function secretNeedles(options: { literals: string[]; privateKeyPems: string[] }): string[] {
  const needles = ['PRIVATE KEY', ...options.literals.filter((s) => s.length >= 8)];
  for (const pem of options.privateKeyPems) {
    for (const line of pem.split('\n')) {
      const body = line.trim();
      if (body.length >= 40 && !body.startsWith('-----')) needles.push(body.slice(0, 40));
    }
  }
  return needles;
}

export function leakedSecrets(text: string, needles: string[]): string[] {
  return needles.filter((n) => text.includes(n)).map((n) => `${n.slice(0, 6)}…`);
}
