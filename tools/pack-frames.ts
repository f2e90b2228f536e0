/**
 * Frames packed the way DecodePool packs a decode batch (DecodeTask in src/decode/decode-task.ts): back
 * to back in one SharedArrayBuffer, n + 1 offsets, one VIN and arrival time per frame. Shared by the
 * tests and the micro-benchmarks, which may not import each other.
 */
export interface PackedFrames {
  frames: SharedArrayBuffer;
  offsets: Uint32Array;
  vins: string[];
  receivedAt: Float64Array;
  watched?: Uint8Array;
}

/** `vins`: one VIN for every frame, or one per frame. `watched` absent: left out (every frame watched). */
export function packFrames(frames: readonly Uint8Array[], vins: string | readonly string[], receivedAt: number, watched?: boolean): PackedFrames {
  const total = frames.reduce((n, f) => n + f.byteLength, 0);
  const shared = new SharedArrayBuffer(Math.max(1, total));
  const view = new Uint8Array(shared);
  const offsets = new Uint32Array(frames.length + 1);
  for (let i = 0, at = 0; i < frames.length; i++) {
    view.set(frames[i]!, at);
    at += frames[i]!.byteLength;
    offsets[i + 1] = at;
  }
  const packed: PackedFrames = {
    frames: shared,
    offsets,
    vins: typeof vins === 'string' ? frames.map(() => vins) : [...vins],
    receivedAt: new Float64Array(frames.length).fill(receivedAt),
  };
  if (watched !== undefined) packed.watched = new Uint8Array(frames.length).fill(watched ? 1 : 0);
  return packed;
}
