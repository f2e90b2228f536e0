import { FRAME_SLOTS, RESULT_ROW_ERRORS, type DecodeResult } from './decode-task.js';
import type { StoredOutcome } from './stored-batch.js';
import { isObject, kindOf } from '../safety/json-reader.js';
import { SAMPLE_VALUES } from '../history/signal-sample.js';

/**
 * What a decode worker sends back, checked on the main thread before use. Piscina hands a task's
 * result over as `any`; a worker of another build, or a bug in one, would otherwise be read as if its
 * reply had the right shape. A reply of the wrong shape fails the task (the pool's worker_error path,
 * which retries the frames and logs), it is never read as records. The check is a handful of
 * property tests per batch, not per frame. `value` is a DecodeResult or, as it crosses the port, its
 * ResultRow.
 */
export function decodeResultOf(value: unknown): DecodeResult {
  if (Array.isArray(value)) {
    const row = value as unknown[];
    if (row.length >= RESULT_ROW_ERRORS) {
      return decodeResultOf({
        buffer: row[0], count: row[1], stateAt: row[2], repliesAt: row[3], textAt: row[4], normalisedAt: row[5], samplesAt: row[6], end: row[7],
        internalErrors: row.length === RESULT_ROW_ERRORS ? NO_ERRORS : row.slice(RESULT_ROW_ERRORS),
      });
    }
    throw new TypeError(`decode worker replied an array of ${row.length} instead of the DecodeResult's row`);
  }
  if (isObject(value) && value.buffer instanceof ArrayBuffer && Array.isArray(value.internalErrors)) {
    const { buffer, count, stateAt, repliesAt, textAt, normalisedAt } = value;
    // Absent: the result fills its buffer.
    const end = value.end === undefined ? buffer.byteLength : value.end;
    // Absent: no samples (the history then reads the values from the text).
    const samplesAt = value.samplesAt === undefined ? end : value.samplesAt;
    // The sections must lie in order inside the buffer: a DecodedBatch makes views of them.
    if (
      isCount(count) && isCount(stateAt) && isCount(repliesAt) && isCount(textAt) && isCount(normalisedAt) &&
      stateAt === count * FRAME_SLOTS * 4 && stateAt <= repliesAt && (repliesAt - stateAt) % 4 === 0 &&
      isCount(end) && end <= buffer.byteLength &&
      repliesAt <= textAt && textAt <= normalisedAt && normalisedAt <= end &&
      isCount(samplesAt) && (samplesAt === end || (samplesAt >= normalisedAt && samplesAt % 8 === 0 && (end - samplesAt) % (8 * SAMPLE_VALUES) === 0))
    ) {
      const errors = value.internalErrors as unknown[];
      const internalErrors = errors.length === 0 ? errors as string[] : errors.map((error) => (typeof error === 'string' ? error : String(error)));
      return { buffer, count, stateAt, repliesAt, textAt, normalisedAt, samplesAt, end, internalErrors };
    }
  }
  throw new TypeError(`decode worker replied ${kindOf(value)} without the DecodeResult buffer and its sections`);
}

const NO_ERRORS: string[] = [];

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** A stored-record task's reply: one outcome per body, each a decoded body or an error. */
export function storedOutcomesOf(value: unknown, count: number): StoredOutcome[] {
  if (!Array.isArray(value) || value.length !== count) {
    throw new TypeError(`decode worker replied ${kindOf(value)} instead of ${count} stored-record outcomes`);
  }
  return (value as unknown[]).map((outcome, i) => {
    if (!isObject(outcome)) throw new TypeError(`decode worker's stored-record outcome ${i} is ${kindOf(outcome)}`);
    if (typeof outcome.error === 'string') return { error: outcome.error, ...(outcome.internal === true ? { internal: true } : {}) };
    const { recordJson, isResend, state, createdAt } = outcome;
    if ((typeof recordJson !== 'string' && recordJson !== null) || typeof isResend !== 'boolean' || (typeof createdAt !== 'string' && createdAt !== null)) {
      throw new TypeError(`decode worker's stored-record outcome ${i} lacks recordJson/isResend/createdAt`);
    }
    if (state !== null && !(Array.isArray(state) && (state as unknown[]).every((e) => isObject(e) && typeof e.field === 'string' && typeof e.value === 'string'))) {
      throw new TypeError(`decode worker's stored-record outcome ${i} has a malformed state`);
    }
    return { recordJson, isResend, state: state as StoredOutcomeState, createdAt };
  });
}

type StoredOutcomeState = Extract<StoredOutcome, { isResend: boolean }>['state'];
