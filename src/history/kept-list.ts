/**
 * The newest `max` items, oldest first, dropped from the front. An array shifted once per item moves
 * every item kept, with a write barrier per slot (a car at its 100 trips: ~1 % of the main thread at
 * saturation, BENCHMARKS.md engineer M, session 11); here a dropped item's slot is cleared (nothing
 * held) and the slots are closed up once per `max` drops.
 */
export class KeptList<T> {
  private items: Array<T | null> = [];
  /** Slots before this one were dropped (null). */
  private first = 0;

  constructor(private readonly max: number) {}

  get length(): number {
    return this.items.length - this.first;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length - this.first > this.max) this.dropFirst();
  }

  /** The oldest item kept; undefined when none. */
  oldest(): T | undefined {
    return this.first < this.items.length ? (this.items[this.first] as T) : undefined;
  }

  dropFirst(): void {
    if (this.first >= this.items.length) return;
    this.items[this.first++] = null;
    if (this.first === this.items.length) {
      this.items.length = 0;
      this.first = 0;
    } else if (this.first >= this.max) {
      this.items.splice(0, this.first);
      this.first = 0;
    }
  }

  /** The items kept, oldest first (the list's own array: read it, do not keep or change it). */
  all(): T[] {
    if (this.first > 0) {
      this.items.splice(0, this.first);
      this.first = 0;
    }
    return this.items as T[];
  }
}
