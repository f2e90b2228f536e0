import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { MESSAGE_TYPE_STREAM, MESSAGE_TYPE_STREAM_ACK, readEnvelope, writeStreamEnvelope } from '../protocol/envelope.js';

export interface CarClientOptions {
  /** e.g. wss://localhost:4443/ */
  url: string;
  vin: string;
  certPem: string | Buffer;
  keyPem: string | Buffer;
  /** The chain the car trusts for the server (the `ca` of its telemetry config). */
  caPem: string | Buffer;
  servername?: string;
  networkInterface?: 'wifi' | 'cellular';
  /** The car's connection id header; a real car sends a UUID. */
  connectionTxid?: string;
  clientVersion?: string;
  /** Bind the client socket to a local address (spreads many cars over 127.x.y.z). */
  localAddress?: string;
  handshakeTimeoutMs?: number;
}

export interface CarReply {
  /** `closed`: the connection went away before a reply came. */
  kind: 'ack' | 'error' | 'other' | 'closed';
  txid: string;
  topic: string;
  /** The error reply's text (`incorrect message format`), '' otherwise. */
  errorText: string;
  /** Milliseconds from send to reply. */
  latencyMs: number;
}

interface PendingFrame {
  txid: string;
  topic: string;
  sentAt: number;
  resolve: (reply: CarReply) => void;
}

const latin1 = new TextDecoder('latin1');

/**
 * A car as the server sees one: mutual TLS with its own client certificate, binary envelope frames with
 * Tesla-shaped txids, one reply expected per frame. Used by the demo, the tests and the load harness.
 */
export class CarClient {
  readonly vin: string;
  private readonly socket: WebSocket;
  private readonly txidPrefix = randomBytes(11).toString('hex');
  private sequence = 0;
  private readonly pending = new Map<string, PendingFrame>();
  private readonly order: PendingFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(vin: string, socket: WebSocket) {
    this.vin = vin;
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.failPending();
        resolve({ code, reason: reason.toString() });
      });
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.onReply(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  static connect(options: CarClientOptions): Promise<CarClient> {
    const headers: Record<string, string> = {};
    if (options.connectionTxid) headers['X-TXID'] = options.connectionTxid;
    if (options.networkInterface) headers['X-Network-Interface'] = options.networkInterface;
    if (options.clientVersion) headers.Version = options.clientVersion;
    // ws hands these to tls.connect; its types omit `servername`, which it does honour.
    const tlsOptions: WebSocket.ClientOptions & { servername?: string } = {
      cert: options.certPem,
      key: options.keyPem,
      ca: options.caPem,
      servername: options.servername,
      headers,
      localAddress: options.localAddress,
      handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false,
    };
    const socket = new WebSocket(options.url, tlsOptions);
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      socket.once('error', onError);
      socket.once('unexpected-response', (_req, res) => {
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
        res.resume();
      });
      socket.once('open', () => {
        socket.off('error', onError);
        socket.on('error', () => {});
        resolve(new CarClient(options.vin, socket));
      });
    });
  }

  /** A txid shaped like a car's: 22 hex chars, '-', 9-digit sequence. */
  nextTxid(): string {
    this.sequence++;
    return `${this.txidPrefix}-${String(this.sequence).padStart(9, '0')}`;
  }

  /** Wrap a protobuf payload in a stream envelope and send it; resolves with the server's reply. */
  sendRecord(topic: string, payload: Uint8Array, txid = this.nextTxid()): Promise<CarReply> {
    const frame = writeStreamEnvelope({
      txid,
      topic,
      payload,
      messageId: randomBytes(8).toString('hex'),
      createdAt: Math.floor(Date.now() / 1000),
      deviceType: 'vehicle_device',
      deviceId: this.vin,
      deliveredAtEpochMs: BigInt(Date.now()),
    });
    return this.sendFrame(frame, txid, topic);
  }

  /**
   * Send any bytes. `txid`/`topic` say which reply answers it; a frame the server cannot read at all is
   * answered with an empty txid, which matches the oldest frame still waiting.
   */
  sendFrame(frame: Uint8Array, txid: string, topic: string): Promise<CarReply> {
    return new Promise((resolve, reject) => {
      if (this.socket.readyState !== WebSocket.OPEN) {
        reject(new Error('socket is not open'));
        return;
      }
      const pending: PendingFrame = { txid, topic, sentAt: performance.now(), resolve };
      if (txid !== '') this.pending.set(txid, pending);
      this.order.push(pending);
      this.socket.send(frame, { binary: true });
    });
  }

  sendText(text: string): void {
    this.socket.send(text, { binary: false });
  }

  get pendingReplies(): number {
    return this.order.length;
  }

  close(code = 1000): Promise<{ code: number; reason: string }> {
    this.socket.close(code);
    return this.closed;
  }

  /** Drop the TCP connection without a close frame, as a car losing signal does. */
  terminate(): void {
    this.socket.terminate();
  }

  private onReply(bytes: Uint8Array): void {
    let kind: CarReply['kind'] = 'other';
    let txid = '';
    let topic = '';
    let errorText = '';
    try {
      const envelope = readEnvelope(bytes);
      txid = latin1.decode(envelope.txid);
      topic = latin1.decode(envelope.topic);
      if (envelope.messageType === MESSAGE_TYPE_STREAM_ACK) kind = 'ack';
      else if (envelope.messageType === MESSAGE_TYPE_STREAM && envelope.stream !== null) {
        kind = 'error';
        errorText = latin1.decode(envelope.stream.payload);
      }
    } catch {
      kind = 'other';
    }
    let pending = txid !== '' ? this.pending.get(txid) : undefined;
    if (pending === undefined) pending = this.order[0];
    if (pending === undefined) return;
    this.pending.delete(pending.txid);
    const index = this.order.indexOf(pending);
    if (index !== -1) this.order.splice(index, 1);
    pending.resolve({ kind, txid, topic, errorText, latencyMs: performance.now() - pending.sentAt });
  }

  private failPending(): void {
    for (const pending of this.order) {
      pending.resolve({ kind: 'closed', txid: pending.txid, topic: pending.topic, errorText: '', latencyMs: NaN });
    }
    this.order.length = 0;
    this.pending.clear();
  }
}
