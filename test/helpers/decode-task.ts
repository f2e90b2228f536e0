import type { DecodeTask } from '../../src/decode/decode-task.js';
import { packFrames as pack } from '../../tools/pack-frames.js';

/**
 * A decode batch packed the way DecodePool packs one: the frames back to back in one
 * SharedArrayBuffer, n + 1 offsets, every frame from `vin` and arrived at `receivedAt`.
 */
export function packFrames(frames: readonly Uint8Array[], vin: string, receivedAt: number): DecodeTask {
  return pack(frames, vin, receivedAt);
}
