import { writeStreamEnvelope } from '../../src/protocol/envelope.js';
import { encodeVehicleAlerts, encodeVehicleData, encodeVehicleErrors } from '../../src/protocol/payload-encoder.js';
import { mulberry32 } from '../../src/sim/seeded-random.js';
import { VehicleStory } from '../../src/sim/vehicle-story.js';

/** One record a bench car sends: topic and protobuf payload. */
export interface CarRecord {
  topic: 'V' | 'alerts' | 'errors';
  payload: Uint8Array;
}

const ERROR_NAMES = ['telemetry_connect_timeout', 'stream_buffer_full', 'cert_refresh_failed'];

/**
 * What one car says over time: a V record per tick from the drive/charge story (about 20 datums, typed
 * and string values, Location, Doors, enums, the odd `invalid`), with an alert or an error now and then.
 * `createdAt` carries milliseconds so a dashboard probe can tell how long the record took to reach it.
 */
export class CarTalk {
  private readonly story: VehicleStory;
  private readonly random: () => number;

  constructor(
    private readonly vin: string,
    seed: number,
  ) {
    this.story = new VehicleStory({ seed });
    this.random = mulberry32(seed ^ 0x5bd1e995);
  }

  /** The records of one tick, V first. */
  tick(now: Date = new Date()): [vehicleData: CarRecord, ...others: CarRecord[]] {
    const records: [CarRecord, ...CarRecord[]] = [{ topic: 'V', payload: encodeVehicleData({ vin: this.vin, createdAt: now, data: this.story.next() }) }];
    const alert = this.story.maybeAlert();
    if (alert !== null) records.push({ topic: 'alerts', payload: encodeVehicleAlerts({ vin: this.vin, createdAt: now, alerts: [alert] }) });
    if (this.random() < 0.005) {
      const name = ERROR_NAMES[Math.floor(this.random() * ERROR_NAMES.length)]!;
      records.push({
        topic: 'errors',
        payload: encodeVehicleErrors({ vin: this.vin, createdAt: now, errors: [{ name, body: 'simulated', tags: { source: 'bench' }, createdAt: now }] }),
      });
    }
    return records;
  }
}

/**
 * `is_resend` is Payload field 4 (varint bool). Appending it to an encoded V payload sets it, because
 * protobuf keeps the last value of a repeated scalar field; alerts and errors have no such flag.
 */
export function markedAsResend(record: CarRecord): Uint8Array {
  if (record.topic !== 'V') return record.payload;
  const out = new Uint8Array(record.payload.byteLength + 2);
  out.set(record.payload);
  out[record.payload.byteLength] = 4 << 3;
  out[record.payload.byteLength + 1] = 1;
  return out;
}

/** A car's envelope around one record, stamped as the car sends it. */
export function envelopeOf(vin: string, txid: string, topic: string, payload: Uint8Array, messageId: string): Uint8Array {
  const now = Date.now();
  return writeStreamEnvelope({
    txid,
    topic,
    payload,
    messageId,
    createdAt: Math.floor(now / 1000),
    deviceType: 'vehicle_device',
    deviceId: vin,
    deliveredAtEpochMs: BigInt(now),
  });
}
