// The robustness suites measure as they test; the figures go to one JSON file per suite when
// ROBUSTNESS_FIGURES_DIR is set (scripts/robustness.mjs sets it and turns the files into the
// RELIABILITY.md table), so the published numbers are always the ones a run produced.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export type Figure = string | number | boolean | null;

export interface FigureRow {
  /** What was tried, e.g. "frames fuzzed through decodeBatch". */
  scenario: string;
  /** How many attacks/frames/faults. */
  count: number;
  /** What was lost: frames without a reply, acked records missing, duplicate acks. Must be 0. */
  lost: number;
  /** Peak memory of the process during the scenario, MB (RSS unless noted). */
  peakMemoryMb: number | null;
  /** Worst ack latency a well-behaved car saw meanwhile, ms. */
  worstAckMs: number | null;
  /** Worst time from a well-behaved car's record to a well-behaved dashboard, ms (dashboard suites). */
  worstDashboardMs?: number | null;
  /** Anything else worth a column of its own. */
  notes: string;
  details?: Record<string, Figure>;
}

export function recordFigures(suite: string, rows: FigureRow[]): void {
  const dir = process.env.ROBUSTNESS_FIGURES_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${suite}.json`);
  const existing: FigureRow[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FigureRow[]) : [];
  writeFileSync(file, JSON.stringify([...existing, ...rows], null, 2));
}
