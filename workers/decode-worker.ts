import { move, transferableSymbol, valueSymbol } from 'piscina';
import { decodeBatch } from '../src/decode/decode-batch.js';
import type { DecodeResult, DecodeTask } from '../src/decode/decode-task.js';
import { decodeStoredBatch, type StoredDecodeTask, type StoredOutcome } from '../src/decode/stored-batch.js';

/**
 * The piscina entry for decode workers. Car frames: the result's one buffer (table, state index,
 * replies, dashboard messages) goes back transferred, not cloned; the frames stay in the shared buffer
 * the main thread holds. Stored records (NATS replays and other instances' records) come back as plain objects.
 */
export default function decode(task: DecodeTask | StoredDecodeTask): DecodeResult | StoredOutcome[] {
  if ('stored' in task) return decodeStoredBatch(task);
  const result = decodeBatch(task);
  const transferable = {
    get [transferableSymbol]() {
      return [result.buffer];
    },
    get [valueSymbol]() {
      return result;
    },
  };
  return move(transferable as never) as unknown as DecodeResult;
}
