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

/**
 * Open sockets per VIN, oldest first; adding past the cap hands back the oldest to be closed. Nearly
 * every car has one socket: it is kept as itself, and only a VIN with two or more has a list (an array
 * per car would cost ~180 bytes of each idle car).
 */
export class SocketsPerVin<S> {
  private readonly single = new Map<string, S>();
  private readonly several = new Map<string, S[]>();

  constructor(private readonly cap: number) {
    if (!(cap >= 1)) throw new RangeError(`the per-VIN socket cap must be at least 1, got ${cap}`);
  }

  /** Records `socket`; returns the socket to close when the VIN is now over its cap, else null. */
  add(vin: string, socket: S): S | null {
    const list = this.several.get(vin);
    if (list !== undefined) {
      list.push(socket);
      return list.length > this.cap ? (list.shift() as S) : null;
    }
    if (!this.single.has(vin)) {
      this.single.set(vin, socket);
      return null;
    }
    const oldest = this.single.get(vin) as S;
    if (this.cap === 1) {
      this.single.set(vin, socket);
      return oldest;
    }
    this.single.delete(vin);
    this.several.set(vin, [oldest, socket]);
    return null;
  }

  remove(vin: string, socket: S): void {
    const list = this.several.get(vin);
    if (list === undefined) {
      if (this.single.has(vin) && this.single.get(vin) === socket) this.single.delete(vin);
      return;
    }
    const at = list.indexOf(socket);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 1) {
      this.several.delete(vin);
      this.single.set(vin, list[0]!);
    } else if (list.length === 0) {
      this.several.delete(vin);
    }
  }

  count(vin: string): number {
    return this.several.get(vin)?.length ?? (this.single.has(vin) ? 1 : 0);
  }
}
