import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { fromSubjectToken } from '../../src/bus/nats/nats-names.js';

/** Topics the cars send (and get acked); `connectivity` records are the server's own. */
const CAR_TOPICS = new Set(['V', 'alerts', 'errors']);

export interface StoredVersusAcked {
  /** Car records (V, alerts, errors) the stream holds. */
  carRecords: number;
  /** Distinct records the cars had acked. */
  acked: number;
  /** Acked records the stream does not hold: loss. */
  missing: number;
  /** Records stored beyond what was acked (a confirmation that came too late, say): not loss. */
  extra: number;
}

/**
 * Compares the stream's per-subject message counts (`<prefix>.<VIN>.<topic>`) with what each car had
 * acked. The stream deduplicates resends by message id, so per VIN it should hold exactly what was
 * acked; fewer is loss, whatever the cars' counters say.
 */
export function storedVersusAcked(subjects: Record<string, number>, subjectPrefix: string, ackedByVin: Map<string, number>): StoredVersusAcked {
  const storedByVin = new Map<string, number>();
  let carRecords = 0;
  for (const [subject, count] of Object.entries(subjects)) {
    if (!subject.startsWith(`${subjectPrefix}.`)) continue;
    const tokens = subject.slice(subjectPrefix.length + 1).split('.');
    if (tokens.length !== 2 || !CAR_TOPICS.has(fromSubjectToken(tokens[1]!))) continue;
    const vin = fromSubjectToken(tokens[0]!);
    storedByVin.set(vin, (storedByVin.get(vin) ?? 0) + count);
    carRecords += count;
  }
  let acked = 0;
  let missing = 0;
  let extra = 0;
  for (const vin of new Set([...ackedByVin.keys(), ...storedByVin.keys()])) {
    const a = ackedByVin.get(vin) ?? 0;
    const s = storedByVin.get(vin) ?? 0;
    acked += a;
    missing += Math.max(0, a - s);
    extra += Math.max(0, s - a);
  }
  return { carRecords, acked, missing, extra };
}

/** Per-subject message counts of a stream, asked of JetStream with a client of our own. */
export async function streamSubjectCounts(natsUrl: string, stream: string, subjectPrefix: string): Promise<Record<string, number>> {
  const nc = await connect({ servers: natsUrl.split(','), name: 'fleet-telemetry-bench', timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream, { subjects_filter: `${subjectPrefix}.>` });
    return info.state.subjects ?? {};
  } finally {
    await nc.close();
  }
}
