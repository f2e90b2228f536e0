import { move, transferableSymbol, valueSymbol } from 'piscina';
import { decodeBatch } from '../src/decode/decode-batch.js';
import type { DecodeResult, DecodeTask } from '../src/decode/decode-task.js';

/**
 * The piscina entry for decode workers. Replies, dashboard messages, the per-frame table and the state
 * index go back transferred, not cloned; the frames stay in the shared buffer the main thread holds.
 */
export default function decode(task: DecodeTask): DecodeResult {
  const result = decodeBatch(task);
  const transferable = {
    get [transferableSymbol]() {
      return [result.replies, result.text, result.table, result.state, result.normalised];
    },
    get [valueSymbol]() {
      return result;
    },
  };
  return move(transferable as never) as unknown as DecodeResult;
}
