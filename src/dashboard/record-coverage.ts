import type { BusRecord, VehicleSnapshot } from '../bus/record-bus.js';

/**
 * What a dashboard already has of one VIN's records (its snapshot plus any replayed history): the one
 * rule for which held or late records it must not be sent again.
 *  - By stream sequence, when the bus numbers its records: a snapshot with `coveredSeq`, and each
 *    replayed record, cover every record of the VIN up to that sequence.
 *  - Otherwise by time: a snapshot without `coveredSeq` covers the records received up to its
 *    `lastSeenAt`; replayed records without a sequence are known by topic and txid.
 * A record with a sequence is judged by sequence as soon as a sequence is known.
 */
export class RecordCoverage {
  private seq: number | null = null;
  private time: number | null = null;
  private replayedWithoutSeq: Set<string> | null = null;

  /** A snapshot taken while nothing was held (a synchronous source): every held record came after it. */
  static none(): RecordCoverage {
    return new RecordCoverage();
  }

  static ofSnapshot(snapshot: VehicleSnapshot): RecordCoverage {
    const coverage = new RecordCoverage();
    if (snapshot.coveredSeq !== undefined) coverage.seq = snapshot.coveredSeq;
    else coverage.time = snapshot.lastSeenAt;
    return coverage;
  }

  /** A replayed record: the dashboard has it now. */
  add(record: BusRecord): void {
    if (record.streamSeq !== undefined) this.seq = Math.max(this.seq ?? 0, record.streamSeq);
    else (this.replayedWithoutSeq ??= new Set()).add(keyOf(record));
  }

  covers(record: BusRecord): boolean {
    if (record.streamSeq !== undefined && this.seq !== null) return record.streamSeq <= this.seq;
    return (this.replayedWithoutSeq?.has(keyOf(record)) ?? false) || (this.time !== null && record.receivedAt <= this.time);
  }

  /**
   * Covered records may still be on their way: a bus with sequences delivers to different consumers at
   * different paces, so one the snapshot folded in can arrive after it was read.
   */
  get coveredMayArriveLate(): boolean {
    return this.seq !== null;
  }
}

function keyOf(record: BusRecord): string {
  return `${record.topic}\u0000${record.txid}`;
}
