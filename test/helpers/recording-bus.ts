import type { BusRecord, RecordBus } from '../../src/bus/record-bus.js';

/** A bus that is safe at once and keeps what it was handed, for tests of the actor's record path. */
export class RecordingBus implements RecordBus {
  readonly name = 'in_process';
  readonly records: BusRecord[] = [];
  publish(record: BusRecord, onSafe: (error: Error | null) => void): void {
    this.records.push(record);
    onSafe(null);
  }
  subscribe(): () => void {
    return () => {};
  }
  watch(): void {}
  unwatch(): void {}
  async close(): Promise<void> {}
}
