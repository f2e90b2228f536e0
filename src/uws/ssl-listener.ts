import { AppGenerations, stageAndPromote, type Generation } from './app-generations.js';
import uWS, { type TemplatedApp } from './uws.js';

/** The server's own certificate and key: what every TLS listener is made from and what a renewal replaces. */
export interface ServerTlsFiles {
  certFile: string;
  keyFile: string;
  keyPassphrase: string;
}

export interface SslListenerOptions<F extends ServerTlsFiles> {
  host: string;
  port: number;
  /** Names the listener in errors ("vehicle listener could not bind ..."). */
  what: string;
  /** CAs trusted for client certificates (mutual TLS); absent: server certificate only. */
  clientCaFile?: (files: F) => string;
  /** Release OpenSSL's per-connection buffers while a socket is idle (many quiet sockets). */
  preferLowMemory?: boolean;
  /** Attaches the listener's routes to a new app (the first one, or a renewal's). */
  routes: (app: TemplatedApp, generation: Generation, files: F) => void;
}

/**
 * What the vehicle and dashboard listeners share: a uWS SSLApp per certificate generation on one port,
 * listen, reload (staged, probed, then promoted), stop accepting and close. The listeners keep their
 * routes and their sockets; this keeps the apps.
 */
export class SslListener<F extends ServerTlsFiles> {
  private readonly generations: AppGenerations;
  private stopped = false;

  constructor(private readonly options: SslListenerOptions<F>, files: F) {
    this.generations = new AppGenerations(options.host, options.port, options.what);
    const app = this.createApp(files);
    options.routes(app, this.generations.add(app), files);
  }

  /** True once stopAccepting() ran: no new sockets, no reloads. */
  get draining(): boolean {
    return this.stopped;
  }

  /** Binds and resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    return this.generations.listen();
  }

  /**
   * New files for new handshakes; open sockets stay on the app they came in on. The new app is first
   * bound to a private loopback port and handed to `probe`; only when that finds no problem does it take
   * over the real port. Resolves with the problems, empty when the new files are in use.
   */
  async reload(files: F, probe: (port: number) => Promise<string[]>): Promise<string[]> {
    if (this.stopped) return ['the listener is shutting down'];
    return stageAndPromote(this.generations, this.createApp(files), this.options.host, probe, (app, generation) =>
      this.options.routes(app, generation, files),
    );
  }

  /** Every app with sockets or a listen socket (uWS topics belong to one app: publish to each). */
  get live(): readonly Generation[] {
    return this.generations.live;
  }

  opened(generation: Generation): void {
    this.generations.opened(generation);
  }

  closed(generation: Generation): void {
    this.generations.closed(generation);
  }

  /** No new connections on any generation; open sockets carry on. */
  stopAccepting(): void {
    this.stopped = true;
    this.generations.stopAccepting();
  }

  /** Stops accepting and closes every app (and so every socket still open, without a close frame). */
  close(): void {
    this.stopAccepting();
    this.generations.closeAll();
  }

  private createApp(files: F): TemplatedApp {
    const caFile = this.options.clientCaFile?.(files);
    return uWS.SSLApp({
      cert_file_name: files.certFile,
      key_file_name: files.keyFile,
      ...(caFile !== undefined ? { ca_file_name: caFile } : {}),
      ...(this.options.preferLowMemory === true ? { ssl_prefer_low_memory_usage: true } : {}),
      ...(files.keyPassphrase ? { passphrase: files.keyPassphrase } : {}),
    });
  }
}
