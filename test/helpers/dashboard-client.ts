import WebSocket from 'ws';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type DashboardMessage = Record<string, any> & { type: string };

export interface DashboardConnectOptions {
  url: string;
  caPem: string | Buffer;
  token?: string;
  /** Send the token as `?access_token=` (as a browser does) instead of the Authorization header. */
  tokenInQuery?: boolean;
  headers?: Record<string, string>;
}

export interface RefusedUpgrade {
  status: number;
  body: string;
}

/** A dashboard as a `ws` client sees it: every message kept, parsed, with its arrival time. */
export class DashboardTestClient {
  readonly messages: DashboardMessage[] = [];
  readonly arrivals: number[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) throw new Error('dashboards only get text frames');
      this.messages.push(JSON.parse(data.toString('utf8')) as DashboardMessage);
      this.arrivals.push(performance.now());
      this.wake();
    });
    socket.on('error', () => {});
  }

  static open(options: DashboardConnectOptions): Promise<DashboardTestClient> {
    return DashboardTestClient.attempt(options).then((result) => {
      if (result instanceof DashboardTestClient) return result;
      throw new Error(`upgrade refused: HTTP ${result.status} ${result.body}`);
    });
  }

  /** Resolves with the client, or with the HTTP status and body of a refused upgrade. */
  static attempt(options: DashboardConnectOptions): Promise<DashboardTestClient | RefusedUpgrade> {
    const url = new URL(options.url);
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) {
      if (options.tokenInQuery) url.searchParams.set('access_token', options.token);
      else headers.Authorization = `Bearer ${options.token}`;
    }
    const socket = new WebSocket(url, { ca: options.caPem, servername: 'localhost', headers, perMessageDeflate: false } as WebSocket.ClientOptions);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      socket.once('open', () => resolve(new DashboardTestClient(socket)));
    });
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  ofType(type: string): DashboardMessage[] {
    return this.messages.filter((m) => m.type === type);
  }

  /** Waits until `check` holds over the messages so far. */
  async waitFor(check: (messages: DashboardMessage[]) => boolean, timeoutMs = 5000, what = 'expected messages'): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!check(this.messages)) {
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close(1000);
    return this.closed;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
