import type { BusRecord, RecordBus, RecordListener, SafeCallback, SubscribeOptions } from './record-bus.js';

/**
 * The embedded default: subscribers are called synchronously in publish order, and a record is safe as
 * soon as they have all seen it (there is nothing more durable to wait for in one process).
 */
export class InProcessBus implements RecordBus {
  readonly name = 'in_process';
  private listeners: RecordListener[] = [];
  /** Listeners subscribed without `holdsRecords` (SubscribeOptions). */
  private mayKeep = 0;

  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  publish(record: BusRecord, onSafe: SafeCallback): void {
    this.publishNow(record);
    onSafe(null);
  }

  publishNow(record: BusRecord): void {
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!(record);
      } catch (error) {
        // A broken consumer must not cost the car its ack or other consumers their records.
        this.onListenerError(error);
      }
    }
  }

  subscribe(listener: RecordListener, options?: SubscribeOptions): () => void {
    this.listeners = [...this.listeners, listener];
    const holds = options?.holdsRecords === true;
    if (!holds) this.mayKeep++;
    let subscribed = true;
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
      if (subscribed && !holds) this.mayKeep--;
      subscribed = false;
    };
  }

  /**
   * Every listener says when it is done with a record (BusRecord.hold): a record's decode buffer may
   * then be recycled once its holders let go.
   */
  get everyListenerHolds(): boolean {
    return this.mayKeep === 0;
  }

  /** One process sees every car it has: nothing to ask for. */
  watch(): void {}
  unwatch(): void {}

  async close(): Promise<void> {
    this.listeners = [];
  }
}
