import type { DecodeTask } from '../../src/decode/decode-task.js';

/**
 * A decode batch packed the way DecodePool packs one: the frames back to back in one
 * SharedArrayBuffer, n + 1 offsets, every frame from `vin` and arrived at `receivedAt`.
 */
export function packFrames(frames: readonly Uint8Array[], vin: string, receivedAt: number): DecodeTask {
  const total = frames.reduce((n, f) => n + f.byteLength, 0);
  const shared = new SharedArrayBuffer(Math.max(1, total));
  const view = new Uint8Array(shared);
  const offsets = new Uint32Array(frames.length + 1);
  for (let i = 0, at = 0; i < frames.length; i++) {
    view.set(frames[i]!, at);
    at += frames[i]!.byteLength;
    offsets[i + 1] = at;
  }
  return { frames: shared, offsets, vins: frames.map(() => vin), receivedAt: new Float64Array(frames.length).fill(receivedAt) };
}
