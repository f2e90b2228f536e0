import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import WebSocket from 'ws';
import { MESSAGE_TYPE_STREAM_ACK, readEnvelope } from '../../src/protocol/envelope.js';
import { closeSocket } from '../net/close-socket.js';
import { CarTalk, envelopeOf, markedAsResend, type CarRecord } from './frames.js';

/** What a car does while connected. */
export type CarMode =
  /** Connected, silent. */
  | { kind: 'idle' }
  /** One record right after connecting (connect storm: "connected and acked"). */
  | { kind: 'once' }
  /** A tick of records every `intervalMs`, as a car with a 1/rate s interval config. */
  | { kind: 'steady'; intervalMs: number }
  /** Keep `window` records in flight, sending the next as each reply comes back (saturation). */
  | { kind: 'pipelined'; window: number };

/** Counters shared by all cars of one thread; summed across threads by the fleet. */
export interface CarCounters {
  /** Distinct records the cars produced (resends not counted again). */
  sent: number;
  /** Transmissions of records already sent once, after a reconnect (with `is_resend` on V). */
  resent: number;
  /** Distinct records acked. */
  acked: number;
  /** Error replies ("incorrect message format"): the server refused a record. */
  errorReplies: number;
  /** Sockets open now. */
  connected: number;
  /** Successful connects, including reconnects. */
  connects: number;
  connectFailures: number;
  /** Connections lost without the car closing them. */
  disconnects: number;
  /** Cars that had a record acked since their first connect. */
  readyCars: number;
  /** Epoch ms of the latest first ack (when the last car became ready). */
  lastReadyAt: number;
}

export function emptyCounters(): CarCounters {
  return { sent: 0, resent: 0, acked: 0, errorReplies: 0, connected: 0, connects: 0, connectFailures: 0, disconnects: 0, readyCars: 0, lastReadyAt: 0 };
}

export interface CarEnvironment {
  url: string;
  servername: string;
  counters: CarCounters;
  recordAckLatency(ms: number): void;
  /** The first error a car meets is worth showing; the rest only count. */
  noteError(message: string): void;
}

interface InFlight {
  record: CarRecord;
  sentAt: number;
}

const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** A car buffers this many records while offline (Tesla's figure); older ones are dropped first. */
const OFFLINE_BUFFER = 5000;
/** Saturation cars cycle through this many pre-encoded ticks, so encoding does not limit the sender. */
const PIPELINE_RING = 32;
const latin1 = new TextDecoder('latin1');

/**
 * A simulated car: its own client certificate over mutual TLS, Tesla-shaped txids, every record kept
 * until acked; what was in flight when the socket dropped is re-sent (flagged `is_resend`) after a
 * reconnect with exponential backoff up to 30 s.
 */
export class BenchCar {
  private socket: WebSocket | null = null;
  private mode: CarMode = { kind: 'idle' };
  private readonly talk: CarTalk;
  private readonly txidPrefix = randomBytes(11).toString('hex');
  private sequence = 0;
  private readonly inFlight = new Map<string, InFlight>();
  /** Records waiting for a connection: produced while offline, or in flight when it dropped. */
  private backlog: CarRecord[] = [];
  private ring: CarRecord[] | null = null;
  private ringAt = 0;
  private tickTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private backoffMs = FIRST_BACKOFF_MS;
  private stopped = false;
  private ready = false;
  private sentOnce = false;

  constructor(
    readonly vin: string,
    seed: number,
    private readonly context: SecureContext,
    private readonly localAddress: string | undefined,
    private readonly env: CarEnvironment,
  ) {
    this.talk = new CarTalk(vin, seed);
  }

  /** Records produced and not yet acked (in flight plus waiting for a connection). */
  get unacked(): number {
    return this.inFlight.size + this.backlog.length;
  }

  /** Distinct records this car has had acked (dashboards should have seen as many). */
  acked = 0;

  /** Resolves once the first connect attempt has ended, either way (the car keeps retrying after a failure). */
  connect(): Promise<void> {
    return new Promise((resolve) => this.open(resolve));
  }

  setMode(mode: CarMode): void {
    this.mode = mode;
    if (this.tickTimer !== null) {
      clearInterval(this.tickTimer);
      clearTimeout(this.tickTimer);
      this.tickTimer = null;
    }
    if (mode.kind === 'steady') {
      // Cars do not tick in lockstep: each starts at its own point of the interval.
      this.tickTimer = setTimeout(() => {
        this.tick();
        this.tickTimer = setInterval(() => this.tick(), mode.intervalMs);
      }, Math.random() * mode.intervalMs);
    } else if (mode.kind === 'pipelined') {
      this.ring ??= Array.from({ length: PIPELINE_RING }, () => this.talk.tick()[0]);
      this.fillPipeline();
    } else if (mode.kind === 'once') {
      this.sendOnce();
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.setMode({ kind: 'idle' });
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    const socket = this.socket;
    if (socket === null) return Promise.resolve();
    return closeSocket(socket);
  }

  private open(attempted?: () => void): void {
    if (this.stopped) {
      attempted?.();
      return;
    }
    const socket = new WebSocket(this.env.url, {
      secureContext: this.context,
      servername: this.env.servername,
      localAddress: this.localAddress,
      headers: { 'X-Network-Interface': 'wifi', Version: '1.0.0', 'X-TXID': randomBytes(16).toString('hex') },
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
    } as WebSocket.ClientOptions);
    let opened = false;
    socket.on('open', () => {
      opened = true;
      this.socket = socket;
      this.backoffMs = FIRST_BACKOFF_MS;
      this.env.counters.connected++;
      this.env.counters.connects++;
      attempted?.();
      this.flushBacklog();
      if (this.mode.kind === 'once') this.sendOnce();
      else if (this.mode.kind === 'pipelined') this.fillPipeline();
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.onReply(data);
    });
    socket.on('error', (error) => {
      if (!opened) this.env.noteError(`connect: ${error.message}`);
    });
    socket.on('unexpected-response', (_req, res) => {
      this.env.noteError(`upgrade refused: HTTP ${res.statusCode}`);
      res.resume();
      socket.terminate();
    });
    socket.on('close', (code) => {
      if (!opened) {
        this.env.counters.connectFailures++;
        attempted?.();
      } else {
        this.socket = null;
        this.env.counters.connected--;
        if (!this.stopped) {
          this.env.counters.disconnects++;
          this.env.noteError(`disconnected with code ${code}`);
        }
        // Whatever was not acked goes again on the next connection, oldest first.
        const lost = [...this.inFlight.values()].map((f) => f.record);
        this.inFlight.clear();
        this.backlog = lost.concat(this.backlog);
      }
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = this.backoffMs * (0.5 + Math.random() / 2);
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private tick(): void {
    for (const record of this.talk.tick()) {
      this.env.counters.sent++;
      if (this.socket !== null) this.transmit(record, record.payload);
      else this.buffer(record);
    }
  }

  private sendOnce(): void {
    if (this.sentOnce || this.socket === null) return;
    this.sentOnce = true;
    const record = this.talk.tick()[0];
    this.env.counters.sent++;
    this.transmit(record, record.payload);
  }

  private fillPipeline(): void {
    if (this.mode.kind !== 'pipelined' || this.socket === null || this.ring === null) return;
    while (this.inFlight.size < this.mode.window) {
      const record = this.ring[this.ringAt]!;
      this.ringAt = (this.ringAt + 1) % this.ring.length;
      this.env.counters.sent++;
      this.transmit(record, record.payload);
    }
  }

  private buffer(record: CarRecord): void {
    this.backlog.push(record);
    if (this.backlog.length > OFFLINE_BUFFER) {
      this.backlog.shift();
      this.env.noteError('offline buffer overflowed: oldest record dropped');
    }
  }

  private flushBacklog(): void {
    const backlog = this.backlog;
    this.backlog = [];
    for (const record of backlog) {
      this.env.counters.resent++;
      this.transmit(record, markedAsResend(record));
    }
  }

  private transmit(record: CarRecord, payload: Uint8Array): void {
    this.sequence++;
    const sequence = String(this.sequence).padStart(9, '0');
    const txid = `${this.txidPrefix}-${sequence}`;
    const frame = envelopeOf(this.vin, txid, record.topic, payload, sequence);
    this.inFlight.set(txid, { record, sentAt: performance.now() });
    this.socket!.send(frame, { binary: true });
  }

  private onReply(data: Buffer): void {
    let txid: string;
    let isAck: boolean;
    try {
      const envelope = readEnvelope(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      txid = latin1.decode(envelope.txid);
      isAck = envelope.messageType === MESSAGE_TYPE_STREAM_ACK;
    } catch (error) {
      this.env.noteError(`unreadable reply: ${(error as Error).message}`);
      return;
    }
    const flight = this.inFlight.get(txid);
    if (flight === undefined) return; // a reply to a transmission of a previous connection
    this.inFlight.delete(txid);
    if (isAck) {
      this.env.counters.acked++;
      this.acked++;
      this.env.recordAckLatency(performance.now() - flight.sentAt);
      if (!this.ready) {
        this.ready = true;
        this.env.counters.readyCars++;
        this.env.counters.lastReadyAt = Date.now();
      }
    } else {
      this.env.counters.errorReplies++;
      this.env.noteError(`error reply for a ${flight.record.topic} record`);
    }
    if (this.mode.kind === 'pipelined') this.fillPipeline();
  }
}
