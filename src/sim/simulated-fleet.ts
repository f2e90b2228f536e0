import { readFileSync } from 'node:fs';
import { encodeVehicleAlerts, encodeVehicleData } from '../protocol/payload-encoder.js';
import { CarClient, type CarReply } from './car-client.js';
import { VehicleStory } from './vehicle-story.js';

export interface SimulatedFleetOptions {
  /** wss://host:port/ of the vehicle listener. */
  url: string;
  servername: string;
  vins: string[];
  certFile(vin: string): string;
  keyFile(vin: string): string;
  caChainFile: string;
  /** Frames per second per car (V records). */
  rate: number;
  onReply?(vin: string, reply: CarReply): void;
  onEvent?(vin: string, event: 'connected' | 'disconnected' | 'connect_failed', detail?: string): void;
}

export interface FleetStats {
  sent: number;
  acked: number;
  errors: number;
  resent: number;
  connected: number;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * Cars that behave like Tesla's: one socket each, V records on a timer with the occasional alert,
 * unacked frames kept and re-sent with `is_resend` after a reconnect, and reconnects with exponential
 * backoff up to 30 s.
 */
export class SimulatedFleet {
  readonly stats: FleetStats = { sent: 0, acked: 0, errors: 0, resent: 0, connected: 0 };
  private readonly cars: SimulatedCar[];

  constructor(options: SimulatedFleetOptions) {
    const caPem = readFileSync(options.caChainFile);
    this.cars = options.vins.map((vin, index) => new SimulatedCar(vin, index, caPem, options, this.stats));
  }

  start(): void {
    for (const car of this.cars) car.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.cars.map((car) => car.stop()));
  }
}

interface Unacked {
  topic: string;
  payload: Uint8Array;
}

class SimulatedCar {
  private client: CarClient | null = null;
  private readonly story: VehicleStory;
  private timer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private backoffMs = 500;
  private stopped = false;
  private readonly unacked = new Map<string, Unacked>();
  private readonly certPem: Buffer;
  private readonly keyPem: Buffer;

  constructor(
    readonly vin: string,
    index: number,
    private readonly caPem: Buffer,
    private readonly options: SimulatedFleetOptions,
    private readonly stats: FleetStats,
  ) {
    this.story = new VehicleStory({ seed: index + 1 });
    this.certPem = readFileSync(options.certFile(vin));
    this.keyPem = readFileSync(options.keyFile(vin));
  }

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.client) await this.client.close(1000).catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      const client = await CarClient.connect({
        url: this.options.url,
        servername: this.options.servername,
        vin: this.vin,
        certPem: this.certPem,
        keyPem: this.keyPem,
        caPem: this.caPem,
        networkInterface: 'wifi',
        clientVersion: '1.0.0',
      });
      if (this.stopped) {
        await client.close();
        return;
      }
      this.client = client;
      this.backoffMs = 500;
      this.stats.connected++;
      this.options.onEvent?.(this.vin, 'connected');
      this.resendUnacked(client);
      this.timer = setInterval(() => this.sendTick(client), 1000 / this.options.rate);
      void client.closed.then(() => this.onClosed());
    } catch (error) {
      this.options.onEvent?.(this.vin, 'connect_failed', (error as Error).message);
      this.scheduleReconnect();
    }
  }

  private onClosed(): void {
    this.stats.connected--;
    this.client = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.options.onEvent?.(this.vin, 'disconnected');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = this.backoffMs * (0.5 + Math.random() / 2);
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private sendTick(client: CarClient): void {
    const payload = encodeVehicleData({ vin: this.vin, createdAt: new Date(), data: this.story.next() });
    this.send(client, 'V', payload);
    const alert = this.story.maybeAlert();
    if (alert) this.send(client, 'alerts', encodeVehicleAlerts({ vin: this.vin, createdAt: new Date(), alerts: [alert] }));
  }

  private send(client: CarClient, topic: string, payload: Uint8Array): void {
    const txid = client.nextTxid();
    this.unacked.set(txid, { topic, payload });
    this.stats.sent++;
    client.sendRecord(topic, payload, txid).then(
      (reply) => this.onReply(txid, reply),
      () => undefined,
    );
  }

  private onReply(txid: string, reply: CarReply): void {
    if (reply.kind === 'closed') return; // kept in unacked: re-sent after reconnecting
    this.unacked.delete(txid);
    if (reply.kind === 'ack') this.stats.acked++;
    else this.stats.errors++;
    this.options.onReply?.(this.vin, reply);
  }

  /** What a car does after reconnecting: deliver what was never acked, flagged as a resend. */
  private resendUnacked(client: CarClient): void {
    const backlog = [...this.unacked.values()];
    this.unacked.clear();
    for (const item of backlog) {
      const payload = item.topic === 'V' ? markResend(item.payload) : item.payload;
      this.stats.resent++;
      this.send(client, item.topic, payload);
    }
  }
}

/**
 * `is_resend` is field 4 (bool) of Payload: appending it to the encoded message sets it (protobuf's
 * last-value-wins rule) without decoding and re-encoding.
 */
function markResend(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength + 2);
  out.set(payload);
  out[payload.byteLength] = (4 << 3) | 0;
  out[payload.byteLength + 1] = 1;
  return out;
}
