import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

/**
 * A car socket at the byte level: a real mTLS connection and WebSocket upgrade, then frames written by
 * hand, so a test can leave a frame unfinished (which no WebSocket library will do).
 */
export class RawCarSocket {
  closedAt: number | null = null;
  readonly closed: Promise<void>;
  received = Buffer.alloc(0);

  private constructor(readonly socket: tls.TLSSocket) {
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.closedAt = Date.now();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  get isOpen(): boolean {
    return this.closedAt === null;
  }

  /** Resolves once the server answered the upgrade with 101; rejects with its status line otherwise. */
  static open(options: { port: number; certFile: string; keyFile: string; caFile: string }, timeoutMs = 10_000): Promise<RawCarSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: options.port,
        servername: 'localhost',
        cert: readFileSync(options.certFile),
        key: readFileSync(options.keyFile),
        ca: readFileSync(options.caFile),
      });
      const raw = new RawCarSocket(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('upgrade timed out'));
      }, timeoutMs);
      let head = '';
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        clearTimeout(timer);
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(head.split('\r\n')[0]));
          return;
        }
        socket.on('data', (more: Buffer) => (raw.received = Buffer.concat([raw.received, more])));
        resolve(raw);
      };
      socket.on('data', onData);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('secureConnect', () => {
        socket.write(
          'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    });
  }

  /**
   * Writes the header of a binary frame announcing `length` payload bytes, then `sent` of them (zeros,
   * under an all-zero mask): the rest never comes.
   */
  async sendUnfinishedFrame(length: number, sent: number): Promise<void> {
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
    // Bytes 10-13: the mask key, zero.
    await this.write(header);
    const chunk = Buffer.alloc(256 * 1024);
    for (let left = sent; left > 0 && this.isOpen; left -= chunk.length) {
      await this.write(left >= chunk.length ? chunk : chunk.subarray(0, left));
    }
  }

  private write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (!this.isOpen || this.socket.destroyed) return resolve();
      if (this.socket.write(bytes)) resolve();
      else {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.once('drain', done);
        this.socket.once('close', done);
      }
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Resident memory of a process, MB (Linux /proc). */
export function rssMbOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Math.round((Number(match[1]) / 1024) * 10) / 10;
}
