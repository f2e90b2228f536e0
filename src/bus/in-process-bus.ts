import type { BusRecord, RecordBus, RecordListener, SafeCallback } from './record-bus.js';

/**
 * The embedded default: subscribers are called synchronously in publish order, and a record is safe as
 * soon as they have all seen it (there is nothing more durable to wait for in one process).
 */
export class InProcessBus implements RecordBus {
  readonly name = 'in_process';
  private listeners: RecordListener[] = [];

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

  subscribe(listener: RecordListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** One process sees every car it has: nothing to ask for. */
  watch(): void {}
  unwatch(): void {}

  async close(): Promise<void> {
    this.listeners = [];
  }
}
