import client from 'prom-client';

/**
 * prom-client's default process and Node.js series (CPU, memory, heap, GC, handles, event-loop lag),
 * with one correction: a few of them are gauges whose names end in `_total`, which Prometheus reserves
 * for counters (`promtool check metrics` rejects them). Each such gauge is dropped when a sibling
 * without the suffix already exports the same thing broken down by a label (its total is then a sum()
 * away), and renamed without the suffix otherwise.
 */
export function registerNodeMetrics(registry: client.Registry, prefix: string): void {
  const defaults = new client.Registry();
  client.collectDefaultMetrics({ register: defaults, prefix, eventLoopMonitoringPrecision: 20 });
  const all = defaults.getMetricsAsArray() as unknown as NamedMetric[];
  const names = new Set(all.map((metric) => metric.name));
  for (const metric of all) {
    if (metric.type === 'counter' || !metric.name.endsWith('_total')) {
      registry.registerMetric(metric as unknown as client.Metric);
      continue;
    }
    const bare = metric.name.slice(0, -'_total'.length);
    if (names.has(bare)) continue;
    registry.registerMetric(new RenamedMetric(metric, bare) as unknown as client.Metric);
  }
}

interface NamedMetric {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  labelNames?: readonly string[];
  get(): Promise<{ help: string; type: string; aggregator: string; values: Array<{ value: number; labels: object; metricName?: string }> }>;
  reset(): void;
}

/** Exports another metric's values under a different name. */
class RenamedMetric {
  readonly help: string;
  readonly type: string;
  readonly aggregator: string;
  readonly labelNames: readonly string[];

  constructor(
    private readonly source: NamedMetric,
    readonly name: string,
  ) {
    this.help = source.help;
    this.type = source.type;
    this.aggregator = source.aggregator;
    this.labelNames = source.labelNames ?? [];
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ value: number; labels: object }> }> {
    const data = await this.source.get();
    return {
      name: this.name,
      help: data.help,
      type: data.type,
      aggregator: data.aggregator,
      values: data.values.map(({ value, labels }) => ({ value, labels })),
    };
  }

  reset(): void {
    this.source.reset();
  }
}
