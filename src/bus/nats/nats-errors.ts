import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { TimeoutError } from '@nats-io/transport-node';

// Failures told apart by the typed errors and JetStream API codes of the @nats-io clients, not by
// their message text (which the clients and the server are free to reword).

/** The stream (or the KV bucket's stream) does not exist. */
export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * An optimistic write lost the race: the expected last sequence (a KV update's revision, or a KV
 * create's "no entry yet") no longer holds because another instance wrote first.
 */
export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** No answer within the request's timeout (a JetStream publish ack, an API call). */
export function isTimeout(error: unknown): boolean {
  return error instanceof TimeoutError;
}
