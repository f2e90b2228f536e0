import { decodeStoredBody, type DecodedBody, type StoredBody } from '../protocol/stored-body.js';

/** Stored records read back from NATS (other instances' records, replays), decoded like car frames. */
export interface StoredDecodeTask {
  stored: StoredBody[];
}

/** One body's outcome: the decoded record, or why it could not be read (the reader skips it). */
export type StoredOutcome = DecodedBody | { error: string };

/** Decodes every body of the task, in order; one bad body costs only itself. */
export function decodeStoredBatch(task: StoredDecodeTask): StoredOutcome[] {
  return task.stored.map((body) => {
    try {
      return decodeStoredBody(body);
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  });
}
