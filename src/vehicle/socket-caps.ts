/**
 * Bounds on what car sockets may hold, so one certificate cannot take the memory of the whole server.
 */

/**
 * uWS buffers an unfinished message up to maxPayloadLength per socket. Frames a little over
 * MAX_FRAME_BYTES are still read whole and answered with the error reply (the car then drops the record
 * instead of resending it for ever); anything past this margin costs the sender its connection.
 * WebSocket framing is not counted by uWS in the payload, hence no extra header allowance.
 */
export const OVERSIZE_ANSWERED_FRACTION = 0.25;

export function maxPayloadFor(maxFrameBytes: number): number {
  return Math.ceil(maxFrameBytes * (1 + OVERSIZE_ANSWERED_FRACTION));
}

/** Open sockets per VIN, oldest first; adding past the cap hands back the oldest to be closed. */
export class SocketsPerVin<S> {
  private readonly byVin = new Map<string, S[]>();

  constructor(private readonly cap: number) {
    if (!(cap >= 1)) throw new RangeError(`the per-VIN socket cap must be at least 1, got ${cap}`);
  }

  /** Records `socket`; returns the socket to close when the VIN is now over its cap, else null. */
  add(vin: string, socket: S): S | null {
    let list = this.byVin.get(vin);
    if (list === undefined) this.byVin.set(vin, (list = []));
    list.push(socket);
    return list.length > this.cap ? (list.shift() as S) : null;
  }

  remove(vin: string, socket: S): void {
    const list = this.byVin.get(vin);
    if (list === undefined) return;
    const at = list.indexOf(socket);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.byVin.delete(vin);
  }

  count(vin: string): number {
    return this.byVin.get(vin)?.length ?? 0;
  }
}
