import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The plumbing of the fake Tesla servers: plain http on 127.0.0.1, JSON in and out. */

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** An http server on a kernel-chosen loopback port; a request its handler throws on gets a 500. */
export abstract class LoopbackServer {
  protected readonly server: Server;
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => send(res, 500, this.internalError(error.message)));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The 500's body: the Fleet API's error shape. */
  protected internalError(message: string): unknown {
    return { response: null, error: 'internal', error_description: message };
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}
