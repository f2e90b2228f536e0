import { get } from 'node:http';

/** Cumulative bucket counts of one Prometheus histogram: upper bound (seconds) -> count. */
export type Buckets = Map<number, number>;

const ACK_LATENCY = 'fleet_telemetry_ack_latency_seconds_bucket';

/**
 * Our server's own view of ack latency (frame received -> reply written), from its /metrics. Next to
 * the cars' send -> ack latency it tells time spent in the server from time spent in the kernel, the
 * harness or waiting for a CPU on a shared machine.
 */
export function scrapeAckLatency(metricsPort: number): Promise<Buckets> {
  return scrapeHistogram(metricsPort, ACK_LATENCY);
}

/** The summed value of one gauge or counter series (all its labels) on our server's /metrics; null when absent. */
export async function scrapeValue(metricsPort: number, series: string): Promise<number | null> {
  const text = await scrapeText(metricsPort);
  let total: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(series) || (line[series.length] !== ' ' && line[series.length] !== '{')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

function scrapeText(metricsPort: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('metrics scrape timed out')));
    req.on('error', reject);
  });
}

/** The cumulative buckets of one histogram (its `_bucket` series name), summed over its labels. */
export async function scrapeHistogram(metricsPort: number, bucketSeries: string): Promise<Buckets> {
  const text = await scrapeText(metricsPort);
  const buckets: Buckets = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(bucketSeries)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (le === undefined || !Number.isFinite(value)) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + value);
  }
  return buckets;
}

/**
 * The q-quantile (0..1) of the observations between two scrapes, in milliseconds, interpolated inside
 * its bucket as Prometheus's histogram_quantile does; null without observations.
 */
export function quantileBetween(before: Buckets, after: Buckets, q: number): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! < rank) continue;
    if (bounds[i] === Infinity) return (bounds[i - 1] ?? 0) * 1000;
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    const below = i === 0 ? 0 : counts[i - 1]!;
    const inBucket = counts[i]! - below;
    const fraction = inBucket > 0 ? (rank - below) / inBucket : 1;
    return Math.round((lower + (bounds[i]! - lower) * fraction) * 1e6) / 1000;
  }
  return null;
}

/**
 * Series' values by one label's value each (e.g. GC counts by `kind`), summed over their other labels:
 * one map per [series, label] asked for, all from one scrape.
 */
export async function scrapeByLabel(metricsPort: number, wanted: ReadonlyArray<readonly [series: string, label: string]>): Promise<Array<Map<string, number>>> {
  const text = await scrapeText(metricsPort);
  const maps = wanted.map(() => new Map<string, number>());
  const patterns = wanted.map(([, label]) => new RegExp(`${label}="([^"]*)"`));
  for (const line of text.split('\n')) {
    for (let w = 0; w < wanted.length; w++) {
      const series = wanted[w]![0];
      if (!line.startsWith(series) || line[series.length] !== '{') continue;
      const key = patterns[w]!.exec(line)?.[1];
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (key === undefined || !Number.isFinite(value)) continue;
      maps[w]!.set(key, (maps[w]!.get(key) ?? 0) + value);
    }
  }
  return maps;
}
