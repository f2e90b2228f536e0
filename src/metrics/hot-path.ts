import type client from 'prom-client';

/*
 * prom-client hashes and validates the label set on every inc()/observe(), even through a child from
 * labels(), which costs many times the addition itself (BENCHMARKS.md, "Why the code is shaped so").
 * The per-frame path touches several series, so instead it adds to plain numbers in cells bound once
 * to fixed label values, and the cells are folded into the exported series when Prometheus scrapes.
 * Scrapes see exactly the same totals; only the bookkeeping moves off the frame path.
 */

/** One counter series with its label values fixed in advance; inc() is a plain addition. */
export class CounterCell {
  pending = 0;

  inc(by = 1): void {
    this.pending += by;
  }
}

/**
 * The collect hook for a prom-client counter whose label values are bound to cells: folds what the
 * cells gathered since the last scrape into the counter.
 */
export function foldCounterCells<L extends string>(
  cells: ReadonlyArray<readonly [client.LabelValues<L>, CounterCell]>,
  /** Exported value per unit counted (e.g. dollars per signal). */
  scale = 1,
): (this: client.Counter<L>) => void {
  return function fold(this: client.Counter<L>): void {
    for (const [labels, cell] of cells) {
      if (cell.pending !== 0) {
        const by = cell.pending * scale;
        cell.pending = 0;
        this.inc(labels, by);
      }
    }
  };
}

/** One histogram series with its label values fixed in advance; observe() is a scan and three additions. */
export class HistogramCell {
  /** counts[i] = observations in (upperBounds[i-1], upperBounds[i]]; the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly upperBounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(upperBounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** `times` observations of `value` at once (counts folded at a scrape). */
  observeMany(value: number, times: number): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += times;
    this.sum += value * times;
    this.count += times;
  }
}

export interface CellHistogramOptions<L extends string> {
  name: string;
  help: string;
  /** Upper bounds, ascending; +Inf is implied. */
  buckets: readonly number[];
  labelNames?: readonly L[];
  registers: readonly client.Registry[];
  /**
   * Called before the histogram is read: folds observations kept elsewhere as plain counts (a
   * lone frame's batch counted by one addition on an object the path touches anyway) into the cells.
   */
  fold?: () => void;
}

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/**
 * A Prometheus histogram made of cells, registered with prom-client's registry through its custom
 * metric contract (name, help, type, get()). Children are created once per label set and kept:
 * label values must come from a fixed, small set chosen by the code, never from input.
 */
export class CellHistogram<L extends string = string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly L[];
  readonly upperBounds: readonly number[];
  private readonly children = new Map<string, HistogramCell>();
  private unlabelled: HistogramCell | null = null;
  private readonly fold: (() => void) | null;

  constructor(options: CellHistogramOptions<L>) {
    const bounds = [...options.buckets];
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`${options.name}: buckets must be strictly ascending`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.upperBounds = Object.freeze(bounds);
    this.fold = options.fold ?? null;
    // Without labels there is one series, exported at zero from the start.
    if (this.labelNames.length === 0) this.unlabelled = this.child({} as Record<L, string>);
    for (const registry of options.registers) registry.registerMetric(this as unknown as client.Metric);
  }

  /** For a histogram without labels. */
  observe(value: number): void {
    if (this.labelNames.length > 0) throw new Error(`${this.name} has labels; observe through child()`);
    (this.unlabelled ??= this.child({} as Record<L, string>)).observe(value);
  }

  /** The cell for one label set; call once and keep it, rather than per observation. */
  child(labels: Readonly<Record<L, string>>): HistogramCell {
    const names = this.labelNames;
    const given = Object.keys(labels);
    if (given.length !== names.length || names.some((name) => typeof labels[name] !== 'string')) {
      throw new Error(`${this.name}: expected labels ${names.join(', ') || '(none)'}, got ${given.join(', ') || '(none)'}`);
    }
    const key = names.map((name) => labels[name]).join('\u0000');
    let cell = this.children.get(key);
    if (cell === undefined) {
      const own: Record<string, string> = {};
      for (const name of names) own[name] = labels[name];
      cell = new HistogramCell(this.upperBounds, own);
      this.children.set(key, cell);
    }
    return cell;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ExportedValue[] }> {
    this.fold?.();
    const values: ExportedValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const cell of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.upperBounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ value: cumulative, labels: { le: this.upperBounds[i]!, ...cell.labels }, metricName: bucketName });
      }
      values.push({ value: cell.count, labels: { le: '+Inf', ...cell.labels }, metricName: bucketName });
      values.push({ value: cell.sum, labels: { ...cell.labels }, metricName: `${this.name}_sum` });
      values.push({ value: cell.count, labels: { ...cell.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Registry.resetMetrics() calls this: counts go back to zero, children stay bound. */
  reset(): void {
    for (const cell of this.children.values()) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}
