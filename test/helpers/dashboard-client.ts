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
  /** Resolve as soon as the socket opens, before the hello (a client that asks before it arrives). */
  early?: boolean;
}

/**
 * A refused dashboard: an HTTP answer to the upgrade (what needs no key: no token, not a JWT, a refused
 * origin, a full holder of a token checked moments ago), or a socket closed at its credential's check
 * (4401 with the reason code, 4429 too many sockets) before any message.
 */
export interface RefusedUpgrade {
  /** HTTP status of a refused upgrade; null when the socket opened and was closed at the check. */
  status: number | null;
  body: string;
  /** The close code of a refusal after the upgrade; null for an HTTP refusal. */
  code: number | null;
  /** The reason code: from the JSON body of an HTTP refusal, or the close reason. */
  reason: string;
}

/** Refusals that need no key, so the upgrade itself is answered 401; every other reason is a 4401 close. */
export const KEYLESS_REFUSALS: ReadonlySet<string> = new Set(['missing_token', 'malformed_token', 'algorithm_not_allowed']);

/** Close codes of a credential refused at its check, after the upgrade (docs/DASHBOARD-PROTOCOL.md). */
const REFUSAL_CLOSE_CODES = new Set([4401, 4429]);

/** A dashboard as a `ws` client sees it: every message kept, parsed, with its arrival time. */
export class DashboardTestClient {
  readonly messages: DashboardMessage[] = [];
  readonly arrivals: number[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  hasClosed = false;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.hasClosed = true;
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
      throw new Error(result.status !== null ? `upgrade refused: HTTP ${result.status} ${result.body}` : `refused at the check: closed ${result.code} ${result.reason}`);
    });
  }

  /** Resolves with the client once its hello came (or at once with `early`), or with how it was refused. */
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
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, code: null, reason: reasonOf(body) }));
      });
      socket.once('open', () => {
        const client = new DashboardTestClient(socket);
        if (options.early === true) {
          resolve(client);
          return;
        }
        // Admitted once the first message (hello) arrives; a refusal at the check closes it before that.
        void client.waitFor((m) => m.length > 0 || client.hasClosed, 30_000, 'hello').then(
          () => {
            if (client.messages.length > 0) resolve(client);
          },
          reject,
        );
        void client.closed.then(({ code, reason }) => {
          if (client.messages.length === 0 && REFUSAL_CLOSE_CODES.has(code)) resolve({ status: null, body: '', code, reason });
          else if (client.messages.length === 0) reject(new Error(`the dashboard socket closed with ${code} ${reason} before any message`));
        });
      });
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

function reasonOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { reason?: unknown };
    return typeof parsed.reason === 'string' ? parsed.reason : '';
  } catch {
    return '';
  }
}
