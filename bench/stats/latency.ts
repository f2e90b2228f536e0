import hdr from 'hdr-histogram-js';

/** Percentiles of one latency distribution, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

type Histogram = ReturnType<typeof hdr.build>;

/**
 * Latencies recorded in microseconds in an HDR histogram (3 significant digits, auto-resizing), so
 * percentiles from several threads can be merged exactly: workers ship theirs as compressed base64.
 */
export class LatencyRecorder {
  private histogram: Histogram = newHistogram();

  recordMs(ms: number): void {
    if (!(ms >= 0)) return; // NaN or a clock step backwards says nothing about the server
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  reset(): void {
    this.histogram.reset();
  }

  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.histogram);
  }

  addEncoded(encoded: string): void {
    const other = hdr.decodeFromCompressedBase64(encoded);
    this.histogram.add(other);
    other.destroy();
  }

  summary(): LatencySummary {
    const h = this.histogram;
    const ms = (us: number): number => Math.round(us) / 1000;
    if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    return {
      count: h.totalCount,
      p50: ms(h.getValueAtPercentile(50)),
      p90: ms(h.getValueAtPercentile(90)),
      p99: ms(h.getValueAtPercentile(99)),
      p999: ms(h.getValueAtPercentile(99.9)),
      max: ms(h.maxValue),
      mean: ms(h.mean),
    };
  }
}

function newHistogram(): Histogram {
  return hdr.build({ bitBucketSize: 32, autoResize: true, lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** Merge the encoded histograms of several threads into one summary. */
export function mergeLatencies(encoded: string[]): LatencySummary {
  const merged = new LatencyRecorder();
  for (const e of encoded) merged.addEncoded(e);
  return merged.summary();
}
