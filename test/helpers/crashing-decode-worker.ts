import decode from '../../workers/decode-worker.js';
import { readEnvelope } from '../../src/protocol/envelope.js';
import type { DecodeTask } from '../../src/decode/decode-task.js';
import type { StoredDecodeTask } from '../../src/decode/stored-batch.js';

/** Topic that makes this test worker die mid-batch, as a worker hitting a fatal bug would. */
export const CRASH_TOPIC = 'test-crash-worker';
/** Topic that makes this test worker hang past the task timeout. */
export const HANG_TOPIC = 'test-hang-worker';

/**
 * The real decode worker, wrapped so integration tests can kill or hang a worker with a frame, without
 * any such hook in production code.
 */
export default function crashingDecode(task: DecodeTask | StoredDecodeTask) {
  // Stored records (NATS) carry no car frames: the real decoder's business alone.
  if ('stored' in task) return decode(task);
  const frames = new Uint8Array(task.frames);
  for (let i = 0; i < task.vins.length; i++) {
    try {
      const topic = Buffer.from(readEnvelope(frames.subarray(task.offsets[i], task.offsets[i + 1])).topic).toString('latin1');
      if (topic === CRASH_TOPIC) process.exit(70);
      if (topic === HANG_TOPIC) {
        const until = Date.now() + 60_000;
        while (Date.now() < until) { /* busy: only a timeout gets us out */ }
      }
    } catch {
      // unreadable frames are the real decoder's business
    }
  }
  return decode(task);
}
