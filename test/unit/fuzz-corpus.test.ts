// Replays the fuzzer's kept corpus (test/fixtures/fuzz-corpus/, one smallest frame per frame family x
// outcome, written by `FUZZ_SAVE_CORPUS=1 npm run fuzz`) through the real decode path: each frame must
// still get exactly one well-formed reply and the same outcome it had when it was kept.
import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkBatch, outcomeLabel } from '../robustness/fuzz/decode-oracle.js';

const CORPUS_DIR = fileURLToPath(new URL('../../../test/fixtures/fuzz-corpus/', import.meta.url));

interface Manifest {
  seed: number;
  frames: Array<{ file: string; family: string; outcome: string }>;
}

describe('fuzz corpus regression replay', () => {
  const manifest = JSON.parse(readFileSync(CORPUS_DIR + 'corpus.json', 'utf8')) as Manifest;
  const frames = manifest.frames.map((entry) => ({ ...entry, bytes: new Uint8Array(readFileSync(CORPUS_DIR + entry.file)) }));

  it('covers the outcomes that matter and lists every .bin file', () => {
    const outcomes = new Set(frames.map((f) => f.outcome));
    for (const outcome of ['record', 'ack_only', 'error:envelope_too_short', 'error:envelope_out_of_bounds', 'error:envelope_bad_vtable', 'error:payload_protobuf']) {
      expect(outcomes, outcome).to.include(outcome);
    }
    const bins = readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.bin')).sort();
    expect(bins).to.deep.equal(frames.map((f) => f.file).sort());
  });

  it('gives every kept frame the outcome it was kept for, with one well-formed reply', () => {
    for (const frame of frames) {
      const verdict = checkBatch([frame.bytes]);
      expect(outcomeLabel(verdict.outcomes[0]!), frame.file).to.equal(frame.outcome);
    }
  });

  it('decodes the whole corpus as one batch, frames independent of their neighbours', () => {
    const verdict = checkBatch(frames.map((f) => f.bytes));
    expect(verdict.outcomes.map(outcomeLabel)).to.deep.equal(frames.map((f) => f.outcome));
  });
});
