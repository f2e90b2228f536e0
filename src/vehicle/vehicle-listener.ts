import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { FrameOwner, VehicleActor } from '../actors/vehicle-actor.js';
import type { VehicleConnection } from '../actors/vehicle-connection.js';
import type { VehicleRegistry } from '../actors/vehicle-registry.js';
import { emptyArray, type DecodePool } from '../decode/decode-pool.js';
import type { VehicleMetrics } from './vehicle-metrics.js';
import { writeErrorReply } from '../protocol/envelope.js';
import { identifyDevice, type DeviceKind, type IdentityResult } from '../protocol/identity.js';
import { clientVersionFrom, connectionIdFrom, networkInterfaceFrom } from './connection-headers.js';
import { HandlerBoundary } from '../safety/handler-boundary.js';
import { frameBudgetFor, type FrameBudget } from './rate-limit.js';
import type { Generation } from '../uws/app-generations.js';
import { SslListener } from '../uws/ssl-listener.js';
import { maxPayloadFor, SocketsPerVin } from './socket-caps.js';
import { ArrivalClock } from './arrival-clock.js';
import uWS, { clientCertificatePem, type HttpResponse, type TemplatedApp, type WebSocket } from '../uws/uws.js';
// The global `performance` is an accessor (10-20 ns a read on the per-record path); the module's binding is not.
import { performance } from 'node:perf_hooks';

export const PUBLIC_KEY_PATH = '/.well-known/appspecific/com.tesla.3p.public-key.pem';
export const STATUS_PATH = '/status';
/** Close codes we use with cars. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_INTERNAL_ERROR = 1011;
const EMPTY_TXID = new Uint8Array(0);
/** A drain closes together the cars due within this many milliseconds of each other. */
const DRAIN_TICK_MS = 10;

export interface VehicleListenerOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  keyPassphrase: string;
  /** Every CA advertised in the CertificateRequest and trusted for client certificates. */
  trustedCaFile: string;
  /** CAs of the operator (dev/test/private fleet): their certificates are vehicles with CN = VIN. */
  operatorCas: readonly X509Certificate[];
  maxFrameBytes: number;
  idleTimeoutSeconds: number;
  maxBackpressureBytes: number;
  /** Per-connection frame budget (token bucket); 0 = unlimited. */
  maxFramesPerSecond: number;
  /** Open sockets per VIN; a new one past it closes the oldest (default 3). */
  maxSocketsPerVin?: number;
  /** Open sockets in total; upgrades past it get 503 (default unlimited). */
  maxSockets?: number;
  /** Seconds a socket has to complete its first frame; 0 = no deadline (default 0). */
  firstFrameTimeoutSeconds?: number;
  publicKeyPem: string | null;
  registry: VehicleRegistry;
  pool: DecodePool<FrameOwner>;
  metrics: VehicleMetrics;
  logger: Logger;
  /** The time frames are stamped and rate-limited with; the wall clock unless a test moves one by hand. */
  now?: () => number;
}

/** What a certificate reload replaces: the server's files and the vehicle trust. */
export type VehicleTlsFiles = Pick<VehicleListenerOptions, 'certFile' | 'keyFile' | 'keyPassphrase' | 'trustedCaFile' | 'operatorCas'>;

/**
 * uWS copies these onto the socket's own object, a slot each, for the socket's life: what the upgrade
 * learnt about the car (identity, headers) lives in the connection, made at the upgrade.
 */
interface SocketData {
  connection: UwsVehicleConnection | null;
  actor: VehicleActor | null;
  budget: FrameBudget | null;
  rateLimited: boolean;
  /** Closes the socket unless a frame completes first; null once one did (or no deadline). */
  firstFrameTimer: NodeJS.Timeout | null;
}

/**
 * What uWS's send returned for each reply of the flush in progress (0 buffered, 1 sent, 2 dropped for
 * backpressure; -1 not sent): one array for every socket and turn, and one cork callback reading the
 * socket being flushed, so writing a socket's replies allocates nothing.
 */
let sendStatuses = new Int8Array(64);
let corkedConnection: UwsVehicleConnection | null = null;
function sendCorked(): void {
  corkedConnection!.sendQueued();
}

/** Connections with replies queued this turn; one microtask writes them all. */
const connectionsToFlush: UwsVehicleConnection[] = [];
let flushQueued = false;
/** Decode deliveries in progress (replyFlush): replies they queue are written as the outermost ends. */
let deliveriesOpen = 0;

/**
 * Brackets a decode batch's delivery (DecodePoolOptions.aroundDelivery): the replies its outcomes queue
 * are written at once when it ends, in one pass, instead of from a microtask queued by the first of
 * them. A lone frame's turn then queues no promise reaction and runs no microtask for its ack (the
 * check-phase hop's microtask run, BENCHMARKS.md, engineer H, session 10). Replies queued outside a
 * delivery (a bus's publish callback, an oversize frame's error) still go by the microtask.
 */
export const replyFlush = {
  begin(): void {
    deliveriesOpen++;
  },
  end(): void {
    if (--deliveriesOpen === 0 && flushQueued) flushQueuedReplies();
  },
};
/**
 * Queues a microtask without queueMicrotask's AsyncResource and bound function per call (Node 20): the
 * same microtask queue, so the same order, for ~40 ns instead of ~100 (once per lone frame's turn).
 */
const SETTLED = Promise.resolve();

/**
 * The replies queued this turn, of every connection, in the order queued: the reply, its kind, its
 * frame's arrival (NaN: none) and the next entry of the same connection (-1: its last). A connection
 * keeps only where its chain starts and ends, so an idle car holds no queue of its own, and queuing
 * and writing allocate nothing but the rare growth of these arrays.
 */
let queuedReplies: Array<Uint8Array | null> = new Array<Uint8Array | null>(256).fill(null);
let queuedKinds = new Uint8Array(256);
let queuedArrivals = new Float64Array(256);
let queuedNext = new Int32Array(256);
let queuedCount = 0;

function growReplyQueue(): void {
  const capacity = queuedKinds.length * 2;
  queuedReplies.length = capacity;
  queuedReplies.fill(null, queuedKinds.length);
  const kinds = new Uint8Array(capacity);
  kinds.set(queuedKinds);
  queuedKinds = kinds;
  const arrivals = new Float64Array(capacity);
  arrivals.set(queuedArrivals);
  queuedArrivals = arrivals;
  const next = new Int32Array(capacity);
  next.set(queuedNext);
  queuedNext = next;
}

function flushQueuedReplies(): void {
  flushQueued = false;
  // By index, not a copy of the list: a connection queued while flushing (none should be) is written in
  // this pass too.
  for (let i = 0; i < connectionsToFlush.length; i++) {
    const connection = connectionsToFlush[i]!;
    // A microtask that throws ends the process; one socket's failed write must cost only its replies.
    try {
      connection.flushReplies();
    } catch (error) {
      connection.flushFailed(error);
    }
  }
  emptyArray(connectionsToFlush);
  // Written replies are views into decode buffers: do not keep them alive until the next busy turn.
  // A loop, not fill(): Array.prototype.fill is a C++ builtin whose entry cost a lone reply paid in full.
  for (let i = 0; i < queuedCount; i++) queuedReplies[i] = null;
  queuedCount = 0;
}

/** Exported for its unit test (the reply queue); the listener makes them. */
export class UwsVehicleConnection implements VehicleConnection {
  isOpen = true;
  /** Frames handed to the pipeline whose reply has not been queued yet. */
  awaitingReply = 0;
  /** Called once `awaitingReply` falls to 0 (a drain waiting to close this car). */
  onSettled: (() => void) | null = null;
  /** Draining: this car's new frames are no longer taken (unanswered, the car resends them elsewhere). */
  closing = false;
  /** Set when the server closes it for a policy (socket cap, deadline): the disconnect metric's reason. */
  closedFor: string | null = null;
  /** Set when the socket opens (the connection is made at the upgrade, before it has one). */
  connectedAt = 0;
  private ws: WebSocket<SocketData> | null = null;
  /** This connection's replies in the turn's queue: first and last entry (-1: none) and how many. */
  private firstQueued = -1;
  private lastQueued = -1;
  private queued = 0;
  constructor(
    readonly connectionId: string,
    readonly vin: string,
    /** What the certificate says it is (logged at open). */
    readonly kind: DeviceKind,
    readonly networkInterface: string,
    readonly clientVersion: string,
    private readonly metrics: VehicleMetrics,
  ) {}

  /** Whether the socket's open handler took it (a close before that has nothing to undo). */
  get attached(): boolean {
    return this.ws !== null;
  }

  /** The socket opened: from now on replies and closes go to it. */
  attach(ws: WebSocket<SocketData>): void {
    this.ws = ws;
    this.connectedAt = Date.now();
  }

  sendReply(reply: Uint8Array, kind: 'ack' | 'error', arrivedAt: number | null): void {
    if (--this.awaitingReply === 0 && this.onSettled !== null) this.settled();
    // Replies leave from promise callbacks, outside uWS handlers, where each send would be its own TLS
    // write (the cost is in BENCHMARKS.md, "Why the code is shaped so"). Queued, a socket's replies of
    // one turn share a cork.
    if (queuedCount === queuedKinds.length) growReplyQueue();
    const at = queuedCount++;
    queuedReplies[at] = reply;
    queuedKinds[at] = kind === 'ack' ? 0 : 1; // 1: an error reply (flushReplies sums them)
    queuedArrivals[at] = arrivedAt ?? Number.NaN;
    queuedNext[at] = -1;
    if (this.queued === 0) {
      this.firstQueued = at;
      connectionsToFlush.push(this);
      if (!flushQueued) {
        flushQueued = true;
        // Inside a delivery the flush comes when it ends (replyFlush); a microtask queued before stays harmless.
        if (deliveriesOpen === 0) void SETTLED.then(flushQueuedReplies);
      }
    } else {
      queuedNext[this.lastQueued] = at;
    }
    this.lastQueued = at;
    this.queued++;
  }

  private forgetQueued(): void {
    this.firstQueued = -1;
    this.lastQueued = -1;
    this.queued = 0;
  }

  private settled(): void {
    const onSettled = this.onSettled;
    this.onSettled = null;
    // After this turn's replies are written (flushQueuedReplies runs as a microtask queued before).
    if (onSettled !== null) setImmediate(onSettled);
  }

  /**
   * Stop taking this car's frames and close it with "going away" once every frame taken so far has its
   * reply written, or at `deadline` (Date.now() ms) when some never gets one (a bus error leaves a frame
   * unanswered: the car resends it). Resolves when the close was sent.
   */
  closeWhenAnswered(deadline: number, code: number, reason: string): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const close = (): void => {
        if (timer !== null) clearTimeout(timer);
        this.onSettled = null;
        try {
          this.close(code, reason);
        } catch {
          // closed meanwhile by the car
        }
        resolve();
      };
      if (this.awaitingReply <= 0 || !this.isOpen) {
        // Replies queued in this turn are written by the microtask already queued; close after it.
        setImmediate(close);
        return;
      }
      this.onSettled = close;
      timer = setTimeout(close, Math.max(0, deadline - Date.now()));
    });
  }

  /** flushReplies threw: count it, drop the queued replies (the car resends them) and close the socket. */
  flushFailed(error: unknown): void {
    this.metrics.handlerErrors.inc({ listener: 'vehicle', handler: 'deferred' });
    this.metrics.repliesDropped.inc({ reason: 'connection_closed' }, this.queued);
    this.forgetQueued();
    this.failure = error;
    try {
      if (this.isOpen) this.ws!.end(1011, 'internal error');
    } catch {
      // already gone
    }
  }

  /** The last exception of a reply flush, for the log line of the close. */
  failure: unknown = null;

  /** Write every queued reply in order, in one cork, and count each. */
  flushReplies(): void {
    const count = this.queued;
    if (count === 0) return;
    if (sendStatuses.length < count) sendStatuses = new Int8Array(2 ** Math.ceil(Math.log2(count)));
    const statuses = sendStatuses;
    // A loop, not fill(): TypedArray.prototype.fill is a C++ builtin (~40-50 ns a call against ~3 for a lone reply's store).
    for (let i = 0; i < count; i++) statuses[i] = -1;
    if (this.isOpen) {
      corkedConnection = this;
      try {
        this.ws!.cork(sendCorked);
      } finally {
        corkedConnection = null;
      }
    }
    const now = performance.now();
    const metrics = this.metrics;
    // Counted here and added to the cells once per flush, not looked up per reply.
    let written = 0;
    let errors = 0;
    let at = this.firstQueued;
    for (let i = 0; i < count; i++) {
      const status = statuses[i];
      if (status === 0 || status === 1) {
        written++;
        errors += queuedKinds[at]!;
        const arrivedAt = queuedArrivals[at]!; // queued with its reply
        if (arrivedAt === arrivedAt) metrics.ackLatency.observe((now - arrivedAt) / 1000);
      } else {
        metrics.repliesDropped.inc({ reason: status === 2 ? 'backpressure' : 'connection_closed' });
      }
      at = queuedNext[at]!;
    }
    if (written > errors) metrics.replyCells.ack.inc(written - errors);
    if (errors > 0) metrics.replyCells.error.inc(errors);
    this.forgetQueued();
  }

  /** Inside this socket's cork (sendCorked): every queued reply, its status into sendStatuses. */
  sendQueued(): void {
    const ws = this.ws!;
    let at = this.firstQueued;
    for (let i = 0; i < this.queued; i++) {
      sendStatuses[i] = ws.send(queuedReplies[at]!, true);
      at = queuedNext[at]!;
    }
  }

  close(code: number, reason: string): void {
    if (this.isOpen) this.ws!.end(code, reason);
  }

  /** Closed by policy; `why` is a fixed label value of vehicle_disconnects_total. */
  closeFor(why: string, code: number, reason: string): void {
    if (!this.isOpen || this.closedFor !== null) return;
    this.closedFor = why;
    this.close(code, reason);
  }
}

/**
 * The car-facing listener: a uWS SSLApp with mutual TLS. uWS lets a client without a certificate finish
 * the handshake, so every route checks the certificate itself; identity comes only from it.
 */
export class VehicleListener {
  private readonly options: VehicleListenerOptions;
  private readonly tls: SslListener<VehicleTlsFiles>;
  private readonly connections = new Set<UwsVehicleConnection>();
  private readonly perVin: SocketsPerVin<UwsVehicleConnection>;
  private readonly boundary: HandlerBoundary;
  private readonly now: () => number;
  /** Frames' arrival stamps from their performance.now() reading; null when a test sets `now`. */
  private readonly arrivals: ArrivalClock | null;

  constructor(options: VehicleListenerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.arrivals = options.now === undefined ? new ArrivalClock() : null;
    this.perVin = new SocketsPerVin(options.maxSocketsPerVin ?? 3);
    this.boundary = new HandlerBoundary('vehicle', options.metrics, options.logger);
    this.tls = new SslListener<VehicleTlsFiles>({
      host: options.host,
      port: options.port,
      what: 'vehicle listener',
      clientCaFile: (files) => files.trustedCaFile,
      // Cars sit idle between frames most of the time: release OpenSSL's per-connection buffers then.
      preferLowMemory: true,
      routes: (app, generation, files) => this.routes(app, generation, files.operatorCas),
    }, options);
  }

  private get draining(): boolean {
    return this.tls.draining;
  }

  /** Binds and resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    return this.tls.listen();
  }

  /**
   * New certificate, key or vehicle trust for new handshakes; connected cars stay on the app they came
   * in on. `probe` handshakes with the staged app as a car would (SslListener.reload).
   */
  async reload(files: VehicleTlsFiles, probe: (port: number) => Promise<string[]>): Promise<string[]> {
    return this.tls.reload(files, probe);
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** Stop taking new cars; connected cars are served until drain() or closeAll() closes them. */
  stopAccepting(): void {
    this.tls.stopAccepting();
  }

  /** Close every car socket with "going away" at once: cars reconnect (to another instance) with backoff. */
  closeAll(): void {
    for (const connection of [...this.connections]) connection.close(CLOSE_GOING_AWAY, 'server shutting down');
  }

  /**
   * After stopAccepting(): close the cars with "going away" one after another, evenly over `spreadMs`, so
   * a large fleet does not reconnect to the next process all at once. Until its turn a car is served as
   * before (frames taken, decoded, acked); at its turn its new frames are no longer taken and it is
   * closed as soon as every frame taken has its reply, or at `deadline` (Date.now() ms) at the latest.
   * Resolves once every car was closed.
   */
  async drain(spreadMs: number, deadline: number): Promise<void> {
    const cars = [...this.connections];
    const started = Date.now();
    const closes: Array<Promise<void>> = [];
    for (let i = 0; i < cars.length; i++) {
      const due = started + (cars.length > 1 ? (spreadMs * i) / (cars.length - 1) : 0);
      const wait = Math.min(due, deadline) - Date.now();
      // One timer per batch of cars due within the same few milliseconds, not one per car.
      if (wait > DRAIN_TICK_MS) await new Promise((resolve) => setTimeout(resolve, wait));
      const car = cars[i]!;
      if (car.isOpen) closes.push(car.closeWhenAnswered(deadline, CLOSE_GOING_AWAY, 'server shutting down'));
    }
    await Promise.all(closes);
  }

  close(): void {
    this.stopAccepting();
    this.closeAll();
    this.tls.close();
  }

  private identify(res: HttpResponse, operatorCas: readonly X509Certificate[]): IdentityResult {
    let pem: string;
    try {
      pem = clientCertificatePem(res);
    } catch (error) {
      return { ok: false, reason: 'unparseable_certificate', detail: (error as Error).message };
    }
    return identifyDevice(pem, operatorCas);
  }

  private refuse(res: HttpResponse, result: Extract<IdentityResult, { ok: false }>): void {
    this.options.metrics.connectionAttempts.inc({ result: 'refused' });
    this.options.metrics.connectionRefusals.inc({ reason: result.reason });
    this.options.logger.warn({ reason: result.reason, detail: result.detail }, 'vehicle_refused');
    res.cork(() => {
      res.writeStatus(result.reason === 'no_certificate' ? '401 Unauthorized' : '403 Forbidden');
      res.writeHeader('Content-Type', 'text/plain');
      res.end(`client certificate refused: ${result.reason}\n`, true);
    });
  }

  private routes(app: TemplatedApp, generation: Generation, operatorCas: readonly X509Certificate[]): void {
    const { metrics, logger, registry } = this.options;
    const boundary = this.boundary;
    const failed = (res: HttpResponse) => () => res.cork(() => res.writeStatus('500 Internal Server Error').end('internal error\n'));
    const maxSockets = this.options.maxSockets ?? Number.POSITIVE_INFINITY;
    const firstFrameMs = (this.options.firstFrameTimeoutSeconds ?? 0) * 1000;

    app.get(PUBLIC_KEY_PATH, (res) => {
      // The one route open to anyone: Tesla fetches the app's public key here without a client certificate.
      boundary.run('http', () => {
        const pem = this.options.publicKeyPem;
        res.cork(() => {
          if (pem === null) {
            res.writeStatus('404 Not Found').end('no public key configured (TESLA_PUBLIC_KEY_FILE)\n');
          } else {
            res.writeHeader('Content-Type', 'application/x-pem-file').end(pem);
          }
        });
      }, failed(res));
    });

    app.get(STATUS_PATH, (res) => {
      boundary.run('http', () => {
        const result = this.identify(res, operatorCas);
        if (!result.ok) return this.refuse(res, result);
        res.cork(() => res.end('mtls ok'));
      }, failed(res));
    });

    app.ws<SocketData>('/*', {
      // uWS buffers an unfinished message up to this, per socket: the frame limit plus the margin within
      // which an oversize frame is still read whole and answered (socket-caps.ts).
      maxPayloadLength: maxPayloadFor(this.options.maxFrameBytes),
      idleTimeout: this.options.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      maxBackpressure: this.options.maxBackpressureBytes,
      closeOnBackpressureLimit: false,
      compression: uWS.DISABLED,

      upgrade: (res, req, context) => boundary.run('upgrade', () => {
        if (this.draining) {
          res.cork(() => res.writeStatus('503 Service Unavailable').end('shutting down\n'));
          return;
        }
        const result = this.identify(res, operatorCas);
        if (!result.ok) return this.refuse(res, result);
        if (this.connections.size >= maxSockets) {
          metrics.connectionAttempts.inc({ result: 'refused' });
          metrics.connectionRefusals.inc({ reason: 'too_many_sockets' });
          logger.warn({ openConnections: this.connections.size, maxSockets }, 'vehicle_refused_socket_cap');
          res.cork(() => res.writeStatus('503 Service Unavailable').writeHeader('Retry-After', '30').end('too many vehicle connections (VEHICLE_MAX_SOCKETS)\n'));
          return;
        }
        const connection = new UwsVehicleConnection(
          connectionIdFrom(req.getHeader('x-txid')),
          result.identity.deviceId,
          result.identity.kind,
          networkInterfaceFrom(req.getHeader('x-network-interface')),
          clientVersionFrom(req.getHeader('version')),
          metrics,
        );
        const data: SocketData = {
          connection,
          actor: null,
          budget: frameBudgetFor(this.options.maxFramesPerSecond, this.now()),
          rateLimited: false,
          firstFrameTimer: null,
        };
        // Inside uWS's call for this request, never later from a promise: an upgrade made later can lose
        // the fresh socket to uWS's cork() (uNetworking/uWebSockets#1928; see DashboardListener).
        res.cork(() => {
          res.upgrade(
            data,
            req.getHeader('sec-websocket-key'),
            req.getHeader('sec-websocket-protocol'),
            req.getHeader('sec-websocket-extensions'),
            context,
          );
        });
      }, failed(res)),

      open: (ws) => boundary.run('open', () => {
        const data = ws.getUserData();
        const connection = data.connection!; // made at the upgrade
        connection.attach(ws);
        this.connections.add(connection);
        this.tls.opened(generation);
        // A car needs wifi + cellular + one reconnecting; past that the oldest socket is the stale one.
        const evicted = this.perVin.add(connection.vin, connection);
        if (evicted !== null) {
          logger.warn({ vin: connection.vin, connectionId: evicted.connectionId }, 'vehicle_socket_replaced');
          evicted.closeFor('replaced', CLOSE_POLICY_VIOLATION, 'too many connections for this vehicle: replaced by a newer one');
        }
        data.actor = registry.connectionOpened(connection);
        metrics.connectionAttempts.inc({ result: 'accepted' });
        if (firstFrameMs > 0) {
          data.firstFrameTimer = setTimeout(boundary.wrap('timer', () => {
            data.firstFrameTimer = null;
            logger.warn({ vin: connection.vin, connectionId: connection.connectionId }, 'vehicle_first_frame_timeout');
            connection.closeFor('first_frame_timeout', CLOSE_POLICY_VIOLATION, 'no complete frame in time');
          }), firstFrameMs);
          data.firstFrameTimer.unref();
        }
        logger.info(
          { vin: connection.vin, kind: connection.kind, connectionId: connection.connectionId, networkInterface: connection.networkInterface, clientVersion: connection.clientVersion },
          'vehicle_connected',
        );
      }, () => ws.end(CLOSE_INTERNAL_ERROR, 'internal error')),

      message: (ws, message, isBinary) => {
        // Inline rather than boundary.run: no closure per frame on the hot path; a try costs nothing in V8.
        try {
          this.onMessage(ws, message, isBinary);
        } catch (error) {
          boundary.caught('message', error);
          try {
            ws.end(CLOSE_INTERNAL_ERROR, 'internal error');
          } catch {
            // already closed
          }
        }
      },

      close: (ws, code) => boundary.run('close', () => {
        const data = ws.getUserData();
        if (data.firstFrameTimer !== null) {
          clearTimeout(data.firstFrameTimer);
          data.firstFrameTimer = null;
        }
        const connection = data.connection;
        if (connection === null || !connection.attached) return;
        connection.isOpen = false;
        this.connections.delete(connection);
        this.tls.closed(generation);
        this.perVin.remove(connection.vin, connection);
        metrics.disconnects.inc({ reason: connection.closedFor ?? closeReason(code) });
        registry.connectionClosed(connection);
        logger.info({ vin: connection.vin, connectionId: connection.connectionId, code }, 'vehicle_disconnected');
      }),
    });

    app.any('/*', (res) => boundary.run('http', () => {
      const result = this.identify(res, operatorCas);
      if (!result.ok) return this.refuse(res, result);
      res.cork(() => res.writeStatus('426 Upgrade Required').end('vehicles connect with a WebSocket upgrade\n'));
    }, failed(res)));
  }

  private onMessage(ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const { metrics, logger, registry, pool } = this.options;
    const data = ws.getUserData();
    if (data.firstFrameTimer !== null) {
      clearTimeout(data.firstFrameTimer);
      data.firstFrameTimer = null;
    }
    const connection = data.connection;
    const actor = data.actor;
    if (connection === null || actor === null) return;
    if (!isBinary) {
      // The reference closes on text frames: only binary frames carry data.
      metrics.decodeErrors.inc({ kind: 'text_frame' });
      ws.end(CLOSE_UNSUPPORTED_DATA, 'binary frames only');
      return;
    }
    // Its turn in the drain came: not acked, the car keeps the frame and resends it after reconnecting.
    if (connection.closing) return;
    // One clock read per frame: the arrival for the ack latency, and the epoch ms stamp derived from it.
    const arrivedAt = performance.now();
    const receivedAt = this.arrivals !== null ? this.arrivals.epochMs(arrivedAt) : this.now();
    const frameBytes = message.byteLength;
    metrics.framesCell.inc();
    metrics.frameBytesCell.inc(frameBytes);
    registry.heardFrom(actor, receivedAt);
    if (data.budget !== null && !data.budget.take(receivedAt)) {
      // Dropped before any copy or decode, and not answered: an error reply would make the car discard
      // the data, and closing would cost a TLS handshake per reconnect. Unacked, a car with
      // delivery_policy latest keeps the frame and resends it; other cars never wait on this one.
      metrics.framesRateLimited.inc();
      if (!data.rateLimited) {
        data.rateLimited = true;
        logger.warn({ vin: connection.vin, connectionId: connection.connectionId, maxFramesPerSecond: this.options.maxFramesPerSecond }, 'vehicle_rate_limited');
      }
      return;
    }
    if (frameBytes > this.options.maxFrameBytes) {
      metrics.framesOversize.inc();
      // Answered on the next turn, like every other reply: a send from inside the handler of a large
      // message, with more of the car's data already buffered, made uWS drop the connection (1006).
      connection.awaitingReply++;
      setImmediate(this.boundary.wrap('deferred', () => connection.sendReply(writeErrorReply(EMPTY_TXID), 'error', null)));
      return;
    }
    // No object per frame: the socket's data goes with it (its connection and actor), its numbers in the pool's columns.
    const seq = actor.nextFrame(receivedAt);
    connection.awaitingReply++;
    pool.submit(message, connection.vin, receivedAt, data, seq, arrivedAt);
  }
}

function closeReason(code: number): string {
  switch (code) {
    case 1000: return 'normal';
    case 1001: return 'going_away';
    case 1003: return 'unsupported_data';
    case 1006: return 'abnormal';
    case 1008: return 'policy';
    case 1009: return 'too_big';
    default: return code >= 4000 ? 'application' : 'other';
  }
}

