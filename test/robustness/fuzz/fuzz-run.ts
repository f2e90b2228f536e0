import fc from 'fast-check';
import { fuzzBatchArb, type FrameFamily, type FuzzFrame } from './frame-arbitraries.js';
import { OracleViolation, checkBatch, outcomeLabel } from './decode-oracle.js';

export interface FuzzStats {
  seed: number;
  frames: number;
  batches: number;
  byFamily: Partial<Record<FrameFamily, number>>;
  byOutcome: Record<string, number>;
  worstBatchMs: number;
  worstBatchFrames: number;
  elapsedMs: number;
  /** The smallest frame seen for each family x outcome: the seeded corpus of interesting cases. */
  interesting: Map<string, FuzzFrame>;
}

export class FuzzFailure extends Error {
  override readonly name = 'FuzzFailure';
  constructor(message: string, readonly frame: Uint8Array | null, readonly seed: number) {
    super(message);
  }
}

/** First guess at the mean batch size of fuzzBatchArb (it favours small arrays); later rounds measure it. */
const MEAN_BATCH = 6;

/**
 * Feeds at least `target` generated frames through decodeBatch in batches and checks each batch with
 * the oracle. On a broken promise fast-check shrinks the batch, and the smallest failing frame is thrown.
 */
export function runFuzz(target: number, seed: number): FuzzStats {
  const stats: FuzzStats = {
    seed, frames: 0, batches: 0, byFamily: {}, byOutcome: {}, worstBatchMs: 0, worstBatchFrames: 0, elapsedMs: 0,
    interesting: new Map(),
  };
  const started = performance.now();
  let round = 0;
  while (stats.frames < target) {
    const roundSeed = seed + round++;
    const property = fc.property(fuzzBatchArb, (batch: FuzzFrame[]) => {
      const verdict = checkBatch(batch.map((f) => f.bytes));
      stats.frames += batch.length;
      stats.batches++;
      if (verdict.elapsedMs > stats.worstBatchMs) {
        stats.worstBatchMs = verdict.elapsedMs;
        stats.worstBatchFrames = batch.length;
      }
      for (let i = 0; i < batch.length; i++) {
        const label = outcomeLabel(verdict.outcomes[i]!);
        const family = batch[i]!.family;
        stats.byOutcome[label] = (stats.byOutcome[label] ?? 0) + 1;
        stats.byFamily[family] = (stats.byFamily[family] ?? 0) + 1;
        const key = `${family}.${label}`;
        const kept = stats.interesting.get(key);
        if (kept === undefined || batch[i]!.bytes.length < kept.bytes.length) stats.interesting.set(key, batch[i]!);
      }
    });
    const meanBatch = stats.batches > 0 ? stats.frames / stats.batches : MEAN_BATCH;
    const runs = Math.max(1, Math.ceil((target - stats.frames) / meanBatch));
    const result = fc.check(property, { seed: roundSeed, numRuns: runs, endOnFailure: false });
    if (result.failed) {
      const batch = result.counterexample?.[0] as FuzzFrame[] | undefined;
      const cause = result.errorInstance;
      const frame = cause instanceof OracleViolation ? cause.frame : (batch?.[0]?.bytes ?? null);
      throw new FuzzFailure(
        `fuzz round seed ${roundSeed} failed after ${result.numRuns} runs (shrunk ${result.numShrinks}x): ${String(cause)}`,
        frame,
        roundSeed,
      );
    }
  }
  stats.elapsedMs = performance.now() - started;
  return stats;
}
