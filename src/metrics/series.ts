/** What every series of ours starts with. */
export const PREFIX = 'fleet_telemetry_';

/** Ack, decode and bus latencies: sub-millisecond when idle, tens of ms under load. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
