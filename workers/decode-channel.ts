import { transferableSymbol, valueSymbol } from 'piscina';
import { taskOfChannelBatch, type ChannelAnswer, type ChannelBatch, type DecodeChannelTask } from '../src/decode/decode-task.js';
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
      // Result buffers the main thread is done with come back with a batch: this thread's next results reuse them.
      const spares = message !== null && typeof message === 'object' && 'spares' in message ? (message as ChannelBatch).spares : undefined;
      if (spares !== undefined) offerResultBuffers(spares);
      try {
        // A car-frame batch arrives compact (ChannelBatch); stored-record tasks as they are.
        result = decode(message !== null && typeof message === 'object' && 'columnsAt' in message ? taskOfChannelBatch(message as ChannelBatch) : message);
      } catch (error) {
        // The decoder threw for the whole batch: the main thread retries its frames one by one.
        port.postMessage({ failed: error instanceof Error ? error.message : String(error) } satisfies ChannelAnswer);
        return;
      }
      const movable = result as { [transferableSymbol]?: unknown; [valueSymbol]?: unknown } | null;
      if (movable !== null && typeof movable === 'object' && valueSymbol in movable) {
        port.postMessage({ result: movable[valueSymbol] } satisfies ChannelAnswer, movable[transferableSymbol] as ArrayBuffer[]);
      } else {
        port.postMessage({ result } satisfies ChannelAnswer);
      }
    });
    port.postMessage('ready');
  });
}
