/**
 * One car socket, as the actors see it. The vehicle listener implements it over a uWS WebSocket; the
 * actor never touches uWS directly, which keeps it testable and lets replies be dropped safely once a
 * socket has closed (uWS throws on a closed socket).
 */
export interface VehicleConnection {
  /** The car's X-TXID header when it is a UUID, otherwise one we made. */
  readonly connectionId: string;
  readonly vin: string;
  /** `wifi` / `cellular` from X-Network-Interface, '' when absent. */
  readonly networkInterface: string;
  /** The car's client version header, '' when absent. */
  readonly clientVersion: string;
  readonly connectedAt: number;
  /**
   * Queue one binary reply. Replies queued in one turn are written together, in order, in one cork (one
   * TLS write); each is counted when written: replies_total{kind} and, with `arrivedAt`
   * (performance.now() of its frame), the ack latency, or replies_dropped_total{reason} when the socket
   * had closed or uWS dropped it under backpressure. `reply` must stay unchanged until then.
   */
  sendReply(reply: Uint8Array, kind: 'ack' | 'error', arrivedAt: number | null): void;
  readonly isOpen: boolean;
}
