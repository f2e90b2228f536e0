import { createServer } from 'node:net';
import { connectHostFor } from '../pki/chain-check.js';
import uWS, { listenOn, type TemplatedApp, type us_listen_socket } from './uws.js';

/**
 * A uWS SSLApp's certificate, key and CA are fixed when the app is made. To change them without
 * dropping anyone, a new app (a "generation") with the same routes binds the same port beside the old
 * one (uWS listens with SO_REUSEPORT), then the old one's listen socket closes: new handshakes reach
 * only the new app, while the sockets already open keep running on the old app until they end. An old
 * generation is released once its last socket closes.
 */
export interface Generation {
  readonly app: TemplatedApp;
  readonly serial: number;
  listenSocket: us_listen_socket | null;
  /** Sockets (WebSockets) of this app still open. */
  open: number;
  retired: boolean;
}

export class AppGenerations {
  private readonly generations: Generation[] = [];
  private port = 0;
  private serial = 0;

  constructor(
    private readonly host: string,
    private readonly requestedPort: number,
    private readonly what: string,
  ) {}

  /** The generation new handshakes reach. */
  get current(): Generation {
    const current = this.generations[this.generations.length - 1];
    if (current === undefined) throw new Error(`${this.what}: no app yet`);
    return current;
  }

  /** Every generation with sockets or a listen socket: publishes go to each. */
  get live(): readonly Generation[] {
    return this.generations;
  }

  /** The app of the first generation; routes are attached by the caller before listen(). */
  add(app: TemplatedApp): Generation {
    const generation: Generation = { app, serial: ++this.serial, listenSocket: null, open: 0, retired: false };
    this.generations.push(generation);
    return generation;
  }

  /** Binds the first generation; resolves with the port. */
  async listen(): Promise<number> {
    // uSockets sets SO_REUSEPORT only on a non-zero port, so for port 0 a free port is asked of the kernel
    // first; otherwise no later generation (or process) could share it.
    const port = this.requestedPort === 0 ? await freePortOn(this.host) : this.requestedPort;
    const { socket, port: bound } = await listenOn(this.current.app, this.host, port, this.what);
    this.current.listenSocket = socket;
    this.port = bound;
    return bound;
  }

  get boundPort(): number {
    return this.port;
  }

  /** A generation for a new app, not yet reachable: attach its routes, check it, then promote or discard it. */
  stage(app: TemplatedApp): Generation {
    return { app, serial: ++this.serial, listenSocket: null, open: 0, retired: false };
  }

  discard(generation: Generation): void {
    generation.app.close();
  }

  /**
   * Puts a staged generation in front: binds it on the same port, then stops the previous generation
   * accepting. Throws, leaving the current generation as it was, when the bind fails.
   */
  async promote(generation: Generation): Promise<void> {
    const previous = this.current;
    try {
      ({ socket: generation.listenSocket } = await listenOn(generation.app, this.host, this.port, this.what));
    } catch (error) {
      generation.app.close();
      throw error;
    }
    this.generations.push(generation);
    if (previous.listenSocket !== null) {
      uWS.us_listen_socket_close(previous.listenSocket);
      previous.listenSocket = null;
    }
    previous.retired = true;
    this.release(previous);
  }

  opened(generation: Generation): void {
    generation.open++;
  }

  closed(generation: Generation): void {
    generation.open--;
    this.release(generation);
  }

  /** No new connections on any generation. */
  stopAccepting(): void {
    for (const generation of this.generations) {
      if (generation.listenSocket !== null) {
        uWS.us_listen_socket_close(generation.listenSocket);
        generation.listenSocket = null;
      }
    }
  }

  closeAll(): void {
    this.stopAccepting();
    for (const generation of this.generations.splice(0)) generation.app.close();
  }

  private release(generation: Generation): void {
    if (!generation.retired || generation.open > 0) return;
    const index = this.generations.indexOf(generation);
    if (index < 0) return;
    this.generations.splice(index, 1);
    // Deferred: this runs inside the app's own close handler.
    setImmediate(() => generation.app.close());
  }
}

/** A free port on `host`, asked of the kernel (the listener binds it a moment later). */
export function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host === '' ? '0.0.0.0' : host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Binds a freshly made app (routes attached by `attach`) on a private loopback port, lets `probe` check
 * it, then promotes it onto the listener's port. Shared by both listeners.
 */
export async function stageAndPromote(
  generations: AppGenerations,
  app: TemplatedApp,
  host: string,
  probe: (port: number) => Promise<string[]>,
  attach: (app: TemplatedApp, generation: Generation) => void,
): Promise<string[]> {
  const generation = generations.stage(app);
  attach(app, generation);
  let problems: string[];
  try {
    const { socket, port } = await listenOn(app, connectHostFor(host), 0, 'staged listener').catch(() => {
      throw new Error('the new certificate or key could not be loaded (uWS refused to listen with it)');
    });
    try {
      problems = await probe(port);
    } finally {
      uWS.us_listen_socket_close(socket);
    }
  } catch (error) {
    problems = [(error as Error).message];
  }
  if (problems.length > 0) {
    generations.discard(generation);
    return problems;
  }
  try {
    await generations.promote(generation);
  } catch (error) {
    return [(error as Error).message];
  }
  return [];
}
