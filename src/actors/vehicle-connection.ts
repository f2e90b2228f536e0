/**
 * One car socket, as the actors see it. The vehicle listener implements it over a uWS WebSocket; the
 * actor never touches uWS directly, which keeps it testable and lets replies be dropped safely once a
 * socket has closed (uWS throws on a closed socket).
 */
export interface VehicleConnection {
  /** The car's X-TXID header when it sent one (a UUID), otherwise one we made. */
  readonly connectionId: string;
  readonly vin: string;
  /** `wifi` / `cellular` from X-Network-Interface, '' when absent. */
  readonly networkInterface: string;
  /** The car's client version header, '' when absent. */
  readonly clientVersion: string;
  readonly connectedAt: number;
  /** Write one binary reply; false when the socket is closed or the reply was dropped. */
  sendReply(reply: Uint8Array): boolean;
  readonly isOpen: boolean;
}
