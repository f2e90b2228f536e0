import { transferableSymbol, valueSymbol } from 'piscina';
import { CHANNEL_BATCH_SPARES, resultRowOf, taskOfChannelBatch, type ChannelAnswer, type ChannelBatch, type DecodeChannelTask, type DecodeResult } from '../src/decode/decode-task.js';
import { offerResultBuffers } from '../src/decode/decode-batch.js';
import { nameThisThread, THREAD_NAMES } from '../src/lifecycle/thread-names.js';

type Decode = (task: unknown) => unknown;

/**
 * A piscina task per batch costs the main thread a promise, an abort timer, piscina's bookkeeping and
 * its Atomics wake-up per batch (BENCHMARKS.md: ~250 µs of process CPU for a lone frame). This entry is
 * handed a MessagePort once per worker; batches then arrive as plain port messages and their results
 * go back transferred on the same port. Piscina still owns the thread (start, replacement after a
 * crash, termination when the main thread aborts this task because a batch hung).
 */
export default async function serveDecodeChannel(task: DecodeChannelTask): Promise<void> {
  nameThisThread(THREAD_NAMES.decode);
  const decode = ((await import(task.workerFile)) as { default: Decode }).default;
  const port = task.port;
  await new Promise<void>((resolve) => {
    port.on('close', resolve);
    port.on('message', (message: unknown) => {
      let result: unknown;
      // A car-frame batch arrives as a ChannelBatch array; stored-record tasks as they are.
      const batch = Array.isArray(message) ? (message as ChannelBatch) : null;
      // Result buffers the main thread is done with come back with a batch: this thread's next results reuse them.
      if (batch !== null && batch.length > CHANNEL_BATCH_SPARES) offerResultBuffers(batch.slice(CHANNEL_BATCH_SPARES) as ArrayBuffer[]);
      try {
        result = decode(batch !== null ? taskOfChannelBatch(batch) : message);
      } catch (error) {
        // The decoder threw for the whole batch: the main thread retries its frames one by one.
        port.postMessage({ failed: error instanceof Error ? error.message : String(error) } satisfies ChannelAnswer);
        return;
      }
      const movable = result as { [transferableSymbol]?: unknown; [valueSymbol]?: unknown } | null;
      if (movable !== null && typeof movable === 'object' && valueSymbol in movable) {
        // A car-frame batch's DecodeResult: its row, the buffer transferred.
        const row = batch !== null ? resultRowOf(movable[valueSymbol] as DecodeResult) : null;
        if (row !== null) port.postMessage(row satisfies ChannelAnswer, movable[transferableSymbol] as ArrayBuffer[]);
        else port.postMessage({ result: movable[valueSymbol] } satisfies ChannelAnswer, movable[transferableSymbol] as ArrayBuffer[]);
      } else {
        port.postMessage({ result } satisfies ChannelAnswer);
      }
    });
    port.postMessage('ready');
  });
}
