import { CarTalk, envelopeOf } from '../fleet/frames.js';

/**
 * The bench cars' drive/charge story as frames for the micro-benchmarks (~20-datum V records, the odd
 * alert and error), `cars` cars taking turns; each call goes on from where the last one stopped, so
 * records keep replacing state.
 */
export class StoryFrames {
  readonly talks: ReadonlyArray<{ vin: string; talk: CarTalk }>;
  private tick = 0;

  constructor(cars = 16, private readonly startMs = 1_780_000_000_000) {
    this.talks = Array.from({ length: cars }, (_, i) => {
      const vin = `5YJBENCH${String(i).padStart(9, '0')}`;
      return { vin, talk: new CarTalk(vin, i + 1) };
    });
  }

  /** The story's time after the frames made so far (epoch ms). */
  get atMs(): number {
    return this.startMs + this.tick * 1000;
  }

  next(frameCount: number): { frames: Uint8Array[]; vins: string[] } {
    const frames: Uint8Array[] = [];
    const vins: string[] = [];
    while (frames.length < frameCount) {
      const { vin, talk } = this.talks[this.tick % this.talks.length]!;
      for (const record of talk.tick(new Date(this.atMs))) {
        if (frames.length >= frameCount) break;
        frames.push(envelopeOf(vin, `${this.tick.toString(16).padStart(22, '0')}-000000001`, record.topic, record.payload, `m${this.tick}`));
        vins.push(vin);
      }
      this.tick++;
    }
    return { frames, vins };
  }
}
