import type { BusRecord } from '../../src/bus/record-bus.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { encodeVehicleData } from '../../src/protocol/payload-encoder.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';

/**
 * Records of a simulated car, one per story second from `start` (epoch ms), as the bus carries them:
 * the real protobuf bytes and canonical JSON. The story parks 20 s, drives 90 s, charges 60 s, repeats.
 */
export function storyRecords(vin: string, seconds: number, start: number, seed = 7): BusRecord[] {
  const story = new VehicleStory({ seed });
  const records: BusRecord[] = [];
  for (let i = 0; i < seconds; i++) {
    const createdAt = new Date(start + i * 1000);
    const payload = encodeVehicleData({ vin, createdAt, data: story.next() as never });
    const decoded = decodeRecord('V', payload, vin);
    records.push({
      vin,
      topic: 'V',
      txid: `story-${i}`,
      receivedAt: createdAt.getTime() + 20,
      recordJson: decoded.json,
      dashboardMessage: `{"type":"record","vin":"${vin}","topic":"V","receivedAt":"${createdAt.toISOString()}","record":${decoded.json}}`,
      payload,
    });
  }
  return records;
}
