import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import {
  INCORRECT_MESSAGE_FORMAT,
  MESSAGE_TYPE_STREAM,
  MESSAGE_TYPE_STREAM_ACK,
  readEnvelope,
  writeStreamEnvelope,
} from '../../../src/protocol/envelope.js';
import type { CarClientOptions } from '../../../src/sim/car-client.js';

const latin1 = new TextDecoder('latin1');

interface Sent {
  sentAt: number;
  replies: number;
  kind: 'ack' | 'error' | null;
}

/**
 * A car that keeps books: every frame it sent by txid, every reply it got, and anything that should never
 * happen (a second reply for one txid, a reply for a txid it never sent, a reply that does not parse).
 * `acked + errored + unanswered === sent` is the robustness suites' "nothing lost" check: an unanswered
 * frame is one the car still holds and will resend.
 */
export class CountingCar {
  private readonly socket: WebSocket;
  private readonly prefix = randomBytes(11).toString('hex');
  private seq = 0;
  private readonly sent = new Map<string, Sent>();
  /** Raw reply bytes in arrival order (for tests that compare replies byte for byte). */
  readonly rawReplies: Uint8Array[] = [];
  acked = 0;
  errored = 0;
  duplicates = 0;
  strayReplies = 0;
  unreadableReplies = 0;
  worstLatencyMs = 0;
  readonly latencies: number[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  isOpen = true;
  private waiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.isOpen = false;
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.onReply(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  static connect(options: CarClientOptions, timeoutMs = 10_000): Promise<CountingCar> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(options.url, {
        cert: options.certPem,
        key: options.keyPem,
        ca: options.caPem,
        servername: options.servername,
        handshakeTimeout: timeoutMs,
        headers: { 'X-Network-Interface': options.networkInterface ?? 'wifi' },
      } as WebSocket.ClientOptions);
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
      });
      socket.once('open', () => {
        socket.off('error', reject);
        socket.on('error', () => {});
        resolve(new CountingCar(socket));
      });
    });
  }

  nextTxid(): string {
    return `${this.prefix}-${String(++this.seq).padStart(9, '0')}`;
  }

  get sentCount(): number {
    return this.sent.size;
  }

  get unanswered(): number {
    return this.sent.size - this.acked - this.errored;
  }

  /** Sends a stream envelope; false when the socket was already closed (the car keeps the record). */
  sendRecord(topic: string, payload: Uint8Array): boolean {
    const txid = this.nextTxid();
    return this.sendFrame(writeStreamEnvelope({ txid, topic, payload, createdAt: Math.floor(Date.now() / 1000) }), txid);
  }

  /** Sends raw bytes; `txid` is what the reply will be matched on ('' for frames without one). */
  sendFrame(frame: Uint8Array, txid: string): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    if (txid !== '') this.sent.set(txid, { sentAt: performance.now(), replies: 0, kind: null });
    this.socket.send(frame, { binary: true });
    return true;
  }

  sendText(text: string): void {
    this.socket.send(text, { binary: false });
  }

  /** Resolves once `count` replies arrived in all, or the socket closed, or the time is up. */
  async waitForReplies(count: number, timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.rawReplies.length < count && this.isOpen && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, until - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.rawReplies.length >= count;
  }

  /** Waits until every frame sent so far is answered (or the socket closed / time is up). */
  waitForAll(timeoutMs: number): Promise<boolean> {
    return this.waitForReplies(this.rawReplies.length + this.unanswered, timeoutMs).then(() => this.unanswered === 0);
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.isOpen) this.socket.close(1000);
    return this.closed;
  }

  terminate(): void {
    this.socket.terminate();
  }

  private onReply(bytes: Uint8Array): void {
    this.rawReplies.push(bytes.slice());
    let kind: 'ack' | 'error';
    let txid: string;
    try {
      const envelope = readEnvelope(bytes);
      txid = latin1.decode(envelope.txid);
      if (envelope.messageType === MESSAGE_TYPE_STREAM_ACK) kind = 'ack';
      else if (envelope.messageType === MESSAGE_TYPE_STREAM && envelope.stream !== null && latin1.decode(envelope.stream.payload) === INCORRECT_MESSAGE_FORMAT) kind = 'error';
      else throw new Error('neither an ack nor an error reply');
    } catch {
      this.unreadableReplies++;
      this.wake();
      return;
    }
    const frame = this.sent.get(txid);
    if (frame === undefined) {
      this.strayReplies++;
    } else if (++frame.replies > 1) {
      this.duplicates++;
    } else {
      frame.kind = kind;
      if (kind === 'ack') this.acked++;
      else this.errored++;
      const latency = performance.now() - frame.sentAt;
      this.latencies.push(latency);
      if (latency > this.worstLatencyMs) this.worstLatencyMs = latency;
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
