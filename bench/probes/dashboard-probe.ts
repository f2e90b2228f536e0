import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { closeSocket } from '../net/close-socket.js';
import { LatencyRecorder, type LatencySummary } from '../stats/latency.js';

export interface ProbeOptions {
  /** wss://host:port */
  baseUrl: string;
  servername: string;
  caChainPem: string;
  jwtSecret: string;
  /** One list of VINs per dashboard. */
  watches: string[][];
  /** How long to wait for every snapshot. */
  readyTimeoutMs: number;
}

export interface ProbeReport {
  dashboards: number;
  /** Records of car topics (V, alerts, errors) received, over all dashboards. */
  received: number;
  /** car send -> dashboard receive, V records that were not resends. */
  latency: LatencySummary;
  /** Dashboards whose socket closed before the end. */
  closedEarly: number;
  errors: string[];
}

const CAR_TOPICS = new Set(['V', 'alerts', 'errors']);

/**
 * Dashboards as a browser would open them: a JWT in the query string, one subscribe for their VINs, a
 * snapshot per VIN, then a `record` message per record. Each V record's payload createdAt (the car
 * stamps it with milliseconds right before sending) gives the car -> dashboard latency.
 */
export class DashboardProbes {
  private readonly sockets: WebSocket[] = [];
  /** Per dashboard: VIN -> car-topic records received. */
  private readonly receivedByVin: Map<string, number>[] = [];
  private readonly latency = new LatencyRecorder();
  private received = 0;
  private closedEarly = 0;
  private closing = false;
  private readonly errors: string[] = [];

  constructor(private readonly options: ProbeOptions) {}

  /** Opens every dashboard and resolves when each has had the snapshot of every VIN it watches. */
  async open(): Promise<void> {
    const secret = new TextEncoder().encode(this.options.jwtSecret);
    await Promise.all(
      this.options.watches.map(async (vins, index) => {
        // One subject per probe: the server caps sockets per subject (DASHBOARD_MAX_SOCKETS_PER_SUBJECT).
        const token = await new SignJWT({ vins }).setProtectedHeader({ alg: 'HS256' }).setSubject(`bench-probe-${index}`).setIssuedAt().setExpirationTime('4h').sign(secret);
        await this.openOne(index, vins, token);
      }),
    );
  }

  private openOne(index: number, vins: string[], token: string, attempt = 1): Promise<void> {
    const counts = this.receivedByVin[index] ?? new Map<string, number>(vins.map((vin) => [vin, 0]));
    this.receivedByVin[index] = counts;
    const url = `${this.options.baseUrl}/dashboard?access_token=${encodeURIComponent(token)}`;
    const socket = new WebSocket(url, { ca: this.options.caChainPem, servername: this.options.servername, perMessageDeflate: false } as WebSocket.ClientOptions);
    this.sockets.push(socket);
    const pendingSnapshots = new Set(vins);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`dashboard ${index}: ${pendingSnapshots.size} of ${vins.length} snapshots missing after ${this.options.readyTimeoutMs} ms`)),
        this.options.readyTimeoutMs,
      );
      socket.once('open', () => socket.send(JSON.stringify({ type: 'subscribe', vins })));
      // 'close' follows every 'error' and decides what happens next.
      socket.on('error', (error) => this.note(`dashboard: ${error.message}`));
      socket.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        res.resume();
        reject(new Error(`dashboard upgrade refused: HTTP ${res.statusCode}`));
      });
      socket.on('close', (code, reason) => {
        if (this.closing) return;
        this.closedEarly++;
        this.note(`dashboard closed by the server: ${code} ${reason.toString()}`);
        if (pendingSnapshots.size > 0) {
          clearTimeout(timer);
          // A browser would reconnect; so does a probe, once. The close stays in the report's notes.
          if (attempt < 2) this.openOne(index, vins, token, attempt + 1).then(resolve, reject);
          else reject(new Error(`dashboard ${index} closed before its snapshots arrived: ${code} ${reason.toString()}`));
        }
      });
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return;
        const text = data.toString('utf8');
        if (text.startsWith('{"type":"record"') || text.includes('"type":"record"')) {
          this.onRecord(text, counts);
          return;
        }
        const kind = stringField(text, 'type');
        if (kind === 'snapshot') {
          const vin = stringField(text, 'vin');
          if (vin !== null && pendingSnapshots.delete(vin) && pendingSnapshots.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        } else if (kind === 'error') {
          this.note(`dashboard error message: ${text.slice(0, 200)}`);
        }
      });
    });
  }

  private onRecord(text: string, counts: Map<string, number>): void {
    const topic = stringField(text, 'topic');
    if (topic === null || !CAR_TOPICS.has(topic)) return;
    const vin = stringField(text, 'vin');
    if (vin === null) return;
    const now = Date.now();
    this.received++;
    counts.set(vin, (counts.get(vin) ?? 0) + 1);
    if (topic !== 'V' || text.includes('"isResend":true')) return;
    // The payload's createdAt comes after its data, so the last one in the message is the record's.
    const at = text.lastIndexOf('"createdAt":"');
    if (at === -1) return;
    const end = text.indexOf('"', at + 13);
    const sentAt = Date.parse(text.slice(at + 13, end));
    if (!Number.isNaN(sentAt)) this.latency.recordMs(now - sentAt);
  }

  resetLatency(): void {
    this.latency.reset();
  }

  /** Records still missing on the dashboards, given how many each VIN had acked. */
  missing(ackedByVin: Map<string, number>): number {
    let missing = 0;
    for (const counts of this.receivedByVin) {
      for (const [vin, received] of counts) missing += Math.max(0, (ackedByVin.get(vin) ?? 0) - received);
    }
    return missing;
  }

  /** How many records the dashboards should have, given how many each VIN had acked. */
  expected(ackedByVin: Map<string, number>): number {
    let expected = 0;
    for (const counts of this.receivedByVin) for (const vin of counts.keys()) expected += ackedByVin.get(vin) ?? 0;
    return expected;
  }

  report(): ProbeReport {
    return { dashboards: this.options.watches.length, received: this.received, latency: this.latency.summary(), closedEarly: this.closedEarly, errors: [...this.errors] };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.sockets.map((socket) => closeSocket(socket)));
  }

  private note(message: string): void {
    if (this.errors.length < 5 && !this.errors.includes(message)) this.errors.push(message);
  }
}

/** The first `"name":"value"` in a JSON text, for the few top-level strings a probe needs without parsing megabytes. */
function stringField(text: string, name: string): string | null {
  const key = `"${name}":"`;
  const at = text.indexOf(key);
  if (at === -1) return null;
  const end = text.indexOf('"', at + key.length);
  return end === -1 ? null : text.slice(at + key.length, end);
}

/** Dashboard d watches `perDashboard` consecutive cars starting at d * perDashboard (wrapping). */
export function dashboardWatches(vins: string[], dashboards: number, perDashboard: number): string[][] {
  const k = Math.min(perDashboard, vins.length);
  return Array.from({ length: dashboards }, (_, d) => Array.from({ length: k }, (_, i) => vins[(d * k + i) % vins.length]!));
}
