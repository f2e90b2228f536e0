import { PayloadError } from '../protocol/payload.js';
import { StoredBodyError, decodeStoredBody, type DecodedBody, type StoredBody } from '../protocol/stored-body.js';

/** Stored records read back from NATS (other instances' records, replays), decoded like car frames. */
export interface StoredDecodeTask {
  stored: StoredBody[];
}

/**
 * One body's outcome: the decoded record, or why it could not be read (the reader skips it);
 * `internal` when decoding threw something that is no verdict on the body (a bug of ours).
 */
export type StoredOutcome = DecodedBody | { error: string; internal?: boolean };

/** Decodes every body of the task, in order; one bad body costs only itself. */
export function decodeStoredBatch(task: StoredDecodeTask): StoredOutcome[] {
  return task.stored.map((body) => {
    try {
      return decodeStoredBody(body);
    } catch (error) {
      if (error instanceof PayloadError || error instanceof StoredBodyError) return { error: error.message };
      return { error: error instanceof Error ? (error.stack ?? error.message) : String(error), internal: true };
    }
  });
}
