import { get } from 'node:http';
import WebSocket from 'ws';

// A full garbage collection of a server under test, asked for through the V8 inspector it was started
// with (`--inspect=127.0.0.1:PORT`, bench only, loopback). Memory read after it counts what the process
// holds, not how much garbage happens to be waiting for the next major GC: the same for every server
// kind, with no code in the servers themselves.

/** The inspector's WebSocket address for the process listening on `port` (its /json/list). */
function debuggerUrl(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/json/list', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          const targets = JSON.parse(body) as unknown;
          const url = Array.isArray(targets) ? (targets[0] as { webSocketDebuggerUrl?: unknown } | undefined)?.webSocketDebuggerUrl : undefined;
          if (typeof url !== 'string') throw new Error('no inspector target');
          resolve(url);
        } catch (error) {
          reject(new Error(`inspector on port ${port}: ${(error as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`inspector on port ${port} did not answer`)));
    req.on('error', reject);
  });
}

/** The main thread's V8 heap: bytes in use and bytes the heap holds (its pages). */
export interface HeapUsage {
  usedBytes: number;
  totalBytes: number;
}

/**
 * Asks the process to collect garbage `times` times (a second pass frees what the first only
 * unlinked), then reads its main thread's heap usage.
 */
export async function collectGarbage(inspectorPort: number, times = 2): Promise<HeapUsage> {
  const socket = new WebSocket(await debuggerUrl(inspectorPort));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    let id = 0;
    const call = (method: string): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const sent = ++id;
        const timer = setTimeout(() => reject(new Error(`${method} timed out`)), 30_000);
        const onMessage = (data: WebSocket.RawData): void => {
          const reply = JSON.parse(data.toString()) as { id?: number; result?: Record<string, unknown>; error?: { message?: string } };
          if (reply.id !== sent) return;
          clearTimeout(timer);
          socket.off('message', onMessage);
          if (reply.error !== undefined) reject(new Error(`${method}: ${reply.error.message ?? 'failed'}`));
          else resolve(reply.result ?? {});
        };
        socket.on('message', onMessage);
        socket.send(JSON.stringify({ id: sent, method }));
      });
    for (let i = 0; i < times; i++) await call('HeapProfiler.collectGarbage');
    const usage = await call('Runtime.getHeapUsage');
    return { usedBytes: Number(usage.usedSize), totalBytes: Number(usage.totalSize) };
  } finally {
    socket.close();
  }
}
