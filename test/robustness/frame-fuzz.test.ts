// Frame fuzzing: generated and mutated frames through decodeBatch (the decode workers' function) and,
// fewer of them, through the real server over mutual TLS. FUZZ_FRAMES / FUZZ_SERVER_FRAMES raise the
// counts (`npm run fuzz` runs the full 100,000); FUZZ_SEED changes the seed; FUZZ_SAVE_CORPUS=1 rewrites
// test/fixtures/fuzz-corpus/ from the run's most interesting frames.
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fuzzFrameArb } from './fuzz/frame-arbitraries.js';
import { checkBatch, runBatch } from './fuzz/decode-oracle.js';
import { FuzzFailure, runFuzz, type FuzzStats } from './fuzz/fuzz-run.js';
import { CountingCar } from './helpers/counting-car.js';
import { recordFigures } from './helpers/figures.js';
import { PeakMemory, retainedMemory } from './helpers/memory.js';
import { TEST_VINS, startTestServer } from '../helpers/test-server.js';
import { holdsAfter } from '../helpers/eventually.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { resultReplies } from '../../src/decode/decode-task.js';

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000);
const SERVER_FRAMES = Number(process.env.FUZZ_SERVER_FRAMES ?? 1_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261108);
export const CORPUS_DIR = fileURLToPath(new URL('../../../test/fixtures/fuzz-corpus/', import.meta.url));

/** Bounds the run must stay within (what RELIABILITY.md states). */
const MAX_BATCH_MS = 1_000;
const MAX_RETAINED_GROWTH_MB = 16;

function saveCorpus(stats: FuzzStats): void {
  rmSync(CORPUS_DIR, { recursive: true, force: true });
  mkdirSync(CORPUS_DIR, { recursive: true });
  const manifest: Array<{ file: string; family: string; outcome: string }> = [];
  for (const [key, frame] of [...stats.interesting].sort(([a], [b]) => a.localeCompare(b))) {
    const file = `${key.replace(/[^a-z0-9_.-]/gi, '_')}.bin`;
    writeFileSync(CORPUS_DIR + file, frame.bytes);
    manifest.push({ file, family: frame.family, outcome: key.slice(key.indexOf('.') + 1) });
  }
  writeFileSync(CORPUS_DIR + 'corpus.json', JSON.stringify({ seed: stats.seed, frames: manifest }, null, 2) + '\n');
}

describe('robustness: frame fuzzing', function () {
  this.timeout(Math.max(60_000, FRAMES * 2));

  it(`decodeBatch answers each of ${FRAMES} generated and mutated frames exactly once, in bounded time and memory`, () => {
    const before = retainedMemory();
    const peak = new PeakMemory();
    let stats: FuzzStats;
    try {
      stats = runFuzz(FRAMES, SEED);
    } catch (error) {
      if (error instanceof FuzzFailure && error.frame !== null) {
        // Keep the shrunk frame: it becomes a regression case once the bug is fixed.
        mkdirSync(CORPUS_DIR, { recursive: true });
        writeFileSync(`${CORPUS_DIR}failing-seed-${error.seed}.bin`, error.frame);
        console.error(`failing frame (hex): ${Buffer.from(error.frame).toString('hex')}`);
      }
      throw error;
    } finally {
      peak.stop();
    }
    const after = retainedMemory();
    const growthMb = after.heapUsedMb + after.arrayBuffersMb - (before.heapUsedMb + before.arrayBuffersMb);

    expect(stats.frames).to.be.at.least(FRAMES);
    expect(stats.worstBatchMs, 'slowest batch, ms').to.be.below(MAX_BATCH_MS);
    expect(growthMb, 'heap + ArrayBuffer memory retained after the run, MB').to.be.below(MAX_RETAINED_GROWTH_MB);
    for (const family of ['random_bytes', 'valid_record', 'unknown_fields', 'garbage_protobuf', 'deep_nesting', 'odd_envelope', 'huge_vector_length', 'mutated']) {
      expect(stats.byFamily, 'every frame family was generated').to.have.property(family);
    }
    for (const outcome of ['record', 'ack_only', 'error:envelope_too_short', 'error:envelope_out_of_bounds', 'error:envelope_bad_vtable', 'error:payload_protobuf']) {
      expect(stats.byOutcome, 'every outcome was reached').to.have.property(outcome);
    }
    if (process.env.FUZZ_SAVE_CORPUS === '1') saveCorpus(stats);

    recordFigures('frame-fuzz', [{
      scenario: 'frames fuzzed through decodeBatch (the worker decode path)',
      count: stats.frames,
      lost: 0,
      peakMemoryMb: peak.peakRssMb,
      worstAckMs: null,
      notes: `seed ${SEED}; slowest batch ${stats.worstBatchMs.toFixed(1)} ms (${stats.worstBatchFrames} frames); retained heap+ArrayBuffer growth ${growthMb.toFixed(1)} MB; ${Math.round(stats.frames / (stats.elapsedMs / 1000))} frames/s incl. generation`,
      details: { ...Object.fromEntries(Object.entries(stats.byOutcome).map(([k, v]) => [`outcome ${k}`, v])), ...Object.fromEntries(Object.entries(stats.byFamily).map(([k, v]) => [`family ${k}`, v])) },
    }]);
  });

  it(`the real server over mutual TLS answers each of ${SERVER_FRAMES} fuzzed frames with exactly the reply decodeBatch gives`, async () => {
    const frames = fc.sample(fuzzFrameArb, { seed: SEED + 1, numRuns: SERVER_FRAMES }).map((f) => f.bytes);
    // The reply is a pure function of the frame, so the decoder's local answer is the expected wire bytes.
    const expected = frames.map((f) => Buffer.from(resultReplies(runBatch([f]).result)).toString('hex'));
    checkBatch(frames.slice(0, 64));

    const t = await startTestServer({ env: { DECODE_WORKERS: '2' } });
    const peak = new PeakMemory();
    try {
      const car = await CountingCar.connect(t.carOptions(TEST_VINS[0]));
      const window = 64;
      for (let i = 0; i < frames.length; i++) {
        if (i - car.rawReplies.length >= window) await car.waitForReplies(i - window + 1, 10_000);
        car.sendFrame(frames[i]!, '');
      }
      expect(await car.waitForReplies(frames.length, 20_000), 'every frame replied').to.equal(true);
      // A good frame after them all is the barrier (its ack is the last reply), then a bounded settle.
      car.sendRecord('V', encodeVehicleData({ vin: TEST_VINS[0], createdAt: new Date(), data: [{ key: 'Odometer', value: { doubleValue: 1 } }] }));
      await holdsAfter(car.waitForReplies(frames.length + 1, 10_000), () => {
        expect(car.rawReplies.length, 'no frame replied twice').to.equal(frames.length + 1);
      }, 200);
      expect(car.acked, 'the barrier frame acked').to.be.at.least(1);
      expect(car.unreadableReplies).to.equal(0);
      expect(car.isOpen, 'fuzzed frames never cost the car its connection').to.equal(true);
      const got = car.rawReplies.slice(0, frames.length).map((r) => Buffer.from(r).toString('hex')).sort();
      expect(got).to.deep.equal([...expected].sort());
      const frameCount = (await t.server.metrics.vehicle.frames.get()).values[0]!.value;
      expect(frameCount).to.equal(frames.length + 1);
      await car.close();
    } finally {
      peak.stop();
      await t.stop();
    }
    recordFigures('frame-fuzz', [{
      scenario: 'fuzzed frames through the real server (mTLS WebSocket, 2 decode workers)',
      count: frames.length,
      lost: 0,
      peakMemoryMb: peak.peakRssMb,
      worstAckMs: null,
      notes: 'every reply byte-identical to decodeBatch\'s; the connection stayed open',
    }]);
  });
});
